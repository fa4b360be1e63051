"""The service token on the client side: where it comes from (``BTTACKLER_TOKEN``) and how it is kept out of logs.

Example:

    >>> redact("ws://10.0.0.2:8765/?token=s3cret&x=1")
    'ws://10.0.0.2:8765/?token=***&x=1'
"""
from __future__ import annotations

import logging
import re

#: The environment variable a client takes its token from, and the one a LocalService passes its token in.
TOKEN_ENV = "BTTACKLER_TOKEN"

_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&#\s]*", re.IGNORECASE)


def redact(url: str) -> str:
    """The URL with the value of a ``token`` query parameter hidden."""
    return _TOKEN_IN_URL.sub(r"\1***", url)


class _RedactAuthorization(logging.Filter):
    """websockets logs the handshake's headers at debug level: never let the token through."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            if len(args) == 2 and isinstance(args[0], str) and args[0].lower() == "authorization":
                record.args = (args[0], "***")
            else:
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        return True


#: The logger the client gives websockets: what it logs never shows the token.
websockets_logger = logging.getLogger("bttackler.websockets")
websockets_logger.addFilter(_RedactAuthorization())

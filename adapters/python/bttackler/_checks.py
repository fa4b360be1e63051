"""The argument checks of the package's public constructors (client, local service, host adapters): one set, raising
TypeError or ValueError that names the argument and never echoes a token.

Example:

    >>> positive_number("timeout", 2)
    2.0
    >>> check_url("ws://127.0.0.1:8765")
    'ws://127.0.0.1:8765'
"""
from __future__ import annotations

import math
from typing import Any, Optional
from urllib.parse import urlsplit

from ._token import redact


def positive_number(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_token(token: Any, source: str) -> Optional[str]:
    """The token, checked without ever echoing its value."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise TypeError(f"{source} must be a string, got a {type(token).__name__}")
    if token == "":
        raise ValueError(f"{source} must not be empty")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in token):
        raise ValueError(f"{source} must not contain whitespace or control characters")
    return token


def check_url(url: Any) -> str:
    if not isinstance(url, str):
        raise TypeError(f"url must be a string starting with ws:// or wss://, got {url!r} ({type(url).__name__})")
    if not (url.startswith("ws://") or url.startswith("wss://")):
        raise ValueError(f"url must start with ws:// or wss://, got {redact(url)!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise ValueError(f"url is not a valid WebSocket URL ({exc}), got {redact(url)!r}") from None
    if not parts.hostname:
        raise ValueError(f"url has no host, got {redact(url)!r}")
    return url

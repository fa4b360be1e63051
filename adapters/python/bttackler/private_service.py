"""What a host shim needs to run a private service and to take a study configuration: shared by the host adapters.

``PrivateService`` is a :class:`LocalService` with its SQLite database in a temporary directory of its own, started
at once; ``stop()`` stops the service and removes the directory, only in the process that started it (a forked
child or an unpickled copy must not). ``ServiceEndpoint`` is where a host object's service is (a given url or its
private service): its ``url`` property, and what a forked copy talks to. ``plain_config`` checks a study
configuration (config.v1) up front.

Example:

    >>> plain_config({"max_steps": 20})
    {'max_steps': 20}
    >>> plain_config(None) is None
    True
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional

from .local_service import LocalService


def plain_config(config: Any) -> Optional[Dict[str, Any]]:
    """``config`` as a plain JSON object (a copy), or None; TypeError/ValueError naming the value otherwise."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping (config.v1, see docs/configuration.md) or None, got {config!r} ({type(config).__name__})")
    try:
        return json.loads(json.dumps(dict(config), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config must be plain JSON ({exc}), got {config!r}") from None


class PrivateService:
    """`bttackler serve` for one host process: its database in a new temporary directory, started in the background.

    ``prefix`` names the directory (``tempfile.mkdtemp(prefix=...)``). The service is found as
    :class:`LocalService` finds it and stops with its parent (``--exit-with-parent``).
    """

    def __init__(self, prefix: str) -> None:
        self._pid = os.getpid()
        self._tmpdir: Optional[str] = tempfile.mkdtemp(prefix=prefix)
        self.service = LocalService(db=os.path.join(self._tmpdir, "bttackler.db"))
        self.service.start()  # returns at once

    @property
    def owned(self) -> bool:
        """True in the process that started it."""
        return os.getpid() == self._pid

    def stop(self) -> None:
        """Stops the service and removes its directory, in the process that started it only. Safe to repeat."""
        if not self.owned:
            return
        self.service.stop()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


class ServiceEndpoint:
    """The service of a host object (the Optuna pruner, the Ray stopper): the ``url`` it was given, or the
    :class:`PrivateService` it started (``_private``). The subclass sets both attributes."""

    _url: Optional[str]
    _private: Optional[PrivateService]

    @property
    def _service(self) -> Optional[LocalService]:
        return self._private.service if self._private is not None else None

    @property
    def url(self) -> Optional[str]:
        """The service's address (for a private service: once it listens, else None)."""
        service = self._service
        if service is not None:
            return service.address
        return self._url

    def _leave_private_service(self) -> None:
        """In a forked copy: the parent's private service is not ours; talk to its address (when known) as to a given url."""
        service, self._private = self._service, None
        if self._url is None and service is not None:
            # not service.address: the parent's child process is no child of ours (poll() cannot tell)
            self._url = service._address

    def _address_for_copy(self, timeout: float) -> Optional[str]:
        """The address a pickled copy talks to: the url given, or the private service's once it listens (None when it
        does not within ``timeout`` seconds)."""
        service = self._service
        if self._url is not None or service is None:
            return self._url
        return service.url(timeout=timeout)

    def _stop_private_service(self) -> None:
        """Stops the private service, only in the process that started it, and drops the ``close`` run at exit."""
        if self._private is not None:
            self._private.stop()
        atexit.unregister(getattr(self, "close"))

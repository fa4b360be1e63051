"""The synchronous JSON-RPC client of `bttackler serve`, shared by the NNI, Optuna and Ray adapters.

Every call is blocking, bounded by the client's timeout (connect, send and receive
together) and **fails open**: a network fault, a timeout, an error reply or a reply
that makes no sense returns ``None`` and logs a warning on the ``bttackler`` logger;
no method raises. The training host then simply goes on as if bttackler were absent.

The client runs no asyncio loop (``websockets.sync.client`` uses a background thread),
so it may be called from plain threads and from inside a running event loop (Ray).
"""
from __future__ import annotations

import inspect
import itertools
import json
import logging
import os
import socket
import threading
import time
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as _ws_connect

from ._checks import check_token, check_url, positive_number
from ._token import TOKEN_ENV, redact, websockets_logger
from .local_service import LocalService
from .verdicts import should_stop

__all__ = ["BTTacklerClient", "should_stop", "DEFAULT_TIMEOUT", "TOKEN_ENV"]

logger = logging.getLogger("bttackler")

DEFAULT_TIMEOUT = 2.0
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_WARN_INTERVAL = 60.0
# trial.history of a long trial can outgrow websockets' 1 MiB default.
_MAX_REPLY_BYTES = 64 * 2**20
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_CONNECT_PARAMS = frozenset(inspect.signature(_ws_connect).parameters)


def _json_default(value: Any) -> Any:
    """numpy and torch scalars (``.item()``) and arrays (``.tolist()``) as plain JSON values."""
    for name in ("item", "tolist"):
        method = getattr(value, name, None)
        if callable(method):
            try:
                return method()
            except Exception:  # noqa: BLE001 - e.g. .item() on an array with several elements
                continue
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _BadReply(Exception):
    """A frame from the service that is not a JSON-RPC reply."""


class BTTacklerClient:
    """A blocking, thread-safe, fail-open client of one bttackler service.

    Give it the service's ``url`` (``ws://host:port``; ``?token=T`` is accepted too), or a
    :class:`LocalService` as ``service`` (started here if it is not running yet; the client
    connects once the service has printed its address).

    ``token`` defaults to the ``BTTACKLER_TOKEN`` environment variable and goes out as the
    ``Authorization: Bearer`` header. ``timeout`` bounds each call: waiting for the other
    threads' calls, connecting, sending and receiving. After a failure the client backs off
    (``backoff_initial`` seconds, doubling up to ``backoff_max``); while it backs off, calls
    return ``None`` at once without touching the network. A warning is logged per kind of
    problem at most once every ``warn_interval`` seconds.

    The constructor validates its arguments (ValueError/TypeError) and never touches the
    network. Every other method returns ``None`` instead of raising.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        service: Optional[LocalService] = None,
        token: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        backoff_initial: float = DEFAULT_BACKOFF_INITIAL,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        warn_interval: float = DEFAULT_WARN_INTERVAL,
    ) -> None:
        if url is None and service is None:
            raise ValueError("give the service's url (ws://host:port) or a LocalService as service=, got neither")
        if url is not None and service is not None:
            raise ValueError(f"give either url or service, not both (got url={redact(str(url))!r} and a service)")
        if service is not None and not isinstance(service, LocalService):
            raise TypeError(f"service must be a LocalService, got {service!r} ({type(service).__name__})")
        self._url = None if url is None else check_url(url)
        self._service = service
        if token is not None:
            self._token = check_token(token, "token")
        elif service is not None and service.token is not None:
            self._token = service.token
        else:
            self._token = check_token(os.environ.get(TOKEN_ENV) or None, f"the environment variable {TOKEN_ENV}")
        self._timeout = positive_number("timeout", timeout)
        self._backoff_initial = positive_number("backoff_initial", backoff_initial)
        self._backoff_max = positive_number("backoff_max", backoff_max)
        if self._backoff_max < self._backoff_initial:
            raise ValueError(f"backoff_max must be >= backoff_initial ({backoff_initial!r}), got {backoff_max!r}")
        self._warn_interval = positive_number("warn_interval", warn_interval, allow_zero=True)
        self._init_state()
        if service is not None:
            service.start()  # returns at once: the process starts in the background

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._cm: Any = None  # what websockets' connect() returned; its __exit__ closes the connection
        self._ws: Any = None
        self._ws_url: Optional[str] = None
        self._closed = False
        self._failures = 0
        self._retry_at = 0.0
        self._last_problem = ""
        self._last_warned: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = {}

    # ------------------------------------------------------------------ protocol methods

    # ``timeout`` of every method: see call().

    def open_study(self, study: str, config: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """study.open: ``{study, config, created}`` with the complete config, or None."""
        params: Dict[str, Any] = {"study": study}
        if config is not None:
            params["config"] = config
        return self.call("study.open", params, timeout=timeout)

    def report(self, study: str, trial: str, payload: Mapping[str, Any], *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """trial.report: ``{study, trial, step, duplicate}``, or None."""
        return self.call("trial.report", {"study": study, "trial": trial, "payload": payload}, timeout=timeout)

    def report_and_assess(self, study: str, trial: str, payload: Mapping[str, Any], *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """trial.reportAndAssess: the verdict for this payload's step (plus ``duplicate``), or None."""
        return self.call("trial.reportAndAssess", {"study": study, "trial": trial, "payload": payload}, timeout=timeout)

    def assess(self, study: str, trial: str, step: Optional[int] = None, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """trial.assess: the stored verdict at ``step`` (the latest step when omitted), or None."""
        params: Dict[str, Any] = {"study": study, "trial": trial}
        if step is not None:
            params["step"] = step
        return self.call("trial.assess", params, timeout=timeout)

    def end_trial(self, study: str, trial: str, state: str, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """trial.end with state ``complete``, ``pruned`` or ``failed``: ``{study, trial, state}``, or None."""
        return self.call("trial.end", {"study": study, "trial": trial, "state": state}, timeout=timeout)

    def history(self, study: str, trial: str, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """trial.history: ``{study, trial, verdicts: [...]}`` in step order, or None."""
        return self.call("trial.history", {"study": study, "trial": trial}, timeout=timeout)

    def list_studies(self, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """study.list: ``{studies: [...]}``, or None."""
        return self.call("study.list", {}, timeout=timeout)

    def study_trials(self, study: str, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """study.trials: ``{study, trials: [...]}``, or None."""
        return self.call("study.trials", {"study": study}, timeout=timeout)

    def health(self, *, timeout: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """service.health: ``{status: "ok", version, db, ...}``, or None."""
        return self.call("service.health", {}, timeout=timeout)

    # ------------------------------------------------------------------ the call

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None) -> Any:
        """One JSON-RPC request; its result, or None (after a warning) if there is none.

        ``timeout`` (seconds) shortens this call's budget below the client's timeout, never lengthens
        it: a host operation that makes several calls (an NNI assessment, an Optuna ``prune`` that
        opens its study first) passes what is left of its own budget, so that the operation as a
        whole stays within the client's timeout. Nothing is left (<= 0): None at once, nothing sent.
        """
        try:
            budget = self._timeout if timeout is None else min(float(timeout), self._timeout)
        except (TypeError, ValueError):
            budget = self._timeout
        if not budget > 0:  # also NaN
            self._warn(f"budget:{method}", f"{method} not sent: no time was left of the caller's budget; returning None")
            return None
        deadline = time.monotonic() + budget
        try:
            request_id = next(self._ids)
            request: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
            if params is not None:
                request["params"] = params
            try:
                text = json.dumps(request, allow_nan=True, default=_json_default, separators=(",", ":"))
            except (TypeError, ValueError, RecursionError) as exc:
                self._warn(f"encode:{method}", f"{method} not sent: its params are not JSON ({exc}); returning None")
                return None
            if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                self._warn("busy", f"{method} not sent: other calls held the client for {budget:.3g} s; returning None")
                return None
            try:
                return self._call_locked(method, request_id, text, deadline, budget)
            finally:
                self._lock.release()
        except Exception as exc:  # noqa: BLE001 - fail open, whatever happened
            self._warn("internal", f"{method} failed unexpectedly ({type(exc).__name__}: {exc}); returning None")
            try:
                self._drop()
            except Exception:  # noqa: BLE001
                pass
            return None

    def _call_locked(self, method: str, request_id: int, text: str, deadline: float, budget: float) -> Any:
        if self._closed:
            self._warn("closed", f"{method} not sent: the client is closed; returning None")
            return None
        now = time.monotonic()
        if now < self._retry_at:
            self._warn(
                "unavailable",
                f"{method} not sent: the service at {self._where()} is unavailable ({self._last_problem}); "
                f"calls return None until the next attempt in {self._retry_at - now:.1f} s",
            )
            return None
        url = self._service_url(method, deadline) if self._service is not None else self._url
        if url is None:
            return None
        fresh_retry_used = False
        while True:
            reused = self._ws is not None and self._ws_url == url
            stage = "connecting to"
            try:
                ws = self._connection(url, deadline)
                stage = "sending to"
                ws.send(text)
                stage = "waiting for"
                reply = self._await_reply(ws, request_id, deadline)
                break
            except ConnectionClosed as exc:
                self._drop()
                # A connection kept from an earlier call may have died meanwhile (the service
                # restarted): try one fresh connection before calling it a fault.
                if reused and not fresh_retry_used and time.monotonic() < deadline:
                    fresh_retry_used = True
                    continue
                return self._fault(method, url, _describe_close(exc))
            except (TimeoutError, socket.timeout):
                self._drop()  # a late reply must never be read as the answer to a later call
                return self._fault(method, url, f"no answer within {budget:.3g} s while {stage} the service")
            except _BadReply as exc:
                self._drop()
                return self._fault(method, url, f"the reply is not JSON-RPC ({exc})")
            except InvalidStatus as exc:
                self._drop()
                status = getattr(getattr(exc, "response", None), "status_code", None)
                return self._fault(method, url, f"the WebSocket handshake was refused with HTTP status {status}")
            except Exception as exc:  # noqa: BLE001 - OSError, handshake errors, ...
                self._drop()
                return self._fault(method, url, f"{type(exc).__name__} while {stage} the service: {exc}")
        self._recovered(url)
        if not isinstance(reply, dict):
            self._warn(f"reply:{method}", f"{method}: the reply is not a JSON object; returning None")
            return None
        error = reply.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            self._warn(f"rpc:{method}:{code}", f"{method} failed: error {code}: {message}; returning None")
            return None
        if "result" not in reply:
            self._warn(f"reply:{method}", f"{method}: the reply has neither result nor error; returning None")
            return None
        return reply["result"]

    def _service_url(self, method: str, deadline: float) -> Optional[str]:
        service = self._service
        assert service is not None
        url = service.url(timeout=max(0.0, deadline - time.monotonic()))
        if url is not None:
            return url
        if service.error is not None:
            self._drop()
            self._warn("service", f"{method} not sent: {service.error}; calls return None")
        else:
            self._warn(
                "starting",
                f"{method} not sent: the local bttackler service ({service.command_text}) has not printed its "
                f"address within {self._timeout:g} s; returning None",
            )
        return None

    def _connection(self, url: str, deadline: float) -> Any:
        if self._ws is not None and self._ws_url == url:
            return self._ws
        self._drop()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no time left to connect")
        kwargs: Dict[str, Any] = {
            "open_timeout": remaining,
            "close_timeout": min(self._timeout, 1.0),
            "max_size": _MAX_REPLY_BYTES,
            "compression": None,
            "logger": websockets_logger,
        }
        if self._token is not None:
            kwargs["additional_headers"] = {"Authorization": f"Bearer {self._token}"}
        if "proxy" in _CONNECT_PARAMS and (urlsplit(url).hostname or "") in _LOOPBACK:
            kwargs["proxy"] = None  # a loopback service is never reached through an HTTP(S)_PROXY
        kwargs = {k: v for k, v in kwargs.items() if k in _CONNECT_PARAMS}
        cm = _ws_connect(url, **kwargs)
        # Entered as a context manager: the one use that every websockets release of our range
        # (and the coming default of connect()) supports without a deprecation warning.
        ws = cm.__enter__()
        self._cm, self._ws, self._ws_url = cm, ws, url
        return ws

    def _await_reply(self, ws: Any, request_id: int, deadline: float) -> Any:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply in time")
            frame = ws.recv(timeout=remaining)
            if isinstance(frame, bytes):
                logger.debug("bttackler: discarding a binary frame from the service")
                continue
            try:
                reply = json.loads(frame)
            except ValueError as exc:
                raise _BadReply(f"not JSON: {exc}") from None
            if isinstance(reply, dict) and reply.get("id") == request_id:
                return reply
            if isinstance(reply, dict) and reply.get("id") is None and "error" in reply:
                # The service could not read our request's id (parse error, invalid request);
                # calls are one at a time per connection, so this answer is ours.
                return reply
            stray = reply.get("id") if isinstance(reply, dict) else type(reply).__name__
            logger.debug("bttackler: discarding a reply that is not for request %s (id %r)", request_id, stray)

    def _drop(self) -> None:
        """Abort the connection at once (no closing handshake to wait for)."""
        cm, ws = self._cm, self._ws
        self._cm = self._ws = self._ws_url = None
        if ws is None:
            return
        sock = getattr(ws, "socket", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            cm.__exit__(None, None, None)
        except Exception:  # noqa: BLE001
            pass

    def _fault(self, method: str, url: str, problem: str) -> None:
        self._failures += 1
        delay = min(self._backoff_initial * 2 ** min(self._failures - 1, 60), self._backoff_max)
        self._retry_at = time.monotonic() + delay
        self._last_problem = problem
        self._warn(
            "unavailable",
            f"{method} failed: service at {redact(url)}: {problem}; calls return None (fail open), "
            f"next attempt in {delay:g} s",
        )
        return None

    def _recovered(self, url: str) -> None:
        if self._failures:
            logger.info("the bttackler service at %s answers again (after %d failed attempts)", redact(url), self._failures)
            self._last_warned.pop("unavailable", None)
        self._failures = 0
        self._retry_at = 0.0

    def _where(self) -> str:
        if self._url is not None:
            return redact(self._url)
        assert self._service is not None
        return redact(self._service.address or f"(local service: {self._service.command_text})")

    def _warn(self, key: str, message: str) -> None:
        now = time.monotonic()
        last = self._last_warned.get(key)
        if last is not None and now - last < self._warn_interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last_warned[key] = now
        skipped = self._suppressed.pop(key, 0)
        suffix = f" ({skipped} similar warnings suppressed)" if skipped else ""
        logger.warning("bttackler %s%s", message, suffix)

    # ------------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Close the connection; later calls return None. Never raises; does not stop a LocalService."""
        try:
            acquired = self._lock.acquire(timeout=self._timeout)
            try:
                self._closed = True
                cm, self._cm, self._ws, self._ws_url = self._cm, None, None, None
                if cm is not None:
                    try:
                        cm.__exit__(None, None, None)  # closing handshake, at most close_timeout
                    except Exception:  # noqa: BLE001
                        pass
            finally:
                if acquired:
                    self._lock.release()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "BTTacklerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BTTacklerClient({self._where()}, timeout={self._timeout:g})"

    # Picklable (Ray pickles stoppers): the settings travel, the connection and lock do not.
    def __getstate__(self) -> Dict[str, Any]:
        url = self._url
        if url is None:
            assert self._service is not None
            url = self._service.address
            if url is None:
                raise TypeError("cannot pickle a BTTacklerClient whose LocalService has no address yet")
        return {
            "url": url,
            "token": self._token,
            "timeout": self._timeout,
            "backoff_initial": self._backoff_initial,
            "backoff_max": self._backoff_max,
            "warn_interval": self._warn_interval,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._url = state["url"]
        self._service = None
        self._token = state["token"]
        self._timeout = state["timeout"]
        self._backoff_initial = state["backoff_initial"]
        self._backoff_max = state["backoff_max"]
        self._warn_interval = state["warn_interval"]
        self._init_state()


def _describe_close(exc: ConnectionClosed) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is None:
        return "the connection was lost"
    code, reason = getattr(rcvd, "code", None), getattr(rcvd, "reason", "")
    if code == 4401:
        return f"the service refused the token (close code 4401: {reason or 'unauthorized'})"
    return f"the service closed the connection (close code {code}{': ' + reason if reason else ''})"

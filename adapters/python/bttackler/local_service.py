"""Runs `bttackler serve` as a child process, for hosts that have no service of their own.

``start()`` returns at once: the process starts in the background and a daemon thread
drains its standard error (each line goes to the ``bttackler.service`` logger at debug
level, so the pipe never fills) and picks the address out of the start-up line
``{"msg": "bttackler serve listening", "address": "ws://127.0.0.1:PORT", ...}``.
``url(timeout)`` waits for that line. ``stop()`` sends SIGTERM, waits, then SIGKILL;
it is registered with atexit and may be called any number of times.
"""
from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import shlex
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence

from ._checks import check_token, positive_number
from ._token import TOKEN_ENV

logger = logging.getLogger("bttackler")
_service_log = logging.getLogger("bttackler.service")

CLI_ENV = "BTTACKLER_CLI"
LISTENING = "bttackler serve listening"
DEFAULT_STOP_TIMEOUT = 5.0
_HOW_TO_INSTALL = (
    "pass command=[...], set BTTACKLER_CLI to the path of dist/cli/main.js (run with node) or of an executable, "
    "or put `bttackler` on PATH (npm install -g bttackler-<version>.tgz, the tarball `npm pack` makes in a "
    "checkout; see docs/quickstart.md, Install)"
)
#: How long a host waits, at most, for a service it starts to print its address (a loaded machine can take seconds to start node).
STARTUP_WAIT = 15.0


class ServiceStartError(RuntimeError):
    """A host could not start any bttackler service where one is required: a configuration error, with its fix."""


#: The CLI of the bttackler checkout this package sits in, when it is used from a built checkout
#: (``pip install -e adapters/python`` after ``npm run build``).
_CHECKOUT_CLI = Path(__file__).resolve().parents[3] / "dist" / "cli" / "main.js"


class LocalService:
    """A `bttackler serve --port PORT --db DB` child process.

    The command is, in this order: ``command`` (a list, e.g. ``["node", "/path/dist/cli/main.js"]``);
    the ``BTTACKLER_CLI`` environment variable (a ``.js`` file is run with ``node``, anything else
    is executed); ``bttackler`` on PATH; ``dist/cli/main.js`` run with ``node`` when this package is
    used from a built checkout of bttackler. ``port=0`` lets the service pick a free port. A ``token``
    reaches the service through its environment (never its command line) and is used by the
    clients given this service. ``args`` are appended to the command line (e.g. ``["--log-level",
    "debug"]``).

    Nothing here raises once the arguments are valid: a service that cannot start leaves
    ``error`` set (naming the command tried), logs a warning, and ``url()`` returns None.
    """

    def __init__(
        self,
        db: "str | os.PathLike[str]" = "bttackler.db",
        *,
        port: int = 0,
        command: Optional[Sequence[str]] = None,
        token: Optional[str] = None,
        args: Sequence[str] = (),
        env: Optional[Mapping[str, str]] = None,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        if not isinstance(db, (str, os.PathLike)) or os.fspath(db) == "":
            raise ValueError(f"db must be a non-empty path (or ':memory:'), got {db!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535 (0 = any free port), got {port!r}")
        if command is not None:
            if isinstance(command, (str, bytes)) or not isinstance(command, Sequence):
                raise TypeError(f"command must be a list of strings such as ['node', 'dist/cli/main.js'], got {command!r}")
            if len(command) == 0 or not all(isinstance(part, str) and part for part in command):
                raise ValueError(f"command must be a non-empty list of non-empty strings, got {command!r}")
        if isinstance(args, (str, bytes)) or not all(isinstance(a, str) for a in args):
            raise TypeError(f"args must be a list of strings, got {args!r}")
        if env is not None and not isinstance(env, Mapping):
            raise TypeError(f"env must be a mapping of strings, got {env!r}")
        self.db = os.fspath(db)
        self.port = port
        self.token = check_token(token, "token")
        self.stop_timeout = positive_number("stop_timeout", stop_timeout)
        self._command = None if command is None else list(command)
        self._args = list(args)
        self._env = None if env is None else dict(env)
        self._lock = threading.Lock()
        self._proc: Optional[subprocess.Popen] = None
        self._reader: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._address: Optional[str] = None
        self._error: Optional[str] = None
        self._argv: Optional[List[str]] = None
        self._tail: Deque[str] = collections.deque(maxlen=8)
        self._started = False  # start() has run and stop() has not run since
        self._ever_started = False
        self._stopping = False

    # ------------------------------------------------------------------ state

    @property
    def address(self) -> Optional[str]:
        """The service's ws:// address once it listens and while its process runs; else None."""
        proc = self._proc
        if self._address is None or proc is None or proc.poll() is not None:
            return None
        return self._address

    @property
    def error(self) -> Optional[str]:
        """Why the service is not available (it could not start, its process ended, it was stopped); else None."""
        if self._error is not None:
            return self._error
        if self._ever_started and not self._started:
            return f"the local bttackler service ({self.command_text}) was stopped"
        proc = self._proc
        if self._address is not None and proc is not None and proc.poll() is not None and not self._stopping:
            return f"the local bttackler service ({self.command_text}) exited with code {proc.returncode}"
        return None

    @property
    def process(self) -> Optional[subprocess.Popen]:
        return self._proc

    @property
    def command_line(self) -> Optional[List[str]]:
        """The full command line once start() has resolved it."""
        return None if self._argv is None else list(self._argv)

    @property
    def command_text(self) -> str:
        return shlex.join(self._argv) if self._argv else "bttackler serve (command not resolved yet)"

    def __repr__(self) -> str:
        return f"LocalService(db={self.db!r}, port={self.port}, address={self.address!r})"

    # ------------------------------------------------------------------ life cycle

    def start(self) -> "LocalService":
        """Starts the process in the background and returns at once; does nothing if already started."""
        with self._lock:
            if self._started:
                return self
            self._started = self._ever_started = True
            self._stopping = False
            self._ready.clear()
            self._address = self._error = None
            self._tail.clear()
            base, problem = self._resolve_command()
            if base is None:
                self._fail(f"cannot start the bttackler service: {problem}")
                return self
            # --exit-with-parent: if the host is killed outright, the service stops instead of holding port and db
            self._argv = base + ["serve", "--port", str(self.port), "--db", self.db, "--exit-with-parent"] + self._args
            env = dict(os.environ if self._env is None else self._env)
            if self.token is not None:
                env[TOKEN_ENV] = self.token
            try:
                proc = subprocess.Popen(
                    self._argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                    close_fds=True,
                )
            except (OSError, ValueError) as exc:
                self._fail(f"cannot start the bttackler service with `{self.command_text}`: {exc}")
                return self
            self._proc = proc
            self._reader = threading.Thread(target=self._drain, args=(proc,), name="bttackler-service-stderr", daemon=True)
            self._reader.start()
            atexit.register(self.stop)
            return self

    def url(self, timeout: Optional[float] = 10.0) -> Optional[str]:
        """The ws:// address, waiting up to ``timeout`` seconds for the start-up line; None if there is none.

        Starts the service if it was never started; a stopped service stays stopped.
        """
        if not self._ever_started:
            self.start()
        elif not self._started:
            return None
        self._ready.wait(timeout)
        return self.address

    def stop(self, timeout: Optional[float] = None) -> None:
        """SIGTERM, up to ``timeout`` (default stop_timeout) seconds to exit, then SIGKILL. Safe to repeat."""
        wait = self.stop_timeout if timeout is None else timeout
        with self._lock:
            proc, reader = self._proc, self._reader
            self._started = False
            if proc is None:
                return
            self._stopping = True
            try:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(wait)
                    except subprocess.TimeoutExpired:
                        logger.warning("the local bttackler service (pid %s) ignored SIGTERM for %g s; killing it", proc.pid, wait)
                        proc.kill()
                        proc.wait()
            except OSError:
                pass
            if reader is not None:
                reader.join(1.0)
            if proc.stderr is not None:
                try:
                    proc.stderr.close()
                except OSError:
                    pass
            self._proc = self._reader = None
            self._address = None
            try:
                atexit.unregister(self.stop)
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "LocalService":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _resolve_command(self) -> "tuple[Optional[List[str]], str]":
        if self._command is not None:
            return list(self._command), ""
        environ: Mapping[str, str] = os.environ if self._env is None else self._env
        cli = environ.get(CLI_ENV, "")
        if cli:
            if cli.endswith((".js", ".mjs", ".cjs")):
                node = shutil.which("node", path=environ.get("PATH"))
                if node is None:
                    return None, f"{CLI_ENV}={cli} is a JavaScript file but `node` is not on PATH"
                return [node, cli], ""
            return [cli], ""
        found = shutil.which("bttackler", path=environ.get("PATH"))
        if found is not None:
            return [found], ""
        node = shutil.which("node", path=environ.get("PATH"))
        if node is not None and _CHECKOUT_CLI.is_file():
            return [node, str(_CHECKOUT_CLI)], ""
        return None, f"no command given, {CLI_ENV} is not set and `bttackler` is not on PATH; {_HOW_TO_INSTALL}"

    def _fail(self, message: str) -> None:
        self._error = message
        self._ready.set()
        logger.warning("%s; calls to it return None (fail open)", message)

    def _drain(self, proc: subprocess.Popen) -> None:
        stream = proc.stderr
        assert stream is not None
        try:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    continue
                _service_log.debug("%s", line)
                self._tail.append(line)
                if self._address is None and not self._ready.is_set():
                    address = _listening_address(line)
                    if address is not None:
                        self._address = address
                        self._ready.set()
        except (OSError, ValueError):
            pass  # the pipe was closed by stop()
        if not self._ready.is_set():
            try:
                code = proc.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            if not self._stopping:
                tail = " | ".join(self._tail) or "(nothing)"
                self._fail(f"the bttackler service (`{self.command_text}`) exited with code {code} before listening; it said: {tail}")
            else:
                self._ready.set()


def _listening_address(line: str) -> Optional[str]:
    try:
        record: Dict[str, Any] = json.loads(line)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("msg") == LISTENING:
        address = record.get("address")
        if isinstance(address, str) and address.startswith(("ws://", "wss://")):
            return address
    return None

"""Helpers of the host fault tests: the real service as a child process that can get `kill -9` (LocalService),
and a TCP proxy that delays every chunk it forwards (a slow network or an overloaded service).

Nothing here stands in for Optuna, NNI or the service: the proxy forwards bytes unchanged, only later.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bttackler.local_service import LocalService

REPO = Path(__file__).resolve().parents[2]
MAIN_JS = REPO / "dist" / "cli" / "main.js"
NODE = shutil.which("node")

#: What a call may take beyond the client's timeout on this (loaded, 2-core) machine: scheduling, Optuna's own
#: bookkeeping, logging. FAULTS_MARGIN overrides it (seconds).
MARGIN = float(os.environ.get("FAULTS_MARGIN", "0.5"))


class ServiceProcess:
    """`node dist/cli/main.js serve --port PORT --db DB` started by the test through :class:`LocalService` (the one way
    the Python tests start the service), without the ``BTTACKLER_*`` variables of the test's environment; ``kill9()`` is
    SIGKILL. ``stop()`` is idempotent. Its standard error goes to the ``bttackler.service`` logger (debug level).
    """

    def __init__(self, db: Path, port: int = 0) -> None:
        self.db = Path(db)
        self.port = port
        self.service: Optional[LocalService] = None
        self.address: Optional[str] = None  # kept after a kill9, for restart()
        self.ready_at: Optional[float] = None  # time.monotonic() when the start-up line had been read

    @property
    def url(self) -> str:
        assert self.address is not None, "the service has not started"
        return self.address

    @property
    def proc(self) -> Optional[subprocess.Popen]:
        return self.service.process if self.service is not None else None

    def start(self, timeout: float = 60.0) -> "ServiceProcess":
        assert NODE is not None and MAIN_JS.is_file()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BTTACKLER_")}
        self.service = LocalService(self.db, port=self.port, command=[NODE, str(MAIN_JS)], env=env, stop_timeout=10.0).start()
        self.address = self.service.url(timeout=timeout)
        if self.address is None:
            problem = self.service.error or f"it did not print its address within {timeout:g} s"
            self.stop()
            raise AssertionError(f"the service did not start: {problem}")
        self.ready_at = time.monotonic()
        self.port = int(self.address.rsplit(":", 1)[1])
        return self

    def kill9(self) -> float:
        """SIGKILL, then reaps it. Returns time.monotonic() of the kill."""
        proc = self.proc
        assert proc is not None and proc.poll() is None, "the service is not running"
        at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return at

    def restart(self) -> "ServiceProcess":
        """A new service on this one's port and database (after a kill9), started."""
        again = ServiceProcess(self.db, port=self.port).start()
        assert again.url == self.url, (again.url, self.url)
        return again

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


class DelayProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target_port`` that forwards every chunk, both ways, ``delay`` s after it arrived.

    ``delay`` may be changed at any time; it applies to chunks that arrive from then on. The order of the
    bytes is kept. ``accepted`` holds the wall-clock time (time.time()) of every connection it accepted.
    """

    def __init__(self, target_port: int, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.accepted: List[float] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._closed = threading.Event()
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(time.time())
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                chunks: "queue.Queue[Tuple[float, Optional[bytes]]]" = queue.Queue()
                threading.Thread(target=self._read, args=(src, chunks), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, chunks), daemon=True).start()

    def _read(self, src: socket.socket, chunks: "queue.Queue[Tuple[float, Optional[bytes]]]") -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self.delay, data or None))
            if not data:
                return

    def _write(self, dst: socket.socket, chunks: "queue.Queue[Tuple[float, Optional[bytes]]]") -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                if self._closed.wait(wait):
                    return
            try:
                if data is None:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except OSError:
                    pass


#: Measured figures of each test, printed at the end of the run (conftest.py).
FIGURES: Dict[str, Dict[str, Any]] = {}

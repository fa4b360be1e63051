"""Helpers shared by the tests (fixtures are in conftest.py)."""
from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest

from bttackler import LocalService

REPO_ROOT = Path(__file__).resolve().parents[3]
MAIN_JS = REPO_ROOT / "dist" / "cli" / "main.js"
NODE = shutil.which("node")


def cli_command() -> List[str]:
    """The command that runs this checkout's CLI."""
    assert NODE is not None
    return [NODE, str(MAIN_JS)]


def start_service(db: Any, **kwargs: Any) -> LocalService:
    """A real service from this checkout, already listening."""
    service = LocalService(db=db, command=kwargs.pop("command", cli_command()), **kwargs).start()
    assert service.url(timeout=20) is not None, f"the service did not start: {service.error}"
    return service


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """Accepts TCP connections, reads whatever comes, never writes a byte.

    With ``hang_up=True`` it closes every connection as soon as it has accepted it.
    """

    def __init__(self, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.received = 0
        self.conns: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                if self.hang_up:
                    conn.close()
                else:
                    conn.setblocking(False)
                    self.conns.append(conn)
            except socket.timeout:
                pass
            except OSError:
                return
            for conn in self.conns:  # drain, so the client's sends never block on us
                try:
                    self.received += len(conn.recv(65536))
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.conns:
            conn.close()
        self.sock.close()


def timed(fn: Callable[[], Any], limit: float) -> Tuple[Any, float]:
    """Runs fn in a thread: (its result, seconds it took). Fails if it still runs after `limit` s or raised."""
    box: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["error"] = exc
        box["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"the call was still blocked after {limit} s"
    if "error" in box:
        raise AssertionError(f"the call raised {box['error']!r}") from box["error"]
    return box["result"], box["elapsed"]


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[str]:
    """The warning messages of the bttackler loggers."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("bttackler") and r.levelno == 30]


def fake_cli(tmp_path: Path, body: str) -> List[str]:
    """A Python stand-in for the CLI (for stop and stderr tests); `body` runs after a few imports."""
    script = tmp_path / "fake_cli.py"
    script.write_text("import json, os, signal, sys, time\n" + body)
    return [sys.executable, str(script)]


def listening_line(port: int) -> str:
    return json.dumps({"level": "info", "msg": "bttackler serve listening", "address": f"ws://127.0.0.1:{port}"})


def wait_until(predicate: Callable[[], Any], limit: float, every: float = 0.05) -> Optional[Any]:
    """Polls predicate until it returns something truthy (returned) or `limit` s pass (None)."""
    end = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            return None
        time.sleep(every)


class SlowService:
    """A real WebSocket JSON-RPC server that answers every request correctly, but only `delay` s after it came.

    A service that is slow yet answers within the client's timeout call by call: a host operation that needs
    several calls must still stay within one timeout in all. ``requests`` lists the methods it received.
    """

    RESULTS = {
        "study.open": lambda p: {"study": p.get("study"), "config": {}, "created": True},
        "trial.reportAndAssess": lambda p: {"study": p.get("study"), "trial": p.get("trial"), "step": p["payload"]["step"],
                                            "stop": False, "protected": False, "symptoms": [], "duplicate": False},
        "service.health": lambda p: {"status": "ok"},
    }

    def __init__(self, delay: float) -> None:
        from websockets.sync.server import serve

        self.delay = delay
        self.requests: List[str] = []
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _handle(self, ws: Any) -> None:
        try:
            for frame in ws:
                request = json.loads(frame)
                self.requests.append(request["method"])
                time.sleep(self.delay)
                result = self.RESULTS.get(request["method"], lambda p: {})(request.get("params") or {})
                ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        except Exception:  # noqa: BLE001 - the client dropped the connection: expected here
            pass

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(2)

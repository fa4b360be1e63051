"""Fail open: faults of the network and of the service give None within the timeout, never an exception."""
from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from websockets.sync.server import serve

from bttackler import BTTacklerClient
from helpers import SilentServer, closed_port, start_service, timed, wait_until, warnings_of

METHODS = {
    "open_study": lambda c: c.open_study("s", {"max_steps": 5}),
    "report": lambda c: c.report("s", "t", {"step": 0}),
    "report_and_assess": lambda c: c.report_and_assess("s", "t", {"step": 0, "metrics": {"train_loss": float("nan")}}),
    "assess": lambda c: c.assess("s", "t", step=0),
    "end_trial": lambda c: c.end_trial("s", "t", "complete"),
    "history": lambda c: c.history("s", "t"),
    "list_studies": lambda c: c.list_studies(),
    "study_trials": lambda c: c.study_trials("s"),
    "health": lambda c: c.health(),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_unreachable_service(method, caplog):
    client = BTTacklerClient(f"ws://127.0.0.1:{closed_port()}", timeout=1.0)
    result, elapsed = timed(lambda: METHODS[method](client), 1.0 + 0.5)
    assert result is None and elapsed < 1.0
    assert len(warnings_of(caplog)) == 1 and "fail open" in warnings_of(caplog)[0]


def test_backing_off_returns_at_once_without_trying(caplog):
    server = SilentServer(hang_up=True)  # counts connection attempts, closes each at once
    try:
        client = BTTacklerClient(f"ws://127.0.0.1:{server.port}", timeout=1.0, backoff_initial=0.2, backoff_max=0.4, warn_interval=0)
        delays = []
        for _ in range(4):
            before = server.accepted
            assert client.health() is None
            assert wait_until(lambda: server.accepted == before + 1, 1.0)
            delays.append(warnings_of(caplog)[-1].rsplit("next attempt in ", 1)[1])
            result, elapsed = timed(client.health, 0.5)  # backing off: no attempt at all
            assert result is None and elapsed < 0.05
            assert "until the next attempt" in warnings_of(caplog)[-1]
            time.sleep(0.45)
            assert server.accepted == before + 1
        assert delays == ["0.2 s", "0.4 s", "0.4 s", "0.4 s"]  # doubling, capped at backoff_max
    finally:
        server.close()


def test_warnings_are_rate_limited(caplog):
    client = BTTacklerClient(f"ws://127.0.0.1:{closed_port()}", timeout=1.0, backoff_initial=0.001, warn_interval=0.5)
    for _ in range(20):
        assert client.health() is None
        time.sleep(0.002)
    assert len(warnings_of(caplog)) == 1
    time.sleep(0.55)
    assert client.health() is None
    assert len(warnings_of(caplog)) == 2 and "similar warnings suppressed" in warnings_of(caplog)[1]


def test_server_that_accepts_but_never_answers(silent_server, caplog):
    client = BTTacklerClient(f"ws://127.0.0.1:{silent_server.port}", timeout=0.5)
    result, elapsed = timed(client.health, 0.5 + 0.5)
    assert result is None and 0.4 <= elapsed < 0.5 + 0.25
    assert silent_server.accepted == 1 and silent_server.received > 0  # the handshake really went out
    assert any("no answer within 0.5 s" in m for m in warnings_of(caplog))


def test_concurrent_calls_never_wait_longer_than_their_timeout(silent_server):
    client = BTTacklerClient(f"ws://127.0.0.1:{silent_server.port}", timeout=0.5)
    elapsed: list = []

    def call() -> None:
        elapsed.append(timed(client.health, 1.0))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2)
    assert len(elapsed) == 4 and all(r is None and e < 0.5 + 0.25 for r, e in elapsed)


class ScriptedServer:
    """A real WebSocket server (websockets' own) whose answers the test scripts."""

    def __init__(self, answer):
        self.connections = 0
        self.answer = answer
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, ws):
        self.connections += 1
        try:
            for frame in ws:
                self.answer(ws, json.loads(frame))
        except Exception:  # noqa: BLE001 - the client dropped us: expected in these tests
            pass

    def close(self):
        self.server.shutdown()
        self.thread.join(2)


def reply(ws, request, result):
    ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))


def test_late_reply_is_never_taken_for_a_later_call(caplog):
    seen = []

    def answer(ws, request):
        seen.append(request["method"])
        if len(seen) == 1:
            time.sleep(0.8)  # after the client's timeout
        reply(ws, request, {"method": request["method"], "nth": len(seen)})

    server = ScriptedServer(answer)
    try:
        client = BTTacklerClient(f"ws://127.0.0.1:{server.port}", timeout=0.4, backoff_initial=0.1)
        result, elapsed = timed(lambda: client.call("first.method", {}), 1.0)
        assert result is None and elapsed < 0.4 + 0.25
        time.sleep(0.15)  # past the backoff
        assert client.call("second.method", {}) == {"method": "second.method", "nth": 2}
        assert server.connections == 2  # the timed-out connection was dropped
        time.sleep(0.8)  # the late reply has been sent meanwhile, to a connection that no longer exists
        assert client.call("third.method", {}) == {"method": "third.method", "nth": 3}
        client.close()
    finally:
        server.close()


def test_stray_frames_are_discarded(caplog):
    def answer(ws, request):
        ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"] + 1000, "result": "someone else's"}))
        ws.send(json.dumps([1, 2, 3]))
        ws.send(b"\x00binary")
        reply(ws, request, "mine")

    server = ScriptedServer(answer)
    try:
        client = BTTacklerClient(f"ws://127.0.0.1:{server.port}", timeout=1.0)
        assert client.call("x", {}) == "mine"
        assert client.call("y", {}) == "mine"
        assert warnings_of(caplog) == []
        client.close()
    finally:
        server.close()


def test_a_reply_that_is_not_json_rpc(caplog):
    def answer(ws, request):
        ws.send("this is not JSON")

    server = ScriptedServer(answer)
    try:
        client = BTTacklerClient(f"ws://127.0.0.1:{server.port}", timeout=1.0)
        assert client.health() is None
        assert any("not JSON-RPC" in m for m in warnings_of(caplog))
    finally:
        server.close()


def test_service_killed_then_restarted_on_the_same_port_and_db(tmp_path, name, caplog):
    caplog.set_level(logging.INFO, logger="bttackler")
    db = tmp_path / "killed.db"
    first = start_service(db)
    second = None
    try:
        url = first.address
        port = int(url.rsplit(":", 1)[1])
        client = BTTacklerClient(url, timeout=1.0, backoff_initial=0.2, backoff_max=1.0)
        study, trial = name("killed"), name("trial")
        for step in range(3):
            assert client.report_and_assess(study, trial, {"step": step, "metrics": {"train_loss": 2.0 - step / 10}}) is not None

        first.process.kill()  # SIGKILL, mid-study
        first.process.wait(5)
        result, elapsed = timed(lambda: client.report(study, trial, {"step": 3}), 1.5)
        assert result is None and elapsed < 1.0
        result, elapsed = timed(lambda: client.history(study, trial), 0.5)
        assert result is None and elapsed < 0.05  # backing off
        assert any("fail open" in m for m in warnings_of(caplog))

        second = start_service(db, port=port)
        assert second.address == url
        history = wait_until(lambda: client.history(study, trial), 10.0)  # no new client: it reconnects by itself
        assert history is not None, "the client did not reconnect"
        assert [v["step"] for v in history["verdicts"]] == [0, 1, 2]
        assert client.report_and_assess(study, trial, {"step": 3, "metrics": {"train_loss": 1.6}})["step"] == 3
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_callers_budget_shortens_a_call_and_never_lengthens_it(silent_server, caplog):
    client = BTTacklerClient(f"ws://127.0.0.1:{silent_server.port}", timeout=2.0, backoff_initial=0.01)
    result, elapsed = timed(lambda: client.health(timeout=0.3), 2.5)
    assert result is None and 0.25 <= elapsed < 0.3 + 0.25
    assert any("no answer within 0.3 s" in m for m in warnings_of(caplog))
    time.sleep(0.05)  # past the back-off
    accepted = silent_server.accepted
    result, elapsed = timed(lambda: client.health(timeout=0), 1.0)  # nothing left: not even an attempt
    assert result is None and elapsed < 0.05 and silent_server.accepted == accepted
    assert any("no time was left" in m for m in warnings_of(caplog))
    short = BTTacklerClient(f"ws://127.0.0.1:{silent_server.port}", timeout=0.3)
    result, elapsed = timed(lambda: short.health(timeout=5.0), 2.0)  # the client's timeout still bounds it
    assert result is None and elapsed < 0.3 + 0.25

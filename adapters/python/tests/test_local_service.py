"""LocalService: starts the real CLI in the background, finds it four ways, stops it, fails open."""
from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time

from bttackler import BTTacklerClient, LocalService
from helpers import MAIN_JS, NODE, cli_command, fake_cli, listening_line, timed, wait_until, warnings_of


def test_start_returns_at_once_and_a_client_connects_once_it_listens(tmp_path):
    db = tmp_path / "local.db"
    svc = LocalService(db=db, command=cli_command())
    try:
        started = time.monotonic()
        client = BTTacklerClient(service=svc, timeout=10.0)  # starts the service, in the background
        assert time.monotonic() - started < 0.3
        health = client.health()  # waits (within its timeout) for the start-up line
        assert health["status"] == "ok" and health["db"] == str(db)
        assert svc.address.startswith("ws://127.0.0.1:") and svc.error is None
        assert svc.command_line == cli_command() + ["serve", "--port", "0", "--db", str(db), "--exit-with-parent"]
        proc = svc.process
    finally:
        svc.stop()
    assert proc.returncode == 0  # SIGTERM: a clean shutdown
    svc.stop()  # twice is fine
    assert svc.address is None and svc.process is None and "stopped" in svc.error
    assert svc.url(timeout=0.1) is None  # a stopped service stays stopped
    assert client.health() is None


def test_command_from_the_BTTACKLER_CLI_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("BTTACKLER_CLI", str(MAIN_JS))
    with LocalService(db=tmp_path / "env.db") as svc:
        assert svc.url(timeout=20) is not None, svc.error
        assert svc.command_line[:2] == [NODE, str(MAIN_JS)]
        assert BTTacklerClient(svc.address).health()["status"] == "ok"


def test_command_from_PATH(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "bttackler"
    wrapper.write_text(f'#!/bin/sh\nexec "{NODE}" "{MAIN_JS}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with LocalService(db=tmp_path / "path.db") as svc:
        assert svc.url(timeout=20) is not None, svc.error
        assert svc.command_line[0] == str(wrapper)


def test_a_command_that_does_not_exist_fails_open(tmp_path, caplog):
    bad = str(tmp_path / "no-such-bttackler")
    svc = LocalService(db=tmp_path / "x.db", command=[bad])
    client = BTTacklerClient(service=svc, timeout=1.0)
    result, elapsed = timed(client.health, 1.5)
    assert result is None and elapsed < 0.5
    assert svc.url(timeout=0.1) is None and bad in svc.error
    logged = warnings_of(caplog)
    assert logged and all(bad in m for m in logged)
    svc.stop()
    svc.stop()


def test_nothing_to_run_names_what_was_looked_for(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bttackler there
    svc = LocalService(db=tmp_path / "x.db")
    assert svc.url(timeout=1.0) is None
    assert "BTTACKLER_CLI" in svc.error and "not on PATH" in svc.error
    assert BTTacklerClient(service=svc).report("s", "t", {"step": 0}) is None
    assert any("not on PATH" in m for m in warnings_of(caplog))


def test_without_command_env_or_path_the_built_checkout_is_run_with_node(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "node").symlink_to(NODE)  # node, and no bttackler, on PATH
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("BTTACKLER_CLI", raising=False)
    svc = LocalService(db=tmp_path / "x.db")
    try:
        assert svc.url(timeout=20) is not None, svc.error
        assert svc.command_line[:2] == [str(bin_dir / "node"), str(MAIN_JS)]
    finally:
        svc.stop()


def test_a_service_that_exits_at_start_up_reports_its_last_words(tmp_path, caplog):
    svc = LocalService(db=tmp_path / "x.db", command=cli_command(), args=["--log-level", "loud"])
    assert svc.url(timeout=20) is None
    assert "exited with code 2" in svc.error and "--log-level" in svc.error
    assert BTTacklerClient(service=svc).health() is None
    assert any("exited with code 2" in m for m in warnings_of(caplog))


def test_a_service_that_dies_later_gives_none(tmp_path, caplog):
    svc = LocalService(db=tmp_path / "x.db", command=cli_command())
    try:
        client = BTTacklerClient(service=svc, timeout=10.0)
        assert client.health() is not None
        svc.process.kill()
        svc.process.wait(5)
        assert client.health() is None
        assert "exited with code" in svc.error
        assert any("exited with code" in m for m in warnings_of(caplog))
    finally:
        svc.stop()


def test_a_host_killed_outright_does_not_leave_its_service_behind(tmp_path):
    # a real host process that starts a LocalService and is then killed with SIGKILL (no atexit runs)
    host_code = (
        "import sys, time\n"
        "from bttackler import LocalService\n"
        f"svc = LocalService(db={str(tmp_path / 'h.db')!r}, command={cli_command()!r})\n"
        "svc.start()\n"
        "assert svc.url(timeout=20)\n"
        "print(svc.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    host = subprocess.Popen([sys.executable, "-c", host_code], stdout=subprocess.PIPE, text=True)
    try:
        service_pid = int(host.stdout.readline())
        os.kill(service_pid, 0)  # running
        host.kill()
        host.wait(5)

        def gone() -> bool:
            try:
                os.kill(service_pid, 0)
            except ProcessLookupError:
                return True
            # a zombie (exited, not yet reaped by its new parent) counts as gone
            with open(f"/proc/{service_pid}/stat") as f:
                return f.read().split(") ")[1].startswith("Z")

        assert wait_until(gone, 5.0), "the service outlived its host"
    finally:
        if host.poll() is None:
            host.kill()


def test_stop_kills_a_service_that_ignores_sigterm(tmp_path, caplog):
    command = fake_cli(
        tmp_path,
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"print({listening_line(1)!r}, file=sys.stderr, flush=True)\n"
        "time.sleep(60)\n",
    )
    svc = LocalService(db=tmp_path / "x.db", command=command, stop_timeout=0.3)
    assert svc.url(timeout=10) == "ws://127.0.0.1:1"
    proc = svc.process
    started = time.monotonic()
    svc.stop()
    assert time.monotonic() - started < 2.0
    assert proc.returncode == -9
    assert any("ignored SIGTERM" in m for m in warnings_of(caplog))


def test_stderr_is_drained_into_the_logger(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="bttackler")
    # 512 KiB of chatter before the start-up line: a pipe nobody drains would block it long before.
    command = fake_cli(
        tmp_path,
        "for i in range(4096):\n"
        "    print(json.dumps({'msg': 'chatter', 'i': i, 'pad': 'x' * 100}), file=sys.stderr)\n"
        f"print({listening_line(2)!r}, file=sys.stderr, flush=True)\n"
        "for i in range(4096):\n"
        "    print('more chatter ' + 'y' * 100, file=sys.stderr)\n"
        "sys.stderr.flush()\n"
        "time.sleep(60)\n",
    )
    with LocalService(db=tmp_path / "x.db", command=command, stop_timeout=2) as svc:
        assert svc.url(timeout=10) == "ws://127.0.0.1:2"
        lines = lambda: [r for r in caplog.records if r.name == "bttackler.service"]  # noqa: E731
        deadline = time.monotonic() + 5
        while len(lines()) < 8193 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(lines()) == 8193 and all(r.levelno == logging.DEBUG for r in lines())

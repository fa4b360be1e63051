"""Fixtures of the Optuna end-to-end test: the real service of this checkout, and PostgreSQL when the machine has it."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from bttackler import LocalService

ROOT = Path(__file__).resolve().parents[3]
MAIN_JS = ROOT / "dist" / "cli" / "main.js"
POSTGRES_ENV = "BTTACKLER_E2E_POSTGRES"  # 1: PostgreSQL must run; 0: leave it out; unset: run it when it is installed


def pytest_configure(config: pytest.Config) -> None:
    if shutil.which("node") is None:
        raise pytest.UsageError("the Optuna end-to-end test needs `node` on PATH")
    if not MAIN_JS.is_file():
        raise pytest.UsageError(f"{MAIN_JS} is missing: run `npm run build` first")
    for var in ("BTTACKLER_TOKEN", "BTTACKLER_CLI", "BTTACKLER_URL"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """One service shared by every worker process of a test, as in a real distributed study."""
    svc = LocalService(db=tmp_path_factory.mktemp("service") / "bttackler.db", command=["node", str(MAIN_JS)]).start()
    assert svc.url(timeout=30) is not None, f"the service did not start: {svc.error}"
    yield svc
    svc.stop()


def _pg_bin(name: str) -> Optional[str]:
    for path in [shutil.which(name)] + sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(why: str) -> None:
    if os.environ.get(POSTGRES_ENV) == "1":
        pytest.fail(f"PostgreSQL was required ({POSTGRES_ENV}=1) but cannot run: {why}")
    pytest.skip(f"PostgreSQL left out: {why}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL cluster (Debian's postgresql package) on a free loopback port: its SQLAlchemy URL."""
    if os.environ.get(POSTGRES_ENV) == "0":
        pytest.skip(f"PostgreSQL left out ({POSTGRES_ENV}=0)")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        _unavailable("initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _unavailable("the Python driver psycopg2 is not installed in this environment (pip install psycopg2-binary)")
    as_user: List[str] = []
    base = tempfile.mkdtemp(prefix="bttackler-e2e-pg-")
    if os.geteuid() == 0:  # initdb refuses to run as root: run the cluster as the postgres user
        runuser = shutil.which("runuser")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except (ImportError, KeyError):
            pw = None
        if runuser is None or pw is None:
            shutil.rmtree(base, ignore_errors=True)
            _unavailable("running as root without a `postgres` user and runuser to start the cluster as")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chmod(base, 0o755)
        as_user = [runuser, "-u", "postgres", "--"]
    data, port = os.path.join(base, "data"), _free_port()
    started = False
    try:
        subprocess.run(as_user + [initdb, "-D", data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
        subprocess.run(as_user + [pg_ctl, "-D", data, "-o", options, "-l", os.path.join(base, "log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True, timeout=90)
        started = True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        log = Path(base, "log")
        tail = log.read_text(errors="replace")[-800:] if log.is_file() else ""
        shutil.rmtree(base, ignore_errors=True)
        _unavailable(f"the cluster did not start ({exc}; {detail.decode(errors='replace')[-400:]} {tail})")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(as_user + [pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], capture_output=True, timeout=60)
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)

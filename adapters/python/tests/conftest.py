"""Fixtures: the real service (node dist/cli/main.js of this checkout) and a server that never answers."""
from __future__ import annotations

import os
import uuid
from typing import Callable, Iterator

import pytest

from bttackler import BTTacklerClient, LocalService
from helpers import MAIN_JS, NODE, SilentServer, start_service


def pytest_configure(config: pytest.Config) -> None:
    if NODE is None:
        raise pytest.UsageError("the Python tests run the real service and need `node` on PATH")
    if not MAIN_JS.is_file():
        raise pytest.UsageError(f"{MAIN_JS} is missing: build the service first (npm run build)")
    # The tests decide about tokens and commands themselves.
    for var in ("BTTACKLER_TOKEN", "BTTACKLER_CLI"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """One service shared by the tests that need no special one."""
    svc = start_service(tmp_path_factory.mktemp("shared") / "shared.db")
    yield svc
    svc.stop()


@pytest.fixture
def client(service: LocalService) -> Iterator[BTTacklerClient]:
    """A client of the shared service, closed after the test."""
    c = BTTacklerClient(service.address, timeout=5.0)
    yield c
    c.close()


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique study and trial names, so tests sharing the service never collide."""
    tag = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{tag}"


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()

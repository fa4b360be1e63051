"""A token-protected service: refused without the token, served with it; the token never reaches a log."""
from __future__ import annotations

import logging
import uuid

import pytest

from bttackler import BTTacklerClient
from helpers import closed_port, start_service, warnings_of


@pytest.fixture(scope="module")
def token():
    return f"tok-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def protected(tmp_path_factory, token):
    svc = start_service(tmp_path_factory.mktemp("auth") / "auth.db", token=token)  # BTTACKLER_TOKEN in its env
    yield svc
    svc.stop()


def test_client_without_the_token_is_refused(protected, caplog):
    client = BTTacklerClient(protected.address, timeout=2.0)
    assert client.health() is None
    assert any("4401" in m and "fail open" in m for m in warnings_of(caplog))


def test_client_with_a_wrong_token_is_refused(protected, caplog):
    assert BTTacklerClient(protected.address, token="not-the-token").health() is None
    assert any("4401" in m for m in warnings_of(caplog))


def test_token_as_argument_from_the_environment_in_the_url_and_from_the_service(protected, token, monkeypatch):
    assert BTTacklerClient(protected.address, token=token).health()["status"] == "ok"
    assert BTTacklerClient(f"{protected.address}/?token={token}").health()["status"] == "ok"
    assert BTTacklerClient(service=protected).health()["status"] == "ok"
    monkeypatch.setenv("BTTACKLER_TOKEN", token)
    assert BTTacklerClient(protected.address).health()["status"] == "ok"


def test_the_token_is_never_logged(protected, token, caplog):
    caplog.set_level(logging.DEBUG)  # everything, websockets' own handshake lines included
    good = BTTacklerClient(protected.address, token=token)
    assert good.report_and_assess("auth", "t1", {"step": 0, "metrics": {"train_loss": 1.0}}) is not None
    assert BTTacklerClient(f"{protected.address}/?token={token}", timeout=0.5).health() is not None
    unreachable = BTTacklerClient(f"ws://127.0.0.1:{closed_port()}/?token={token}", timeout=0.5)
    assert unreachable.health() is None and unreachable.health() is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("Authorization" in m for m in messages), "websockets' debug lines were not captured"
    assert not any(token in m for m in messages)
    assert any("token=***" in m and "fail open" in m for m in messages)
    assert token not in repr(good) and token not in repr(unreachable)

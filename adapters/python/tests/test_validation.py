"""Constructor arguments are checked up front, and the messages name the bad value."""
from __future__ import annotations

import socket

import pytest

from bttackler import BTTacklerClient, LocalService


@pytest.mark.parametrize(
    "kwargs, error, shown",
    [
        ({"url": "http://127.0.0.1:8765"}, ValueError, "'http://127.0.0.1:8765'"),
        ({"url": "127.0.0.1:8765"}, ValueError, "'127.0.0.1:8765'"),
        ({"url": 8765}, TypeError, "8765"),
        ({"url": "ws://"}, ValueError, "'ws://'"),
        ({"url": "ws://127.0.0.1:99999"}, ValueError, "'ws://127.0.0.1:99999'"),
        ({"url": "ws://h:1", "timeout": 0}, ValueError, "timeout must be a finite number > 0, got 0"),
        ({"url": "ws://h:1", "timeout": -1.5}, ValueError, "got -1.5"),
        ({"url": "ws://h:1", "timeout": float("nan")}, ValueError, "got nan"),
        ({"url": "ws://h:1", "timeout": "2"}, TypeError, "timeout must be a number, got '2'"),
        ({"url": "ws://h:1", "timeout": True}, TypeError, "got True"),
        ({"url": "ws://h:1", "backoff_initial": 0}, ValueError, "backoff_initial must be a finite number > 0, got 0"),
        ({"url": "ws://h:1", "backoff_initial": 2, "backoff_max": 1}, ValueError, "backoff_max must be >= backoff_initial (2), got 1"),
        ({"url": "ws://h:1", "warn_interval": -1}, ValueError, "warn_interval must be a finite number >= 0, got -1"),
        ({"url": "ws://h:1", "token": 123}, TypeError, "token must be a string, got a int"),
        ({"url": "ws://h:1", "token": ""}, ValueError, "token must not be empty"),
        ({}, ValueError, "got neither"),
        ({"service": "ws://h:1"}, TypeError, "service must be a LocalService, got 'ws://h:1'"),
    ],
)
def test_client_arguments(kwargs, error, shown):
    with pytest.raises(error) as info:
        BTTacklerClient(**kwargs)
    assert shown in str(info.value)


def test_url_and_service_together(tmp_path):
    with pytest.raises(ValueError, match="either url or service"):
        BTTacklerClient("ws://h:1", service=LocalService(db=tmp_path / "x.db", command=["true"]))


def test_a_bad_token_is_named_but_never_shown():
    secret = "abc def-secret"
    with pytest.raises(ValueError) as info:
        BTTacklerClient("ws://h:1", token=secret)
    assert "whitespace" in str(info.value) and secret not in str(info.value)


def test_a_bad_token_in_the_environment(monkeypatch):
    monkeypatch.setenv("BTTACKLER_TOKEN", "with\nnewline")
    with pytest.raises(ValueError, match="BTTACKLER_TOKEN must not contain whitespace"):
        BTTacklerClient("ws://h:1")


def test_the_token_in_a_bad_url_is_hidden():
    with pytest.raises(ValueError) as info:
        BTTacklerClient("http://h:1/?token=hunter2")
    assert "hunter2" not in str(info.value) and "token=***" in str(info.value)


def test_the_constructor_never_touches_the_network(monkeypatch):
    touched = []

    def guard(name):
        def refuse(*args, **kwargs):
            touched.append(name)
            raise OSError(f"the test's socket guard refused {name}")
        return refuse

    monkeypatch.setattr(socket, "getaddrinfo", guard("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", guard("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", guard("socket.connect"))
    client = BTTacklerClient("ws://nothing-listens.invalid:1", timeout=1.0)
    assert touched == []  # nothing resolved or connected yet
    # the guard does catch the client's network use: the first call goes through it (and fails open)
    assert client.health() is None
    assert touched, "the first call should have tried the network"
    client.close()


@pytest.mark.parametrize(
    "kwargs, error, shown",
    [
        ({"db": ""}, ValueError, "db must be a non-empty path (or ':memory:'), got ''"),
        ({"db": None}, ValueError, "got None"),
        ({"port": 70000}, ValueError, "port must be an integer from 0 to 65535 (0 = any free port), got 70000"),
        ({"port": "8765"}, ValueError, "got '8765'"),
        ({"command": "bttackler serve"}, TypeError, "command must be a list of strings such as ['node', 'dist/cli/main.js'], got 'bttackler serve'"),
        ({"command": []}, ValueError, "got []"),
        ({"command": ["node", 3]}, ValueError, "got ['node', 3]"),
        ({"args": "--log-level debug"}, TypeError, "args must be a list of strings, got '--log-level debug'"),
        ({"stop_timeout": 0}, ValueError, "stop_timeout must be a finite number > 0, got 0"),
        ({"token": 5}, TypeError, "token must be a string"),
    ],
)
def test_local_service_arguments(kwargs, error, shown):
    with pytest.raises(error) as info:
        LocalService(**kwargs)
    assert shown in str(info.value)

"""Every client method against the real service."""
from __future__ import annotations

import asyncio
import math
import pickle
import threading

import pytest

from bttackler import BTTacklerClient, should_stop
from helpers import warnings_of


def test_every_method(client, name):
    study, trial = name("study"), name("trial")

    opened = client.open_study(study, {"max_steps": 12})
    assert opened["study"] == study and opened["created"] is True
    assert opened["config"]["max_steps"] == 12 and "rules" in opened["config"]  # defaults filled in
    assert client.open_study(study)["created"] is False

    payload = {"step": 0, "max_steps": 12, "metrics": {"train_loss": 2.3, "val_loss": 2.4}}
    assert client.report(study, trial, payload) == {"study": study, "trial": trial, "step": 0, "duplicate": False}
    assert client.report(study, trial, payload)["duplicate"] is True  # idempotent: adapters may retry

    verdict = client.report_and_assess(study, trial, {"step": 1, "metrics": {"train_loss": 2.0, "val_loss": 2.1}})
    assert verdict["study"] == study and verdict["trial"] == trial and verdict["step"] == 1
    assert verdict["stop"] is False and verdict["duplicate"] is False and should_stop(verdict) is False

    assert client.assess(study, trial)["step"] == 1
    assert client.assess(study, trial, step=0)["step"] == 0

    history = client.history(study, trial)
    assert history["study"] == study and [v["step"] for v in history["verdicts"]] == [0, 1]

    assert client.end_trial(study, trial, "complete") == {"study": study, "trial": trial, "state": "complete"}
    trials = client.study_trials(study)["trials"]
    assert [(t["trial"], t["last_step"], t.get("ended")) for t in trials] == [(trial, 1, "complete")]
    assert study in [s["study"] for s in client.list_studies()["studies"]]

    health = client.health()
    assert health["status"] == "ok" and health["version"] and health["studies"] >= 1


def test_nan_train_loss_is_stopped_with_nf(client, name):
    study, trial = name("nan"), name("trial")
    assert client.report_and_assess(study, trial, {"step": 0, "metrics": {"train_loss": 1.5}})["stop"] is False
    verdict = client.report_and_assess(study, trial, {"step": 1, "metrics": {"train_loss": float("nan")}})
    assert should_stop(verdict) is True
    assert "NF" in [s["code"] for s in verdict["symptoms"]]
    assert verdict["stopped_at"] == 1 and verdict["reason"].startswith("NF")
    # Infinity goes out as the bare token too, and a stopped trial stays stopped.
    later = client.report_and_assess(study, trial, {"step": 2, "metrics": {"train_loss": math.inf}})
    assert should_stop(later) and later["stopped_at"] == 1


def test_error_replies_return_none_and_log_code_and_message(client, name, caplog):
    study, trial = name("errors"), name("trial")
    assert client.open_study(study, {"max_steps": 10}) is not None
    assert client.report(study, trial, {"step": 3}) is not None

    assert client.open_study(study, {"max_steps": 20}) is None  # config changed after events
    assert client.report(study, trial, {"step": 1}) is None  # older step
    assert client.end_trial(study, trial, "finished") is None  # not a state
    assert client.assess(study, name("nobody")) is None  # no such trial
    assert client.history(name("no-study"), trial) is None  # no such study

    logged = "\n".join(warnings_of(caplog))
    assert "study.open failed: error -32004" in logged
    assert "trial.report failed: error -32003" in logged
    assert "trial.end failed: error -32602: params.state" in logged and '"finished"' in logged
    assert "trial.assess failed: error -32002: unknown trial" in logged  # docs/protocol.md: a trial the study never had
    assert "trial.history failed: error -32001: unknown study" in logged
    # An error reply is an answer, not an outage: the client goes on at once.
    assert client.health()["status"] == "ok"


def test_params_that_are_not_json_return_none(client, name, caplog):
    class Scalar:  # what numpy and torch scalars look like
        def __init__(self, value):
            self.value = value

        def item(self):
            return self.value

    study, trial = name("scalars"), name("trial")
    reply = client.report(study, trial, {"step": 0, "metrics": {"train_loss": Scalar(0.25)}})
    assert reply is not None and reply["step"] == 0
    assert client.report(study, trial, {"step": 1, "metrics": {"train_loss": object()}}) is None
    assert any("params are not JSON" in m for m in warnings_of(caplog))
    assert client.health() is not None


def test_threads_share_one_client(client, name):
    study = name("threads")
    results: dict = {}

    def worker(i: int) -> None:
        results[i] = [client.report_and_assess(study, f"t{i}", {"step": s, "metrics": {"train_loss": 1.0 / (s + 1)}}) for s in range(10)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == list(range(8))
    for i, verdicts in results.items():
        assert [(v["trial"], v["step"]) for v in verdicts] == [(f"t{i}", s) for s in range(10)]


def test_callable_from_inside_a_running_event_loop(client):
    async def main():  # how Ray calls a stopper: synchronously, from its event loop
        return client.health()

    assert asyncio.run(main())["status"] == "ok"


def test_pickles_without_its_connection(client, service):
    assert client.health() is not None  # connected
    copy = pickle.loads(pickle.dumps(client))
    assert copy.health()["status"] == "ok"
    from_service = pickle.loads(pickle.dumps(BTTacklerClient(service=service)))
    assert from_service.health()["status"] == "ok"


def test_close_is_final_and_repeatable(service, caplog):
    c = BTTacklerClient(service.address)
    assert c.health() is not None
    c.close()
    c.close()
    assert c.health() is None
    assert any("client is closed" in m for m in warnings_of(caplog))


def test_should_stop():
    assert should_stop(None) is False
    assert should_stop({}) is False
    assert should_stop({"stop": False}) is False
    assert should_stop({"stop": "yes"}) is False
    assert should_stop({"stop": True}) is True

"""The NNI assessor against the real service (no nnictl here; test/e2e/nni runs real experiments)."""
from __future__ import annotations

import importlib
import logging
import math
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("nni")

from nni.assessor import AssessResult, Assessor  # noqa: E402
from nni.utils import ClassArgsValidator  # noqa: E402

from bttackler import BTTacklerClient  # noqa: E402
from bttackler.nni import (  # noqa: E402
    META_FILE,
    BTTacklerAssessor,
    BTTacklerClassArgsValidator,
    check_class_args,
    experiment_context,
    to_payload,
)
from bttackler.nni import assessor as assessor_module  # noqa: E402
from helpers import SlowService, cli_command, closed_port, start_service, timed, warnings_of  # noqa: E402

NAN = float("nan")


def epoch(step, **metrics):
    """What the JS trial SDK reports through NNI: the payload with NNI's `default` added."""
    return {"default": metrics.get("val_acc", 0.5), "step": step, "max_steps": 10, "metrics": metrics}


@pytest.fixture
def make(service, name):
    """Assessors on the shared service, each with its own study; closed after the test."""
    made = []

    def build(**class_args):
        class_args.setdefault("url", service.address)
        class_args.setdefault("study", name(f"nni{len(made)}"))
        assessor = BTTacklerAssessor(**class_args)
        made.append(assessor)
        return assessor

    yield build
    for assessor in made:
        assessor.close()


def trials_of(client, study):
    return {t["trial"]: t for t in client.study_trials(study)["trials"]}


# ---------------------------------------------------------------------- classArgs


@pytest.mark.parametrize(
    "class_args, error, shown",
    [
        ({"urll": "ws://h:1"}, ValueError, "unknown argument 'urll'; the arguments are url, token, timeout"),
        ({"url": "http://127.0.0.1:8765"}, ValueError, "classArgs.url: url must start with ws:// or wss://, got 'http://127.0.0.1:8765'"),
        ({"url": 8765}, TypeError, "got 8765"),
        ({"token": ""}, ValueError, "classArgs.token must not be empty"),
        ({"timeout": 0}, ValueError, "classArgs.timeout must be a number of seconds > 0 and <= 600, got 0"),
        ({"timeout": -2}, ValueError, "got -2"),
        ({"timeout": float("inf")}, ValueError, "got inf"),
        ({"timeout": "5"}, TypeError, "classArgs.timeout must be a number of seconds, got '5' (str)"),
        ({"timeout": True}, TypeError, "got True (bool)"),
        ({"study": ""}, ValueError, "classArgs.study must have 1 to 256 characters, got ''"),
        ({"study": 7}, TypeError, "classArgs.study must be a string, got 7 (int)"),
        ({"config": [1, 2]}, TypeError, "classArgs.config must be a mapping (a study configuration, config.v1), got [1, 2] (list)"),
        ({"config": {"max_steps": NAN}}, ValueError, "classArgs.config must hold only JSON values"),
        ({"optimize_mode": "max"}, ValueError, "classArgs.optimize_mode must be one of maximize, minimize, got 'max'"),
        ({"metric": ""}, ValueError, "classArgs.metric must be a metric name of 1 to 128 characters, got ''"),
        ({"command": 5}, TypeError, "classArgs.command must be a list of strings"),
        ({"command": []}, ValueError, "classArgs.command must be a non-empty list of non-empty strings, got []"),
        ({"command": "node 'unclosed"}, ValueError, "classArgs.command cannot be split into words"),
        ({"db": ""}, ValueError, "classArgs.db must be a non-empty path (or ':memory:'), got ''"),
        ({"url": "ws://h:1", "db": "x.db"}, ValueError, "db configure the local service, which is not used when url is given"),
    ],
)
def test_bad_class_args_are_refused_by_the_constructor_and_the_validator(class_args, error, shown):
    with pytest.raises(error) as raised:
        BTTacklerAssessor(**class_args)
    assert shown in str(raised.value)
    with pytest.raises(error) as raised_by_validator:
        BTTacklerClassArgsValidator().validate_class_args(**class_args)
    assert str(raised_by_validator.value) == str(raised.value)


def test_class_args_defaults_and_conversions():
    settings = check_class_args()
    assert (settings.url, settings.timeout, settings.optimize_mode, settings.metric) == (None, 5.0, "maximize", "val_acc")
    assert check_class_args(optimize_mode="minimize").metric == "train_loss"
    assert check_class_args(optimize_mode="minimize", metric="val_loss").metric == "val_loss"
    assert check_class_args(command="node /opt/bttackler/dist/cli/main.js").command == ("node", "/opt/bttackler/dist/cli/main.js")
    assert check_class_args(timeout=3, url=None).timeout == 3.0  # YAML's null is "not given"
    assert BTTacklerClassArgsValidator().validate_class_args(url="ws://127.0.0.1:1", config={"max_steps": 20}) is None
    assert isinstance(BTTacklerClassArgsValidator(), ClassArgsValidator)
    assert issubclass(BTTacklerAssessor, Assessor)


def test_the_meta_file_is_what_nnictl_algo_register_accepts():
    from nni.tools.nnictl.algo_management import read_reg_meta_list, verify_algo_import

    [meta] = read_reg_meta_list(META_FILE)  # nnictl's own reading and checks of a --meta file
    assert (meta.name, meta.algo_type, meta.is_builtin) == ("BTTackler", "assessor", False)
    verify_algo_import(meta)  # nnictl imports className and classArgsValidator before registering
    module, _, cls = meta.class_name.rpartition(".")
    assert getattr(importlib.import_module(module), cls) is BTTacklerAssessor
    module, _, cls = meta.validator_class_name.rpartition(".")
    assert getattr(importlib.import_module(module), cls) is BTTacklerClassArgsValidator


# ---------------------------------------------------------------------- start-up and faults


def test_the_constructor_neither_connects_nor_starts_a_service(silent_server):
    assessor, elapsed = timed(lambda: BTTacklerAssessor(url=f"ws://127.0.0.1:{silent_server.port}"), 1.0)
    assert elapsed < 0.5 and silent_server.accepted == 0
    local, _ = timed(lambda: BTTacklerAssessor(command=cli_command(), db=":memory:"), 1.0)
    assert local.service is None  # started on the first intermediate result, not before
    assessor.close()
    local.close()


def test_an_unreachable_service_answers_good_at_once_and_warns(caplog):
    assessor = BTTacklerAssessor(url=f"ws://127.0.0.1:{closed_port()}", timeout=1.0)
    for n in range(1, 4):
        result, elapsed = timed(lambda: assessor.assess_trial("t1", [epoch(i, val_acc=NAN) for i in range(n)]), 1.5)
        assert result is AssessResult.Good and elapsed < 1.0
    assessor.trial_end("t1", False)  # nothing to forward, nothing raised
    assert any("fail open" in m for m in warnings_of(caplog))
    assessor.close()


def test_a_service_that_never_answers_costs_about_one_timeout_then_good(silent_server, caplog):
    assessor = BTTacklerAssessor(url=f"ws://127.0.0.1:{silent_server.port}", timeout=0.5)
    result, elapsed = timed(lambda: assessor.assess_trial("t1", [epoch(0, val_acc=NAN)]), 2.0)
    assert result is AssessResult.Good and 0.4 <= elapsed < 1.2
    result, elapsed = timed(lambda: assessor.assess_trial("t1", [epoch(0, val_acc=NAN), epoch(1, val_acc=NAN)]), 2.0)
    assert result is AssessResult.Good and elapsed < 0.2  # the client backs off: no second wait
    assert any("no answer within 0.5 s" in m for m in warnings_of(caplog))
    assessor.close()


def test_an_assessment_of_several_calls_stays_within_the_timeout_in_all(caplog):
    # each call alone answers within the timeout (0.7 s of 1 s), but opening the study and reporting
    # two results would take 2.1 s: the assessment's calls share one budget
    slow = SlowService(delay=0.7)
    try:
        assessor = BTTacklerAssessor(url=slow.url, timeout=1.0)
        history = [epoch(i, val_acc=0.5) for i in range(2)]
        result, elapsed = timed(lambda: assessor.assess_trial("t1", history), 3.0)
        assert result is AssessResult.Good and elapsed < 1.0 + 0.25
        assert slow.requests[:2] == ["study.open", "trial.reportAndAssess"]
        assessor.close()
    finally:
        slow.close()


def test_a_local_service_that_cannot_start_answers_good(tmp_path, caplog):
    assessor = BTTacklerAssessor(command=[str(tmp_path / "no-such-cli")], db=":memory:", timeout=1.0)
    result, elapsed = timed(lambda: assessor.assess_trial("t1", [epoch(0, val_acc=NAN)]), 3.0)
    assert result is AssessResult.Good and elapsed < 1.5
    assert any("no-such-cli" in m for m in warnings_of(caplog))
    assessor.close()


def test_nothing_raises_into_nni(make, monkeypatch, caplog):
    assessor = make()
    assert assessor.assess_trial("t1", [object(), {"step": 0, "metrics": {"loss": object()}}]) is AssessResult.Good
    assessor.trial_end("never-seen", True)
    monkeypatch.setattr(assessor_module, "to_payload", lambda *a: 1 / 0)  # a bug of ours
    assert assessor.assess_trial("t2", [0.5]) is AssessResult.Good
    assert any("ZeroDivisionError" in m and "answering Good" in m for m in warnings_of(caplog))


# ---------------------------------------------------------------------- verdicts


def test_a_stop_verdict_is_bad_once_and_logged_with_trial_step_symptom_and_evidence(make, client, caplog):
    caplog.set_level(logging.INFO, logger="bttackler.nni")
    assessor = make()
    history = [epoch(0, train_loss=2.3, val_acc=0.1)]
    assert assessor.assess_trial("t1", history) is AssessResult.Good
    history.append(epoch(1, train_loss=NAN, val_acc=0.1))
    assert assessor.assess_trial("t1", history) is AssessResult.Bad
    [line] = [r.getMessage() for r in caplog.records if "stops trial" in r.getMessage()]
    assert line.startswith(f"bttackler stops trial t1 at step 1 (study {assessor.study}): symptom NF; reason: NF non_finite_metric")
    assert 'evidence: NF/non_finite_metric {"indicator":"train_loss","value":null,"threshold":0}' in line
    # NNI is killing the trial; results still arriving are not answered Bad again (another SIGINT would cut the trial short)
    history.append(epoch(2, train_loss=NAN, val_acc=0.1))
    assert assessor.assess_trial("t1", history) is AssessResult.Good
    assessor.trial_end("t1", False)
    trial = trials_of(client, assessor.study)["t1"]
    assert (trial["stopped_at"], trial["ended"], trial["last_step"]) == (1, "pruned", 1)


def test_payload_dicts_use_every_rule(make, client):
    assessor = make()
    grads = [{"name": "dense1", "grad_abs_mean": 5e4}, {"name": "dense2", "grad_abs_mean": 6e4}]
    value = {"default": 0.3, "step": 0, "metrics": {"train_loss": 1.0}, "layers": grads, "accuracy": 0.3}  # extra keys are left out
    assert assessor.assess_trial("t1", [value]) is AssessResult.Bad
    [verdict] = client.history(assessor.study, "t1")["verdicts"]
    assert {s["code"] for s in verdict["symptoms"]} == {"EG"}  # the layers reached the engine


def test_plain_numbers_are_one_metric_and_only_the_metric_rules_see_them(make, client):
    maximizing = make()
    assert maximizing.assess_trial("t1", [0.5]) is AssessResult.Good
    assert maximizing.assess_trial("t1", [0.5, NAN]) is AssessResult.Bad
    [stop] = client.history(maximizing.study, "t1")["verdicts"][-1]["symptoms"]
    assert (stop["rule"], stop["evidence"]["indicator"]) == ("non_finite_metric", "val_acc")

    minimizing = make(optimize_mode="minimize", config={"max_steps": 10})
    losses = [1.0, 0.8, 2.5, 3.0]  # above 3 x the best (0.8, DIV factor 3) at two steps in a row: DIV
    results = [minimizing.assess_trial("t1", losses[: i + 1]) for i in range(len(losses))]
    assert results == [AssessResult.Good] * 3 + [AssessResult.Bad]
    verdict = client.history(minimizing.study, "t1")["verdicts"][-1]
    assert {s["code"] for s in verdict["symptoms"] if s["action"] == "stop"} == {"DIV"}
    assert verdict["symptoms"][0]["evidence"]["indicator"] == "train_loss"

    as_dict = make(metric="val_loss")
    assert as_dict.assess_trial("t1", [{"default": 0.7}, {"default": math.inf}]) is AssessResult.Bad  # NNI's dict without payload fields


def test_only_new_results_are_sent(make, client, monkeypatch):
    assessor = make()
    assessor.assess_trial("t1", [epoch(0, val_acc=0.1)])  # connects
    sent = []
    real = assessor._client.report_and_assess
    monkeypatch.setattr(assessor._client, "report_and_assess", lambda s, t, p, **kw: sent.append(p["step"]) or real(s, t, p, **kw))
    history = [epoch(0, val_acc=0.1)]
    for step in range(1, 4):
        history.append(epoch(step, val_acc=0.1 * step))
        assert assessor.assess_trial("t1", history) is AssessResult.Good
    assert sent == [1, 2, 3]
    assert trials_of(client, assessor.study)["t1"]["last_step"] == 3


def test_results_missed_while_the_service_was_down_are_sent_when_it_is_back(tmp_path):
    port = closed_port()
    db = tmp_path / "restarted.db"
    first = start_service(db, port=port)
    assessor = BTTacklerAssessor(url=f"ws://127.0.0.1:{port}", study="s", timeout=2.0)
    history = [epoch(0, val_acc=0.1)]
    assert assessor.assess_trial("t1", history) is AssessResult.Good
    first.stop()
    history.append(epoch(1, val_acc=0.2))
    assert assessor.assess_trial("t1", history) is AssessResult.Good  # down: fail open
    second = start_service(db, port=port)  # back, same address and database
    try:
        time.sleep(0.6)  # the client's first back-off (0.5 s)
        history.append(epoch(2, val_acc=NAN))
        assert assessor.assess_trial("t1", history) is AssessResult.Bad
        client = BTTacklerClient(second.address, timeout=5.0)
        assert [v["step"] for v in client.history("s", "t1")["verdicts"]] == [0, 1, 2]
        client.close()
    finally:
        assessor.close()
        second.stop()


def test_a_value_the_service_refuses_is_skipped(make, client, caplog):
    assessor = make()
    history = [epoch(0, val_acc=0.1), {"step": 1, "metrics": {"train_loss": "high"}}, epoch(2, val_acc=0.2)]
    assert assessor.assess_trial("t1", history) is AssessResult.Good
    assert [v["step"] for v in client.history(assessor.study, "t1")["verdicts"]] == [0, 2]
    assert any("refused result 1 of trial t1" in m for m in warnings_of(caplog))


def test_trial_end_is_forwarded(make, client):
    assessor = make()
    for trial in ("ok", "bad"):
        assessor.assess_trial(trial, [epoch(0, val_acc=0.3)])
    assessor.trial_end("ok", True)
    assessor.trial_end("bad", False)
    trials = trials_of(client, assessor.study)
    assert (trials["ok"]["ended"], trials["bad"]["ended"]) == ("complete", "failed")


def test_a_config_the_service_refuses_turns_the_assessor_off(make, client, caplog):
    assessor = make(config={"max_steps": 0})
    assert assessor.assess_trial("t1", [epoch(0, val_acc=NAN)]) is AssessResult.Good
    assert assessor.assess_trial("t1", [epoch(0, val_acc=NAN), epoch(1, val_acc=NAN)]) is AssessResult.Good
    errors = [r.getMessage() for r in caplog.records if r.name == "bttackler.nni" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "refused to open study" in errors[0] and "no early stopping" in errors[0]
    assert any("config.max_steps" in m for m in warnings_of(caplog))  # the service's message, naming the field
    assert client.study_trials(assessor.study) is None  # nothing was reported to it


# ---------------------------------------------------------------------- the local service


@pytest.fixture
def service_logger():
    """The assessor sends the local service's log to a file in NNI's dispatcher: undo that after the test."""
    log = logging.getLogger("bttackler.service")
    saved = (list(log.handlers), log.level, log.propagate)
    yield log
    for handler in log.handlers:
        if handler not in saved[0]:
            handler.close()
    log.handlers[:], log.level, log.propagate = saved


def test_under_nni_a_local_service_keeps_its_database_in_the_experiment_directory(tmp_path, monkeypatch, service_logger, caplog):
    caplog.set_level(logging.INFO, logger="bttackler.nni")
    experiment = tmp_path / "exps" / "Ab12cd34"
    monkeypatch.setenv("NNI_LOG_DIRECTORY", str(experiment / "log"))  # as NNI's manager starts the dispatcher
    monkeypatch.setenv("BTTACKLER_CLI", cli_command()[1])
    assessor = BTTacklerAssessor()
    assert assessor.study == "nni-Ab12cd34"
    assert assessor.assess_trial("t1", [epoch(0, train_loss=NAN)]) is AssessResult.Bad
    process = assessor.service.process
    assert (experiment / "bttackler" / "bttackler.db").is_file()
    assessor._on_exit()  # the dispatcher's hook when the experiment ends
    assert process.poll() is not None and assessor.service is None
    assert '"msg":"trial stopped"' in (experiment / "bttackler" / "service.log").read_text()
    assert any("the local bttackler service was stopped" in r.getMessage() for r in caplog.records)
    assert assessor.assess_trial("t2", [epoch(0, train_loss=NAN)]) is AssessResult.Good  # closed: fail open


def test_outside_nni_the_local_service_uses_the_db_given(tmp_path, monkeypatch):
    monkeypatch.delenv("NNI_LOG_DIRECTORY", raising=False)
    monkeypatch.delenv("NNI_CHECKPOINT_DIRECTORY", raising=False)
    db = tmp_path / "sub" / "here.db"
    assessor = BTTacklerAssessor(command=" ".join(cli_command()), db=str(db), study="s")
    assert assessor.assess_trial("t1", [0.5]) is AssessResult.Good
    assert db.is_file() and assessor.service.address.startswith("ws://127.0.0.1:")
    assessor.close()
    assessor.close()  # again: nothing happens


# ---------------------------------------------------------------------- the pure parts


def test_experiment_context_from_the_dispatcher_environment():
    assert experiment_context({"NNI_LOG_DIRECTORY": "/x/exps/abc/log"}).directory == "/x/exps/abc"
    assert experiment_context({"NNI_CHECKPOINT_DIRECTORY": "/x/exps/abc/checkpoint"}).id == "abc"
    assert experiment_context({"NNI_LOG_DIRECTORY": "/x/elsewhere", "NNI_EXP_ID": "t9"}).id == "t9"
    assert experiment_context({}).id is None


def test_to_payload():
    assert to_payload({"default": 1, "step": 4, "non_finite": True, "extra": 1}, 0, "m") == {"step": 4, "non_finite": True}
    assert to_payload({"default": 1, "step": -1, "metrics": {}}, 3, "m") == {"step": 3, "metrics": {}}
    assert to_payload({"step": True, "seconds": 1.0}, 2, "m") == {"step": 2, "seconds": 1.0}
    assert to_payload(7, 1, "val_acc") == {"step": 1, "metrics": {"val_acc": 7.0}}
    assert to_payload(True, 1, "val_acc") == {"step": 1}  # not a number
    assert to_payload("0.5", 5, "val_acc") == {"step": 5}
    assert to_payload({"default": None}, 0, "val_acc") == {"step": 0}


@pytest.mark.parametrize("mode", ["minimize", "maximize"])
def test_the_assessor_declares_optimize_mode_as_the_objectives_direction(service: Any, name: Any, mode: str) -> None:
    from bttackler import BTTacklerClient

    study = name(f"nni-objective-{mode}")
    assessor = BTTacklerAssessor(url=service.url(), study=study, optimize_mode=mode)
    assessor.assess_trial("1", [{"default": 0.5, "step": 0, "metrics": {"train_loss": 1.0}}])
    opened = BTTacklerClient(service.url()).open_study(study)
    assert opened is not None and opened["config"]["objective"] == {"metric": "auto", "direction": mode}

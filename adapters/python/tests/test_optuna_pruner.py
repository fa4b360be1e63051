"""BTTacklerPruner and bttackler.optuna.report on real Optuna against the real service."""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

optuna = pytest.importorskip("optuna")
from optuna.pruners import MedianPruner, NopPruner, PatientPruner, ThresholdPruner  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from bttackler import BTTacklerClient  # noqa: E402
from bttackler.optuna import STOP_ATTR, BTTacklerPruner, report, service_study  # noqa: E402
from helpers import MAIN_JS, NODE, SlowService, closed_port, timed, warnings_of  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
NAN = float("nan")
HEALTHY_LAYERS = [{"name": "dense1", "grad_abs_mean": 1e-3}, {"name": "dense2", "grad_abs_mean": 1.2e-3}]
EXPLODING_LAYERS = [{"name": "dense1", "grad_abs_mean": 5.0}, {"name": "dense2", "grad_abs_mean": 1e-3}, {"name": "dense3", "grad_abs_mean": 1e-6}]


def scalar_objective(values: Sequence[float], seen: Optional[List[bool]] = None) -> Callable[[Any], float]:
    """Reports `values` one per step with trial.report only, pruning when told."""

    def objective(trial: Any) -> float:
        for step, value in enumerate(values):
            trial.report(value, step)
            decision = trial.should_prune()
            if seen is not None:
                seen.append(decision)
            if decision:
                raise optuna.TrialPruned()
        return values[-1]

    return objective


def run_one(pruner: Any, objective: Callable[[Any], float], direction: str = "minimize", **study_kwargs: Any) -> Any:
    study = optuna.create_study(direction=direction, pruner=pruner, **study_kwargs)
    study.optimize(objective, n_trials=1)
    return study, study.trials[0]


@pytest.fixture
def pruner(service: Any) -> Any:
    p = BTTacklerPruner(url=service.url())
    yield p
    p.close()


# ---------------------------------------------------------------------- scalar reports (trial.report only)

@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_value_turning_nan_after_good_steps_is_pruned_with_its_reason(pruner: Any, direction: str) -> None:
    good = [1.0, 0.8, 0.6] if direction == "minimize" else [0.3, 0.5, 0.6]
    seen: List[bool] = []
    study, trial = run_one(pruner, scalar_objective(good + [NAN, 0.5], seen), direction)
    assert trial.state == TrialState.PRUNED
    assert seen == [False, False, False, True]
    record = trial.user_attrs[STOP_ATTR]
    metric = "train_loss" if direction == "minimize" else "val_acc"
    assert record == {"by": "bttackler", "step": 3, "symptoms": ["NF"], "reason": f"NF non_finite_metric: metric {metric} is not finite"}


@pytest.mark.parametrize("direction, pruned", [("minimize", True), ("maximize", False)])
def test_a_scalar_is_a_loss_when_minimizing_and_accuracy_like_when_maximizing(pruner: Any, direction: str, pruned: bool) -> None:
    # 1.0, 0.8, 2.5, 3.0: as a loss it diverges (DIV: above 3x its best at two steps in a row);
    # as an accuracy nothing watches its rise
    _, trial = run_one(pruner, scalar_objective([1.0, 0.8, 2.5, 3.0, 1.0]), direction)
    if pruned:
        assert trial.state == TrialState.PRUNED
        record = trial.user_attrs[STOP_ATTR]
        assert (record["by"], record["step"], record["symptoms"]) == ("bttackler", 3, ["DIV"])
        assert record["reason"].startswith("DIV loss_above_best: train_loss 3 is more than 3x its best 0.8")
    else:
        assert trial.state == TrialState.COMPLETE
        assert STOP_ATTR not in trial.user_attrs


def test_asking_twice_at_a_step_gives_the_same_answer_and_diagnoses_the_step_once(pruner: Any, service: Any) -> None:
    answers: List[bool] = []

    def objective(trial: Any) -> float:
        for step, value in enumerate([1.0, 0.8, 2.5, 3.0]):
            trial.report(value, step)
            answers.extend([trial.should_prune(), trial.should_prune()])
        return 0.0

    study, trial = run_one(pruner, objective)
    assert answers == [False, False, False, False, False, False, True, True]
    history = BTTacklerClient(service.url()).history(service_study(study), str(trial.number))
    assert [v["step"] for v in history["verdicts"]] == [0, 1, 2, 3]


def test_a_trial_that_has_reported_nothing_is_not_pruned_and_nothing_is_sent(pruner: Any, service: Any) -> None:
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    assert trial.should_prune() is False
    assert BTTacklerClient(service.url()).study_trials(service_study(study)) is None  # the service never heard of it


# ---------------------------------------------------------------------- payloads through report()

@pytest.mark.parametrize("direction, expected_values", [("minimize", [2.0, 2.5]), ("maximize", [0.4, 0.2])])
def test_report_sends_the_payload_and_reports_its_value_by_direction(pruner: Any, service: Any, direction: str, expected_values: List[float]) -> None:
    payloads = [
        {"step": 0, "max_steps": 10, "metrics": {"train_loss": 1.9, "val_loss": 2.0, "train_acc": 0.5, "val_acc": 0.4}, "layers": HEALTHY_LAYERS},
        # the value alone looks harmless; only the layers show the explosion
        {"step": 1, "max_steps": 10, "metrics": {"train_loss": 2.4, "val_loss": 2.5, "train_acc": 0.3, "val_acc": 0.2}, "layers": EXPLODING_LAYERS},
    ]
    verdicts: List[Any] = []

    def objective(trial: Any) -> float:
        for payload in payloads:
            verdicts.append(report(trial, payload))
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.0

    study, trial = run_one(pruner, objective, direction)
    assert trial.state == TrialState.PRUNED
    assert [trial.intermediate_values[s] for s in (0, 1)] == expected_values
    assert [v["stop"] for v in verdicts] == [False, True]
    record = trial.user_attrs[STOP_ATTR]
    assert (record["by"], record["step"], record["symptoms"]) == ("bttackler", 1, ["EG"])
    assert record["reason"].startswith("EG grad_ratio_high") and record["reason"] == verdicts[1]["reason"]
    # should_prune answered from the verdict of the payload: no scalar payload replaced it
    history = BTTacklerClient(service.url()).history(service_study(study), str(trial.number))
    assert [v["stop"] for v in history["verdicts"]] == [False, True]


def test_a_payload_that_reached_the_service_by_another_route_decides_the_step(pruner: Any, service: Any) -> None:
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    # e.g. sent by another process: this pruner holds no verdict for the step
    payload = {"step": 0, "max_steps": 10, "metrics": {"train_loss": 2.4}, "layers": EXPLODING_LAYERS}
    assert BTTacklerClient(service.url()).report(service_study(study), str(trial.number), payload)["duplicate"] is False
    trial.report(2.4, 0)  # the bare value alone would not stop anything
    assert trial.should_prune() is True
    record = study.trials[0].user_attrs[STOP_ATTR]
    assert record["symptoms"] == ["EG"]


def test_report_takes_an_explicit_value_or_metric(pruner: Any) -> None:
    def objective(trial: Any) -> float:
        report(trial, {"step": 0, "metrics": {"train_loss": 1.0, "top5": 0.7}}, metric="top5")
        report(trial, {"step": 1, "metrics": {"train_loss": None}}, value=0.25)
        report(trial, {"step": 2, "metrics": {"val_loss": None}})
        return 0.0

    _, trial = run_one(pruner, objective)
    assert trial.intermediate_values[0] == 0.7 and trial.intermediate_values[1] == 0.25
    assert math.isnan(trial.intermediate_values[2])


@pytest.mark.parametrize(
    "payload, error, words",
    [
        ({"step": 0, "metrics": {"val_acc": 0.5}}, ValueError, "no 'val_loss' or 'train_loss'"),
        ({"step": -1, "metrics": {"val_loss": 0.5}}, ValueError, "got -1"),
        ({"step": True, "metrics": {"val_loss": 0.5}}, ValueError, "got True"),
        ([1, 2], TypeError, "got [1, 2]"),
        ({"step": 0, "metrics": [1.0]}, TypeError, "got [1.0]"),
    ],
)
def test_report_refuses_a_payload_it_cannot_use_before_reporting_anything(pruner: Any, payload: Any, error: type, words: str) -> None:
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    with pytest.raises(error) as caught:
        report(trial, payload)
    assert words in str(caught.value)
    assert study.trials[0].intermediate_values == {}


def test_report_with_another_pruner_only_reports_the_value_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    study = optuna.create_study(pruner=NopPruner())
    trial = study.ask()
    with caplog.at_level(logging.WARNING, logger="bttackler"):
        assert report(trial, {"step": 0, "metrics": {"val_loss": 0.5}}) is None
    assert study.trials[0].intermediate_values == {0: 0.5}
    assert any("not a BTTacklerPruner" in w for w in warnings_of(caplog))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_report_finds_the_pruner_inside_a_patient_pruner(service: Any) -> None:
    inner = BTTacklerPruner(url=service.url())
    try:
        study = optuna.create_study(pruner=PatientPruner(inner, patience=0))
        trial = study.ask()
        verdict = report(trial, {"step": 0, "metrics": {"train_loss": None, "val_loss": 1.0}})
        assert verdict is not None and verdict["stop"] is True
    finally:
        inner.close()


# ---------------------------------------------------------------------- composing with another pruner

@pytest.mark.parametrize(
    "wrapped, values, expected",
    [
        # only the wrapped pruner stops: a value above its upper bound
        (ThresholdPruner(upper=5.0), [1.0, 6.0], {"by": "wrapped", "pruner": "ThresholdPruner", "step": 1, "symptoms": [],
                                                   "reason": "ThresholdPruner pruned the trial at step 1"}),
        # only bttackler stops: MedianPruner has no other trial to compare with
        (MedianPruner(n_startup_trials=0), [1.0, NAN], {"by": "bttackler", "step": 1, "symptoms": ["NF"],
                                                         "reason": "NF non_finite_metric: metric train_loss is not finite"}),
        # both stop: ThresholdPruner prunes NaN too
        (ThresholdPruner(upper=5.0), [1.0, NAN], {"by": "bttackler", "step": 1, "symptoms": ["NF"], "wrapped": "ThresholdPruner",
                                                   "reason": "NF non_finite_metric: metric train_loss is not finite"}),
    ],
    ids=["wrapped-only", "bttackler-only", "both"],
)
def test_a_wrapped_pruner_stops_too_and_the_record_says_which_one_stopped(service: Any, wrapped: Any, values: List[float], expected: Dict[str, Any]) -> None:
    pruner = BTTacklerPruner(url=service.url(), wrapped=wrapped)
    try:
        _, trial = run_one(pruner, scalar_objective(values + [1.0]))
    finally:
        pruner.close()
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs[STOP_ATTR] == expected


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:The intermediate values of the current trial:UserWarning")  # Wilcoxon skips NaN runs
@pytest.mark.parametrize(
    "make",
    [
        lambda: optuna.pruners.MedianPruner(n_startup_trials=2),
        lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=2),
        lambda: optuna.pruners.SuccessiveHalvingPruner(),
        lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=6),
        lambda: optuna.pruners.ThresholdPruner(upper=100.0),
        lambda: optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(), patience=1),
        lambda: optuna.pruners.WilcoxonPruner(),
        lambda: optuna.pruners.NopPruner(),
    ],
    ids=["median", "percentile", "successive-halving", "hyperband", "threshold", "patient", "wilcoxon", "nop"],
)
def test_every_built_in_pruner_can_be_wrapped_and_a_nan_run_is_still_caught(service: Any, make: Callable[[], Any]) -> None:
    wrapped = make()
    pruner = BTTacklerPruner(url=service.url(), wrapped=wrapped)
    study = optuna.create_study(pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=1))

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(6):
            value = NAN if (x > 0.8 and step == 4) else (1.0 + x) / (step + 1)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return (1.0 + x) / 6

    study.enqueue_trial({"x": 0.9})  # turns NaN after four good steps
    study.optimize(objective, n_trials=8)
    first = study.trials[0]
    assert first.state == TrialState.PRUNED, type(wrapped).__name__
    record = first.user_attrs[STOP_ATTR]
    if record["by"] == "wrapped":  # the wrapped pruner got there first, at an earlier step
        assert record["step"] < 4 and record["pruner"] == type(wrapped).__name__
    else:
        assert (record["step"], record["symptoms"]) == (4, ["NF"])
    for t in study.trials:  # whatever the wrapped pruner decided, each stop has its record
        assert (t.state == TrialState.PRUNED) == (STOP_ATTR in t.user_attrs)
    pruner.close()


def test_the_record_stays_within_what_optuna_dashboard_shows(pruner: Any) -> None:
    metrics = {f"metric_with_a_rather_long_name_number_{i:03d}_" + "x" * 40: None for i in range(40)}

    def objective(trial: Any) -> float:
        report(trial, {"step": 0, "metrics": metrics}, value=NAN)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return 0.0

    _, trial = run_one(pruner, objective)
    record = trial.user_attrs[STOP_ATTR]
    assert len(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) <= 1024
    assert record["reason"].startswith("NF non_finite_metric: metrics metric_with_a_rather_long_name_number_000_")
    assert record["reason"].endswith("…") and "\n" not in record["reason"]


# ---------------------------------------------------------------------- failing open

@pytest.mark.parametrize("wrapped, expected", [(None, False), (ThresholdPruner(upper=0.5), True)])
def test_an_unreachable_service_answers_like_the_wrapped_pruner_with_a_warning(
    caplog: pytest.LogCaptureFixture, wrapped: Any, expected: bool
) -> None:
    pruner = BTTacklerPruner(url=f"ws://127.0.0.1:{closed_port()}", wrapped=wrapped, timeout=1.0)
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    trial.report(NAN, 0)  # a stop if the service could answer
    with caplog.at_level(logging.WARNING, logger="bttackler"):
        answer, took = timed(trial.should_prune, limit=5)
    assert answer is expected and took < 1.5
    assert any("failed" in w and "127.0.0.1" in w for w in warnings_of(caplog))
    pruner.close()


def test_a_silent_service_costs_at_most_the_timeout(silent_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    pruner = BTTacklerPruner(url=f"ws://127.0.0.1:{silent_server.port}", timeout=0.5)
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    trial.report(NAN, 0)
    with caplog.at_level(logging.WARNING, logger="bttackler"):
        answer, took = timed(trial.should_prune, limit=5)
    assert answer is False and 0.4 < took < 1.5
    assert warnings_of(caplog)
    # backing off: the next step does not wait again
    trial.report(NAN, 1)
    answer, took = timed(trial.should_prune, limit=5)
    assert answer is False and took < 0.2
    pruner.close()


def test_opening_the_study_and_reporting_share_one_timeout(caplog: pytest.LogCaptureFixture) -> None:
    # each call alone answers within the timeout (0.7 s of 1 s); study.open and reportAndAssess together would take 1.4 s
    slow = SlowService(delay=0.7)
    pruner = BTTacklerPruner(url=slow.url, config={"max_steps": 10}, timeout=1.0)
    try:
        study = optuna.create_study(pruner=pruner)
        trial = study.ask()
        trial.report(0.5, 0)
        with caplog.at_level(logging.WARNING, logger="bttackler"):
            answer, took = timed(trial.should_prune, limit=5)
        assert answer is False and took < 1.0 + 0.25
        assert slow.requests[0] == "study.open"
    finally:
        pruner.close()
        slow.close()


def test_a_config_the_study_cannot_take_is_a_warning_not_an_error(service: Any, name: Callable[[str], str], caplog: pytest.LogCaptureFixture) -> None:
    first = BTTacklerPruner(url=service.url(), config={"max_steps": 10})
    study = optuna.create_study(study_name=name("conflict"), pruner=first)
    t0 = study.ask()
    t0.report(1.0, 0)
    assert t0.should_prune() is False
    # a second process would come with another config for the same study: -32004, logged, verdicts go on
    second = BTTacklerPruner(url=service.url(), config={"max_steps": 20})
    study.pruner = second
    t1 = study.ask()
    t1.report(NAN, 0)
    with caplog.at_level(logging.WARNING, logger="bttackler"):
        assert t1.should_prune() is True
    assert any("-32004" in w for w in warnings_of(caplog))
    first.close()
    second.close()


# ---------------------------------------------------------------------- arguments

@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"url": "http://127.0.0.1:1"}, ValueError, "'http://127.0.0.1:1'"),
        ({"url": 8765}, TypeError, "8765"),
        ({"url": "ws://x:1", "timeout": 0}, ValueError, "got 0"),
        ({"url": "ws://x:1", "timeout": "5"}, TypeError, "'5'"),
        ({"url": "ws://x:1", "wrapped": "median"}, TypeError, "'median'"),
        ({"url": "ws://x:1", "wrapped": MedianPruner}, TypeError, "MedianPruner"),
        ({"url": "ws://x:1", "config": [1]}, TypeError, "[1]"),
        ({"url": "ws://x:1", "config": {"max_steps": NAN}}, ValueError, "plain JSON"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(kwargs: Dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        BTTacklerPruner(**kwargs)
    assert words in str(caught.value)


def test_a_pruner_cannot_wrap_another_bttackler_pruner() -> None:
    inner = BTTacklerPruner(url="ws://127.0.0.1:1")
    with pytest.raises(ValueError, match="another BTTacklerPruner"):
        BTTacklerPruner(url="ws://127.0.0.1:1", wrapped=inner)


# ---------------------------------------------------------------------- study identity

def test_workers_of_one_storage_share_a_service_study_and_other_studies_do_not(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "study.db"
    a = optuna.create_study(study_name="s", storage=f"sqlite:///{db}")
    monkeypatch.chdir(tmp_path)
    b = optuna.load_study(study_name="s", storage="sqlite:///study.db")  # another spelling of the same file
    assert service_study(a) == service_study(b)
    assert service_study(a).startswith("optuna:s:")
    other = optuna.create_study(study_name="t", storage=f"sqlite:///{db}")
    assert service_study(other) != service_study(a)
    optuna.delete_study(study_name="s", storage=f"sqlite:///{db}")
    again = optuna.create_study(study_name="s", storage=f"sqlite:///{db}")
    assert service_study(again) != service_study(a)  # a new study under an old name starts a new cohort
    mem1, mem2 = optuna.create_study(study_name="s"), optuna.create_study(study_name="s")
    assert service_study(mem1) != service_study(mem2) != service_study(a)


def test_threads_of_one_in_memory_study_share_it(pruner: Any, service: Any) -> None:
    def objective(trial: Any) -> float:
        for step in range(3):
            trial.report(1.0 - 0.1 * step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.0

    study = optuna.create_study(pruner=pruner)
    study.optimize(objective, n_trials=8, n_jobs=2)
    trials = BTTacklerClient(service.url()).study_trials(service_study(study))["trials"]
    assert sorted(int(t["trial"]) for t in trials) == list(range(8))
    assert all(t["last_step"] == 2 for t in trials)


def test_a_pickled_pruner_talks_to_the_same_service(pruner: Any) -> None:
    copy = pickle.loads(pickle.dumps(pruner))
    assert copy.url == pruner.url
    _, trial = run_one(copy, scalar_objective([1.0, NAN, 1.0]))
    assert trial.state == TrialState.PRUNED
    copy.close()


# ---------------------------------------------------------------------- no url: a private service

PRIVATE = textwrap.dedent(
    """
    import json, math, os, sys
    import optuna
    from bttackler.optuna import BTTacklerPruner
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        for step, value in enumerate([1.0, 0.9, math.nan]):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 0.0

    pruner = BTTacklerPruner()
    study = optuna.create_study(pruner=pruner)
    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    print(json.dumps({"state": t.state.name, "attrs": t.user_attrs, "pid": pruner._service._proc.pid,
                      "db": pruner._service.db}))
    """
)


def test_without_a_url_the_pruner_runs_its_own_service_and_stops_it_at_exit(tmp_path: Any) -> None:
    script = tmp_path / "private.py"
    script.write_text(PRIVATE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTTACKLER_")}
    assert NODE is not None
    env["BTTACKLER_CLI"] = str(MAIN_JS)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["state"] == "PRUNED"
    assert result["attrs"][STOP_ATTR]["symptoms"] == ["NF"]
    assert not os.path.exists(os.path.dirname(result["db"])), "the temporary directory is left behind"
    with pytest.raises(ProcessLookupError):
        os.kill(result["pid"], 0)


def test_a_pruner_that_cannot_start_any_service_raises_with_the_fix(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No url, no BTTACKLER_CLI, no `bttackler` on PATH, no checkout: a configuration error, not a silent no-op."""
    import bttackler.local_service as local_service
    from bttackler.optuna import ServiceStartError

    monkeypatch.delenv("BTTACKLER_CLI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no bttackler, no node
    monkeypatch.setattr(local_service, "_CHECKOUT_CLI", tmp_path / "no-checkout" / "dist" / "cli" / "main.js")
    before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(ServiceStartError) as info:
        BTTacklerPruner()
    message = str(info.value)
    assert "could not start its private bttackler service" in message and "`bttackler` is not on PATH" in message
    assert "url='ws://127.0.0.1:8765'" in message and "BTTACKLER_CLI" in message and "docs/quickstart.md" in message
    assert not [d for d in set(os.listdir(tempfile.gettempdir())) - before if d.startswith("bttackler-optuna-")]


def test_a_pruner_whose_service_exits_before_listening_raises_with_what_it_said(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "not-bttackler"
    fake.write_text("#!/bin/sh\necho 'this is not bttackler' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("BTTACKLER_CLI", str(fake))
    from bttackler.optuna import ServiceStartError

    with pytest.raises(ServiceStartError, match=r"exited with code 3 before listening; it said: this is not bttackler"):
        BTTacklerPruner()


def test_importing_the_optuna_adapter_without_optuna_names_the_extra() -> None:
    code = "import sys; sys.modules['optuna'] = None\nfrom bttackler.optuna import BTTacklerPruner"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "bttackler.optuna needs Optuna" in done.stderr and "pip install 'bttackler[optuna]'" in done.stderr


def test_a_private_service_on_shared_storage_warns_that_workers_do_not_share_a_cohort(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BTTACKLER_CLI", str(MAIN_JS))
    pruner = BTTacklerPruner()
    try:
        study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", pruner=pruner)
        with caplog.at_level(logging.WARNING, logger="bttackler"):
            _, trial = run_one(pruner, scalar_objective([1.0, NAN]), storage=f"sqlite:///{tmp_path / 'study.db'}", study_name=study.study_name, load_if_exists=True)
        assert trial.state == TrialState.PRUNED  # the private service works ...
        assert any("no shared cohort" in w for w in warnings_of(caplog))  # ... for this process only
    finally:
        pruner.close()


def _optimize_in_child(pruner: Any, queue: Any) -> None:
    study = optuna.create_study(pruner=pruner)
    study.optimize(scalar_objective([1.0, NAN, 1.0]), n_trials=1)
    queue.put(study.trials[0].state.name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_uses_the_private_service_of_its_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    monkeypatch.setenv("BTTACKLER_CLI", str(MAIN_JS))
    pruner = BTTacklerPruner()
    try:
        _, trial = run_one(pruner, scalar_objective([1.0, 0.9]))  # the parent has used its client
        assert trial.state == TrialState.COMPLETE
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_optimize_in_child, args=(pruner, queue))
        child.start()
        assert queue.get(timeout=30) == "PRUNED"  # the child got a verdict: NF from the parent's service
        child.join(10)
        assert child.exitcode == 0
        assert pruner._service is not None and pruner._service.address is not None  # still the parent's, still running
    finally:
        pruner.close()


def test_report_with_a_fixed_trial_only_reports_the_value() -> None:
    trial = optuna.trial.FixedTrial({"lr": 0.1})
    reported: List[Any] = []
    trial.report = lambda value, step: reported.append((value, step))  # type: ignore[method-assign]
    assert report(trial, {"step": 0, "metrics": {"train_loss": 0.7, "val_acc": 0.5}}) is None
    assert report(trial, {"step": 1, "metrics": {"val_acc": 0.6}}) is None
    assert reported == [(0.7, 0), (0.6, 1)]  # a loss when there is one, else an accuracy
    assert trial.should_prune() is False
    with pytest.raises(TypeError, match="got 42"):
        report(42, {"step": 0, "metrics": {"val_loss": 1.0}})  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the objective


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_pruner_declares_the_studys_direction_as_the_objective_unless_the_config_does(service: Any, name: Callable[[str], str], direction: str) -> None:
    pruner = BTTacklerPruner(url=service.url())
    study = optuna.create_study(study_name=name(f"objective-{direction}"), direction=direction, pruner=pruner)
    trial = study.ask()
    report(trial, {"step": 0, "metrics": {"train_loss": 0.9, "val_loss": 1.0, "val_acc": 0.4}})
    assert trial.should_prune() is False
    opened = BTTacklerClient(service.url()).open_study(service_study(study))
    assert opened is not None and opened["config"]["objective"] == {"metric": "auto", "direction": direction}
    pruner.close()
    declared = BTTacklerPruner(url=service.url(), config={"objective": {"metric": "val_f1", "direction": "maximize"}})
    other = optuna.create_study(study_name=name(f"declared-{direction}"), direction=direction, pruner=declared)
    t = other.ask()
    t.report(0.5, 0)
    t.should_prune()
    assert BTTacklerClient(service.url()).open_study(service_study(other))["config"]["objective"] == {"metric": "val_f1", "direction": "maximize"}
    declared.close()

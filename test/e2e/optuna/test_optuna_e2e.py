"""End to end on real Optuna: docs/examples/mnist/train.js trials through run_node_trial, studies in memory and on
RDB storage optimized by two worker processes against one service, and a pure-Python objective with report().

Run by test/e2e/optuna.sh (npm run e2e:optuna).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List

import optuna
import pytest
from optuna.trial import TrialState

from bttackler import BTTacklerClient
from bttackler.optuna import STOP_ATTR, BTTacklerPruner, report, service_study

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from worker import CONFIGS, node_objective  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
# "dying": the units die and every gradient becomes 0: VG (zero gradients), UWR (frozen weights), DEAD
BROKEN = {"exploding": {"NF", "EG"}, "dying": {"DEAD", "DR", "UWR", "VG", "NF", "EG"}}
HEALTHY = ("healthy", "healthy_tanh")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres")


def run_workers(specs: List[List[str]], timeout: float = 240) -> None:
    """Worker processes started together; each must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTTACKLER_")}
    procs = [subprocess.Popen([sys.executable, str(HERE / "worker.py"), *spec], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for spec in specs]
    failures = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            failures.append(f"worker {proc.args[2:]} exited with {proc.returncode}:\n{out}\n{err[-3000:]}")
    assert not failures, "\n".join(failures)


def check_node_trials(trials: List[Any]) -> None:
    """Broken configurations pruned with their reason in user attrs, healthy ones completed."""
    for t in trials:
        config = t.params["config"]
        if config in BROKEN:
            assert t.state == TrialState.PRUNED, (config, t.state, t.user_attrs)
            record = t.user_attrs[STOP_ATTR]
            assert record["by"] == "bttackler" and set(record["symptoms"]) <= BROKEN[config] and record["symptoms"], record
            assert record["reason"].split(" ")[0] in BROKEN[config] and record["step"] < CONFIGS[config]["epochs"] - 1, record
            assert len(t.intermediate_values) == record["step"] + 1  # stopped at the verdict's step
        else:
            assert t.state == TrialState.COMPLETE, (config, t.state, t.user_attrs)
            assert STOP_ATTR not in t.user_attrs
            assert t.value > 0.5 and len(t.intermediate_values) == CONFIGS[config]["epochs"]


def check_service(url: str, study: Any, trials: List[Any]) -> None:
    seen = BTTacklerClient(url).study_trials(service_study(study))["trials"]
    ended: Dict[str, Any] = {t["trial"]: t.get("ended") for t in seen}
    expected = {str(t.number): {TrialState.PRUNED: "pruned", TrialState.COMPLETE: "complete"}[t.state] for t in trials}
    assert ended == expected


def test_in_memory_study_with_one_line_of_setup() -> None:
    # nothing else running: the pruner starts its own service (found in this checkout's dist/)
    pruner = BTTacklerPruner()
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for config in ("exploding", "healthy", "dying"):
        study.enqueue_trial({"config": config})
    study.optimize(node_objective, n_trials=3)
    trials = study.trials
    assert [t.params["config"] for t in trials] == ["exploding", "healthy", "dying"]
    check_node_trials(trials)
    check_service(pruner.url, study, trials)
    pruner.close()


def test_rdb_study_with_two_worker_processes(storage: str, service: Any) -> None:
    name = unique("mnist")
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    url = service.url()
    run_workers([[storage, name, url, "node", "2"], [storage, name, url, "node", "2"]])
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert sorted(t.params["config"] for t in trials) == ["dying", "exploding", "healthy", "healthy_tanh"]
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 2, "both workers ran trials"
    check_node_trials(trials)
    check_service(url, study, trials)


def test_rdb_workers_share_one_cohort(storage: str, service: Any) -> None:
    """Two cohort workers at once build the cohort (10 healthy trials); a third process's probe trial, with the best
    loss and vanishing gradients (VG, configured by the workers as a soft rule), is protected by it and completes; in a study without that cohort
    the same probe is pruned by VG."""
    shared, alone = unique("cohort"), unique("alone")
    for name in (shared, alone):
        optuna.create_study(study_name=name, storage=storage)
    url = service.url()
    run_workers([[storage, shared, url, "cohort", "5"], [storage, shared, url, "cohort", "5"]])
    run_workers([[storage, shared, url, "probe", "1"], [storage, alone, url, "probe", "1"]])
    study = optuna.load_study(study_name=shared, storage=storage)
    trials = study.get_trials()
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 3
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 11
    verdicts = BTTacklerClient(url).history(service_study(study), "10")["verdicts"]
    assert [(v["protected"], v["stop"], [(s["code"], s["action"]) for s in v["symptoms"]]) for v in verdicts] == [
        (True, False, [("VG", "watch")]),
        (True, False, [("VG", "protected")]),
    ]
    control = optuna.load_study(study_name=alone, storage=storage).get_trials()[0]
    assert control.state == TrialState.PRUNED and control.user_attrs[STOP_ATTR]["symptoms"] == ["VG"]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_pure_python_objective_with_the_report_helper(direction: str) -> None:
    """A hand-written training loop: per-layer gradient statistics go to bttackler, the loss or accuracy to Optuna."""

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 10.0, log=True)
        loss, acc = 2.3, 0.1
        for epoch in range(8):
            grow = 10.0 if lr > 1 else 1.0  # a too high rate: gradients grow 10x per layer towards the input, and more each epoch
            grads = [1e-3 * grow ** ((3 - i) * (epoch + 1)) for i in range(4)]
            loss, acc = loss * (0.8 if lr <= 1 else 1.3), min(0.99, acc + 0.1)
            report(trial, {"step": epoch, "max_steps": 8, "metrics": {"train_loss": loss, "val_loss": loss * 1.1, "train_acc": acc, "val_acc": acc - 0.02},
                           "layers": [{"name": f"dense{i}", "grad_abs_mean": g} for i, g in enumerate(grads)]})
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss * 1.1 if direction == "minimize" else acc - 0.02

    study = optuna.create_study(direction=direction, pruner=BTTacklerPruner())
    study.enqueue_trial({"lr": 5.0})
    study.enqueue_trial({"lr": 0.01})
    study.optimize(objective, n_trials=2)
    bad, good = study.trials
    assert bad.state == TrialState.PRUNED and good.state == TrialState.COMPLETE
    record = bad.user_attrs[STOP_ATTR]
    assert record["symptoms"] == ["EG"] and "EG grad_ratio_high: gradients grow 1.000e+4x per layer" in record["reason"]
    # what Optuna saw: val_loss when minimizing, val_acc when maximizing
    first = good.intermediate_values[0]
    assert math.isclose(first, 2.3 * 0.8 * 1.1) if direction == "minimize" else math.isclose(first, 0.2 - 0.02)
    study.pruner.close()

"""End to end on a real local Ray cluster (ray.init(num_cpus=2)): tune.Tuner with ASHA and BTTacklerStopper over real
numpy MLP trainings (trainables.py), the service of this checkout, and the reasons in the ResultGrid, the experiment
folder, the service and `bttackler report`.

Run by test/e2e/ray.sh (npm run e2e:ray).
"""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any, Dict, List

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from bttackler import BTTacklerClient, LocalService
from bttackler.ray import STOP_KEY, BTTacklerStopper, stopped_trials
from conftest import MAIN_JS
from helpers import wait_until  # adapters/python/tests/helpers.py
from trainables import JS_CONFIGS, node_trainable, train_mlp

EPOCHS = 6
DIVERGING, HEALTHY = 50.0, 0.3


def fit(stopper: BTTacklerStopper, lrs: List[float], tmp_path: Path, name: str) -> Any:
    tuner = tune.Tuner(
        train_mlp,
        param_space={"lr": tune.grid_search(lrs), "epochs": EPOCHS},
        tune_config=tune.TuneConfig(
            scheduler=ASHAScheduler(metric="val_acc", mode="max", max_t=EPOCHS, grace_period=2, reduction_factor=2),
            max_concurrent_trials=2,
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "ray_results"), stop=stopper,
                                  callbacks=[stopper.callback()], verbose=0),
    )
    return tuner.fit()


def by_lr(grid: Any) -> Dict[float, List[Any]]:
    found: Dict[float, List[Any]] = {}
    for result in grid:
        found.setdefault(result.config["lr"], []).append(result)
    return found


def test_asha_and_the_stopper_with_the_one_line_setup(ray_cluster: None, tmp_path: Path) -> None:
    """No service running: the stopper starts its own on the driver. Diverging trials are stopped by bttackler
    with their reason; the healthy ones are never stopped by it, and the best of them runs every epoch."""
    stopper = BTTacklerStopper()
    try:
        grid = fit(stopper, [DIVERGING, HEALTHY, DIVERGING, HEALTHY], tmp_path, "one-line")
        assert not grid.errors, grid.errors
        trials = by_lr(grid)
        listed = stopped_trials(grid)
        # the diverging trials: stopped by bttackler early, with the reason on their last result
        assert sorted(t.config["lr"] for t in listed) == [DIVERGING, DIVERGING], [str(t) for t in listed]
        for trial, result in zip(sorted(listed, key=lambda t: t.trial_id), sorted(trials[DIVERGING], key=lambda r: r.metrics["trial_id"])):
            assert trial.symptoms and trial.reason.split(" ")[0] in trial.symptoms, trial
            assert trial.step is not None and trial.step < EPOCHS - 1, trial
            assert result.metrics[STOP_KEY]["reason"] == trial.reason
            assert result.metrics["training_iteration"] == trial.step + 1  # stopped on the result of that step
        # the healthy trials: no stop record; ASHA may cut the weaker one, the best runs to the end
        assert all(STOP_KEY not in r.metrics for r in trials[HEALTHY])
        assert max(r.metrics["training_iteration"] for r in trials[HEALTHY]) == EPOCHS
        assert max(r.metrics["val_acc"] for r in trials[HEALTHY]) > 0.8
        # the experiment folder says the same as the ResultGrid; the driver's stopper object knows them too
        assert stopped_trials(grid.experiment_path) == listed
        assert sorted(stopper.stops) == [t.trial_id for t in listed]
        # the service: the stopped trials "pruned" at the step of the stop; the callback ended the others:
        # "complete" when they ran every epoch, "pruned" without a bttackler stop when ASHA cut them
        client = BTTacklerClient(stopper.url, timeout=10)
        seen = {t["trial"]: t for t in client.study_trials(stopper.study)["trials"]}
        client.close()
        for trial in listed:
            assert seen[trial.trial_id]["ended"] == "pruned" and seen[trial.trial_id]["stopped_at"] == trial.step, seen[trial.trial_id]
        for result in trials[HEALTHY]:
            expected = "complete" if result.metrics["training_iteration"] == EPOCHS else "pruned"
            assert seen[result.metrics["trial_id"]].get("ended") == expected and "stopped_at" not in seen[result.metrics["trial_id"]], seen
    finally:
        stopper.close()


def test_a_shared_service_holds_the_reasons_for_bttackler_report(ray_cluster: None, tmp_path: Path) -> None:
    """The driver talks to a service given by url (as on a cluster head); `bttackler report` shows the stop."""
    service = LocalService(db=tmp_path / "service.db", command=["node", str(MAIN_JS)]).start()
    assert service.url(timeout=30), service.error
    stopper = BTTacklerStopper(url=service.url(), study="ray-shared", config={"max_steps": EPOCHS})
    try:
        grid = fit(stopper, [DIVERGING, HEALTHY], tmp_path, "shared")
        assert not grid.errors, grid.errors
        [stopped] = stopped_trials(grid)
        assert stopped.config["lr"] == DIVERGING
    finally:
        stopper.close()
        service.stop()
    page = tmp_path / "report.html"
    done = subprocess.run(["node", str(MAIN_JS), "report", "--db", str(tmp_path / "service.db"), "--study", "ray-shared", "--out", str(page)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 stopped" in done.stderr, done.stderr
    html = page.read_text()
    assert stopped.trial_id in html and stopped.symptoms[0] in html


def processes_with(marker: str) -> List[str]:
    """The command lines of the running processes that contain ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(cmdline)
    return found


def test_javascript_trials_through_the_relay(ray_cluster: None, tmp_path: Path) -> None:
    """docs/examples/mnist/train.js (TensorFlow.js, trial SDK) as Ray function trainables: the exploding one is stopped
    by bttackler at an early epoch and its Node process ends; the healthy one runs every epoch."""
    marker = uuid.uuid4().hex
    stopper = BTTacklerStopper()
    try:
        tuner = tune.Tuner(
            node_trainable,
            param_space={"config": tune.grid_search(sorted(JS_CONFIGS)), "marker": marker},
            tune_config=tune.TuneConfig(max_concurrent_trials=2),
            run_config=tune.RunConfig(name="node", storage_path=str(tmp_path / "ray_results"), stop=stopper,
                                      callbacks=[stopper.callback()], verbose=0),
        )
        grid = tuner.fit()
        assert not grid.errors, grid.errors
        results = {r.config["config"]: r for r in grid}
        [stopped] = stopped_trials(grid)
        assert stopped.config["config"] == "exploding" and stopped.symptoms and set(stopped.symptoms) <= {"NF", "EG"}, stopped
        assert stopped.step is not None and stopped.step < JS_CONFIGS["exploding"]["epochs"] - 1, stopped
        healthy = results["healthy"].metrics
        assert STOP_KEY not in healthy and healthy["training_iteration"] == JS_CONFIGS["healthy"]["epochs"], healthy
        assert healthy["val_acc"] > 0.5  # the payload's metrics are Tune metrics too
        client = BTTacklerClient(stopper.url, timeout=10)
        ended = {t["trial"]: t.get("ended") for t in client.study_trials(stopper.study)["trials"]}
        client.close()
        assert ended == {stopped.trial_id: "pruned", healthy["trial_id"]: "complete"}, ended
    finally:
        stopper.close()
    assert wait_until(lambda: not processes_with(marker), 15), f"a Node trial outlived its Ray trial: {processes_with(marker)}"

"""A real Ray Tune study (local cluster, tune.Tuner + ASHA + BTTacklerStopper with the url of a service this test runs)
while the service gets `kill -9`, stays down for a few seconds and is restarted on the same port and database.

Every call of the stopper answers within its timeout (+ MARGIN); while the service is down it answers "continue",
even for a trial whose loss has turned NaN (which the service would stop); no trial errors; the healthy trials run
every epoch; the stopper's client reconnects by itself and a NaN trial is stopped, with its reason, after the
restart; the restarted service holds the verdicts acknowledged before the kill.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from faults_helpers import FIGURES, MARGIN, REPO, ServiceProcess

sys.path.insert(0, str(REPO / "test" / "e2e" / "ray"))
import ray_cluster as cluster  # noqa: E402  (test/e2e/ray: the cluster settings of the end-to-end test)

cluster.configure_environment()  # before ray is imported
tune = pytest.importorskip("ray.tune")
from ray.tune.schedulers import ASHAScheduler  # noqa: E402

from bttackler import BTTacklerClient  # noqa: E402
from bttackler.ray import BTTacklerStopper, stopped_trials  # noqa: E402
from helpers import wait_until  # noqa: E402
from trainables import train_mlp  # noqa: E402

TIMEOUT = 1.0
EPOCHS = 30
STEP_PAUSE = 0.25

#: Every call of the stopper on the driver: (trial id, step, start, end, answer). A module global, so that a copy
#: of the stopper made by Ray in the driver process records here too.
CALLS: List[Tuple[str, int, float, float, bool]] = []


class TimedStopper(BTTacklerStopper):
    """The real stopper; each call timed."""

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        step = (result.get("bttackler") or {}).get("step", -1) if isinstance(result, dict) else -1
        start = time.monotonic()
        answer = super().__call__(trial_id, result)
        CALLS.append((trial_id, step, start, time.monotonic(), answer))
        return answer


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    with cluster.running():
        yield


def test_kill_9_in_the_middle_of_a_ray_study_then_restart(ray_cluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bttackler")
    outage = 4.0
    flag = tmp_path / "nan-now"
    first = ServiceProcess(tmp_path / "service.db").start()
    services = [first]
    stopper = TimedStopper(url=first.url, timeout=TIMEOUT, study="ray-faults")
    watcher = BTTacklerClient(first.url, timeout=5)
    marks: Dict[str, float] = {}
    errors: List[BaseException] = []
    held_before: Dict[str, List[int]] = {}

    def acknowledged() -> Dict[str, List[int]]:
        trials = watcher.study_trials("ray-faults") or {"trials": []}
        return {t["trial"]: list(range(t["last_step"] + 1)) for t in trials["trials"] if t.get("last_step") is not None}

    def script() -> None:
        try:
            assert wait_until(lambda: sum(len(v) for v in acknowledged().values()) >= 8, 120), "no verdicts before the kill"
            held_before.update(acknowledged())
            watcher.close()
            marks["kill"] = first.kill9()
            flag.touch()  # from now on the "nan_after_flag" trials report a NaN loss
            time.sleep(outage)
            second = first.restart()
            services.append(second)
            marks["ready"] = second.ready_at or time.monotonic()
            stop = wait_until(lambda: [c for c in CALLS if c[4] and c[2] > marks["ready"]], 120)
            assert stop, "no trial was stopped after the restart"
            marks["stopped"] = stop[0][3]
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    controller = threading.Thread(target=script, daemon=True)
    CALLS.clear()
    try:
        controller.start()
        kinds = ["healthy", "nan_after_flag", "healthy", "nan_after_flag", "healthy", "nan_after_flag"]
        tuner = tune.Tuner(
            train_mlp,
            param_space={"kind": tune.grid_search(kinds), "lr": 0.1, "epochs": EPOCHS, "step_pause": STEP_PAUSE, "nan_flag": str(flag)},
            tune_config=tune.TuneConfig(
                # ASHA beside the stopper; its grace period keeps it from cutting trials in this test
                scheduler=ASHAScheduler(metric="val_acc", mode="max", max_t=EPOCHS, grace_period=EPOCHS),
                max_concurrent_trials=2,
            ),
            run_config=tune.RunConfig(name="faults", storage_path=str(tmp_path / "ray_results"), stop=stopper, verbose=0),
        )
        grid = tuner.fit()
        controller.join(130)
        assert not errors, errors
        kill, ready = marks["kill"], marks["ready"]

        # nothing failed; every call answered within the timeout (+ MARGIN)
        assert not grid.errors, grid.errors
        slowest = max(end - start for _, _, start, end, _ in CALLS)
        assert slowest <= TIMEOUT + MARGIN, sorted(round(end - start, 3) for _, _, start, end, _ in CALLS)[-5:]
        # while the service was down: "continue" for every call, NaN trials included
        down = [c for c in CALLS if c[2] > kill and c[3] < ready]
        assert len(down) >= 10, f"only {len(down)} stopper calls while the service was down"
        assert not any(c[4] for c in down), [c for c in down if c[4]]
        # only NaN trials were stopped, each after the restart, by bttackler with NF; the healthy ones ran every epoch
        listed = {t.trial_id: t for t in stopped_trials(grid)}
        for result in grid:
            trial, kind = result.metrics["trial_id"], result.config["kind"]
            if kind == "healthy":
                assert trial not in listed and result.metrics["training_iteration"] == EPOCHS, result.metrics
            elif trial in listed:
                assert "NF" in listed[trial].symptoms, listed[trial]
                [stop] = [c for c in CALLS if c[0] == trial and c[4]]
                assert stop[2] > ready, f"{trial} was stopped at step {stop[1]} before the service was back"
        assert listed, "no NaN trial was stopped"
        assert any("answers again" in r.getMessage() for r in caplog.records), "no reconnection logged"
        # the restarted service holds every verdict acknowledged before the kill
        client = BTTacklerClient(services[-1].url, timeout=10)
        for trial, steps in held_before.items():
            history = client.history("ray-faults", trial)
            assert history is not None and {v["step"] for v in history["verdicts"]} >= set(steps), (trial, steps)
        client.close()
        FIGURES["ray kill -9 + restart"] = {
            "timeout": TIMEOUT, "stopper_calls": len(CALLS), "max_stopper_call": round(slowest, 3),
            "calls_while_down": len(down), "max_call_while_down": round(max(c[3] - c[2] for c in down), 3),
            "service_down_for": round(ready - kill, 2), "first_stop_after_restart": round(marks["stopped"] - ready, 2),
            "trials": len(grid), "stopped": len(listed),
        }
    finally:
        stopper.close()
        for svc in services:
            svc.stop()

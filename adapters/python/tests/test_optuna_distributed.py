"""One Optuna study on RDB storage, several worker processes, one service: one cohort.

Cohort protection is the cross-trial statistic: a trial whose train loss is within the best
10 % of the losses other trials reported at the same step (once at least 10 did) is shielded
from the soft rules (docs/symptoms.md). Two cohort workers, running at the same time, complete
10 healthy trials (train loss 1.0 + 0.1 × trial number); then a third process runs a probe
trial with the best loss but vanishing gradients (VG, configured here as a protectable rule
confirmed at step 1, with no progress guard; the shipped default stops VG at once). It is protected, so
it completes. The same probe in a study without that cohort is pruned by VG.
The probe can only be protected if the service saw the cohort workers' trials in the same
study as the probe's.

Run as a script, this file is a worker: ``python test_optuna_distributed.py STORAGE STUDY URL ROLE N``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

HERE = Path(__file__).resolve()
MAX_STEPS = 20
HEALTHY = [{"name": "dense1", "grad_abs_mean": 1e-3}, {"name": "dense2", "grad_abs_mean": 1.1e-3}]
VANISHING = [{"name": "dense1", "grad_abs_mean": 3e-6}, {"name": "dense2", "grad_abs_mean": 3e-6}]
# VG as a soft rule: protection can shield a trial from it; without its progress guard (the probe's loss falls,
# which would hold VG back before protection is even asked)
CONFIG = {"rules": {"VG": {"protectable": True, "persistence": 2, "progress_window": 0}}}


def worker(storage: str, study_name: str, url: str, role: str, n_trials: int) -> None:
    import optuna

    from bttackler.optuna import BTTacklerPruner, report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = BTTacklerPruner(url=url, config=CONFIG)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)

    def objective(trial: Any) -> float:
        if role == "cohort":
            base, layers = 1.0 + 0.1 * trial.number, HEALTHY
        else:  # the probe: the best loss at every step, and gradients that vanish
            base, layers = 0.5, VANISHING
        loss = base
        for step in range(2):
            loss = base * (0.9 ** step)
            report(trial, {"step": step, "max_steps": MAX_STEPS, "metrics": {"train_loss": loss}, "layers": layers})
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study.optimize(objective, n_trials=n_trials)
    pruner.close()


def run_workers(specs: List[List[str]]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTTACKLER_")}
    procs = [subprocess.Popen([sys.executable, str(HERE), *spec], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for spec in specs]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"worker {proc.args} failed:\n{out}\n{err}"


def test_workers_of_an_rdb_study_share_one_cohort(service: Any, tmp_path: Path, name: Any) -> None:
    optuna = pytest.importorskip("optuna")
    from optuna.trial import TrialState

    from bttackler import BTTacklerClient
    from bttackler.optuna import STOP_ATTR, service_study

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    url = service.url()
    shared, alone = name("shared"), name("alone")
    for study_name in (shared, alone):
        optuna.create_study(study_name=study_name, storage=storage)

    run_workers([[storage, shared, url, "cohort", "5"], [storage, shared, url, "cohort", "5"]])  # two at once
    run_workers([[storage, shared, url, "probe", "1"], [storage, alone, url, "probe", "1"]])

    study = optuna.load_study(study_name=shared, storage=storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(11))
    assert all(t.state == TrialState.COMPLETE for t in trials), [(t.number, t.state) for t in trials]
    probe = trials[10]
    assert probe.intermediate_values == {0: 0.5, 1: 0.45}

    client = BTTacklerClient(url)
    seen = client.study_trials(service_study(study))["trials"]
    assert sorted(int(t["trial"]) for t in seen) == list(range(11))  # all three workers reported into one study
    verdicts: List[Dict[str, Any]] = client.history(service_study(study), "10")["verdicts"]
    assert [(v["step"], v["protected"], v["stop"]) for v in verdicts] == [(0, True, False), (1, True, False)]
    assert [(s["code"], s["action"]) for s in verdicts[1]["symptoms"]] == [("VG", "protected")]

    control = optuna.load_study(study_name=alone, storage=storage).get_trials()[0]
    assert control.state == TrialState.PRUNED
    record = control.user_attrs[STOP_ATTR]
    assert (record["by"], record["step"], record["symptoms"]) == ("bttackler", 1, ["VG"])
    assert record["reason"].startswith("VG grad_median_low")


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))

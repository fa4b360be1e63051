"""One Optuna worker process of the end-to-end test: loads a shared study and optimizes it.

    python worker.py STORAGE STUDY URL KIND N_TRIALS

KIND ``node``: each trial runs docs/examples/mnist/train.js through run_node_trial, with the
configuration named by the trial's ``config`` parameter: NODE_ORDER[trial number] (ByTrialNumber).
KIND ``cohort`` / ``probe``: the pure-Python objective of the cross-worker protection check
(see test_optuna_e2e.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import optuna

from bttackler.optuna import BTTacklerPruner, NodeTrialError, report, run_node_trial

ROOT = Path(__file__).resolve().parents[3]
TRAIN_JS = ROOT / "docs" / "examples" / "mnist" / "train.js"
# small and fast: a few seconds each on one core; "exploding" is the diverging configuration of test/examples
CONFIGS = {
    "healthy": {"epochs": 3, "samples": 600, "backend": "wasm"},
    "healthy_tanh": {"epochs": 3, "samples": 600, "backend": "wasm", "activation": "tanh", "lr": 3e-3},
    "exploding": {"lr": 50, "optimizer": "sgd", "loss": "mse", "epochs": 4, "samples": 600},
    # its units die: six epochs, so that VG (first half of the run, three train losses for its progress guard) as
    # well as DEAD (two detections in a row) have the steps to stop it before its last one
    "dying": {"lr": 50, "optimizer": "adam", "loss": "mse", "epochs": 6, "samples": 600},
}
#: the ``node`` workers' configurations, by trial number
NODE_ORDER = ["exploding", "healthy", "dying", "healthy_tanh"]
MAX_STEPS = 20
HEALTHY = [{"name": "dense1", "grad_abs_mean": 1e-3}, {"name": "dense2", "grad_abs_mean": 1.1e-3}]
VANISHING = [{"name": "dense1", "grad_abs_mean": 3e-6}, {"name": "dense2", "grad_abs_mean": 3e-6}]


class ByTrialNumber(optuna.samplers.BaseSampler):
    """``config`` = NODE_ORDER[trial number]. Not enqueue_trial: with several workers on SQLite two of them
    can pop the same queued trial (SQLite has no row locks; optuna/optuna#4621), and the second tell fails
    with "Cannot tell a PRUNED trial". Trial numbers are unique however many workers there are."""

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return {}

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        return NODE_ORDER[trial.number % len(NODE_ORDER)]


def node_objective(trial: optuna.Trial) -> float:
    trial.set_user_attr("worker_pid", os.getpid())
    name = trial.suggest_categorical("config", sorted(CONFIGS))
    return run_node_trial(trial, ["node", str(TRAIN_JS)], CONFIGS[name], cwd=str(ROOT), timeout=240)


def protection_objective(kind: str):
    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker_pid", os.getpid())
        base, layers = (1.0 + 0.1 * trial.number, HEALTHY) if kind == "cohort" else (0.5, VANISHING)
        loss = base
        for step in range(2):
            loss = base * 0.9**step
            report(trial, {"step": step, "max_steps": MAX_STEPS, "metrics": {"train_loss": loss}, "layers": layers})
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    return objective


def main(storage: str, study_name: str, url: str, kind: str, n_trials: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the protection studies configure VG as a soft rule (protectable, confirmed at step 1; the shipped
    # defaults stop at the first detection): protection must be able to shield the probe from it; and without
    # its progress guard, which would hold VG back on the probe's falling loss before protection is asked
    config = None if kind == "node" else {"rules": {"VG": {"protectable": True, "persistence": 2, "progress_window": 0}}}
    pruner = BTTacklerPruner(url=url, config=config)
    sampler = ByTrialNumber() if kind == "node" else None
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner, sampler=sampler)
    objective = node_objective if kind == "node" else protection_objective(kind)
    study.optimize(objective, n_trials=n_trials, catch=(NodeTrialError,))
    pruner.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))

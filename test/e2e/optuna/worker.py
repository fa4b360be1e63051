"""One Optuna worker process of the end-to-end test: loads a shared study and optimizes it.

    python worker.py STORAGE STUDY URL KIND N_TRIALS

KIND ``node``: each trial runs docs/examples/mnist/train.js through run_node_trial, with the
configuration named by the trial's ``config`` parameter (the study's queue decides which).
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
    "dying": {"lr": 50, "optimizer": "adam", "loss": "mse", "epochs": 4, "samples": 600},  # its units die (DEAD)
}
MAX_STEPS = 20
HEALTHY = [{"name": "dense1", "grad_abs_mean": 1e-3}, {"name": "dense2", "grad_abs_mean": 1.1e-3}]
VANISHING = [{"name": "dense1", "grad_abs_mean": 3e-6}, {"name": "dense2", "grad_abs_mean": 3e-6}]


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
    pruner = BTTacklerPruner(url=url)
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    objective = node_objective if kind == "node" else protection_objective(kind)
    study.optimize(objective, n_trials=n_trials, catch=(NodeTrialError,))
    pruner.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))

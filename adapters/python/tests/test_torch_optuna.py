"""A plain PyTorch loop with TorchReporter in a real Optuna study against the real service:
the diverging trial (lr 50) is pruned by NF/EG, the sane one runs to its end."""
from __future__ import annotations

from typing import Any, Dict, List

import optuna
import torch
from sklearn.datasets import load_digits

from bttackler import LocalService
from bttackler.optuna import STOP_ATTR, BTTacklerPruner
from bttackler.torch import TorchReporter, to_optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def digits() -> Dict[str, torch.Tensor]:
    x, y = load_digits(return_X_y=True)  # 1797 8x8 images that ship inside scikit-learn
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    return {"x": x[:1200], "y": y[:1200], "vx": x[1200:], "vy": y[1200:]}


def objective_for(data: Dict[str, torch.Tensor], seen: Dict[int, List[Dict[str, Any]]]):
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-3, 100.0, log=True)
        loss_name = trial.suggest_categorical("loss", ["cross_entropy", "mse"])
        torch.manual_seed(trial.number)
        model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        reporter = TorchReporter(model, optimizer, max_steps=8)
        send = to_optuna(trial)
        seen[trial.number] = []
        val_acc = 0.0
        for epoch in range(8):
            total = torch.zeros(())
            for i in range(0, 1200, 50):
                optimizer.zero_grad()
                out, target = model(data["x"][i:i + 50]), data["y"][i:i + 50]
                if loss_name == "mse":  # on one-hot targets: with a large lr the weights blow up to inf, then NaN
                    loss = torch.nn.functional.mse_loss(out, torch.nn.functional.one_hot(target, 10).float())
                else:
                    loss = torch.nn.functional.cross_entropy(out, target)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            with torch.no_grad():
                logits = model(data["vx"])
                val_loss = torch.nn.functional.cross_entropy(logits, data["vy"])
                val_acc_t = (logits.argmax(1) == data["vy"]).float().mean()
            payload = reporter.end_epoch({"train_loss": total / 24, "val_loss": val_loss, "val_acc": val_acc_t})
            seen[trial.number].append(payload)
            val_acc = payload["metrics"]["val_acc"] or 0.0
            if send(payload):
                raise optuna.TrialPruned()
        return val_acc

    return objective


def test_a_diverging_trial_is_stopped_by_nf_or_eg(service: LocalService) -> None:
    data = digits()
    study = optuna.create_study(direction="maximize", pruner=BTTacklerPruner(url=service.url(), config={"max_steps": 8}))
    study.enqueue_trial({"lr": 0.3, "loss": "cross_entropy"})
    study.enqueue_trial({"lr": 50.0, "loss": "mse"})
    seen: Dict[int, List[Dict[str, Any]]] = {}
    study.optimize(objective_for(data, seen), n_trials=2)
    sane, diverged = study.trials
    assert sane.state == optuna.trial.TrialState.COMPLETE and sane.value > 0.8, sane
    assert diverged.state == optuna.trial.TrialState.PRUNED, diverged
    record = diverged.user_attrs[STOP_ATTR]
    assert set(record["symptoms"]) & {"NF", "EG"}, record
    assert record["step"] <= 2 and len(seen[1]) == record["step"] + 1
    assert any(p["non_finite"] for p in seen[1]) or "EG" in record["symptoms"]
    assert all(len(p["layers"]) == 3 for p in seen[0])


def test_a_fixed_trial_only_reports() -> None:
    """optuna.trial.FixedTrial (an objective run by hand) has no pruner: the payload goes to trial.report only."""
    trial = optuna.trial.FixedTrial({"lr": 50.0, "loss": "mse"})
    seen: Dict[int, List[Dict[str, Any]]] = {}
    objective_for(digits(), seen)(trial)  # not pruned although it diverges
    assert len(seen[0]) == 8 and seen[0][-1]["non_finite"] is True

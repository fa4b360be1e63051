"""A plain PyTorch loop in an Optuna study pruned by bttackler (docs/torch.md).

    .venv/bin/python docs/examples/torch/plain_optuna.py [--trials 6] [--epochs 10]

The first trial (lr 50, MSE) diverges and is pruned after its first epochs (NF or EG); the
others run as the search draws them.
"""
import argparse

import optuna
import torch

from bttackler.torch import TorchReporter, to_optuna
from common import digits, loss_fn, mlp, run_study

parser = argparse.ArgumentParser()
parser.add_argument("--trials", type=int, default=6)
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()
x, y, vx, vy = digits()


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-3, 100.0, log=True)
    loss_name = trial.suggest_categorical("loss", ["cross_entropy", "mse"])
    torch.manual_seed(trial.number)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    reporter = TorchReporter(model, optimizer, max_steps=args.epochs)  # observes every 10th optimizer.step()
    send = to_optuna(trial)
    val_acc = 0.0
    for epoch in range(args.epochs):
        total = torch.zeros(())
        for i in range(0, len(y), 50):
            optimizer.zero_grad()
            loss = loss_fn(loss_name, model(x[i:i + 50]), y[i:i + 50])
            loss.backward()
            optimizer.step()
            total += loss.detach()  # stays a tensor: no host read per batch
        with torch.no_grad():
            logits = model(vx)
        payload = reporter.end_epoch({  # the tensors travel in the epoch's one host read
            "train_loss": total / (len(y) // 50),
            "val_loss": loss_fn(loss_name, logits, vy),
            "val_acc": (logits.argmax(1) == vy).float().mean(),
        })
        val_acc = payload["metrics"]["val_acc"] or 0.0
        if send(payload):  # bttackler.optuna.report, then trial.should_prune()
            raise optuna.TrialPruned()
    return val_acc


run_study(objective, args.trials)

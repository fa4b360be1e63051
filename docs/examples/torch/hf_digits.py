"""A Hugging Face Trainer run reporting to bttackler through BTTacklerTrainerCallback, inside an Optuna study (docs/torch.md).

    .venv/bin/python docs/examples/torch/hf_digits.py [--trials 3] [--epochs 8]
"""
import argparse
import tempfile

import numpy as np
import optuna
import torch
from transformers import Trainer, TrainingArguments

from bttackler.torch import to_optuna
from bttackler.torch.hf import BTTacklerTrainerCallback
from common import digits, loss_fn, mlp, run_study

parser = argparse.ArgumentParser()
parser.add_argument("--trials", type=int, default=3)
parser.add_argument("--epochs", type=int, default=8)
args = parser.parse_args()
x, y, vx, vy = digits()


class Net(torch.nn.Module):
    """A Trainer model: takes the batch's fields, returns the loss when it gets labels."""

    def __init__(self, loss_name: str) -> None:
        super().__init__()
        self.loss_name, self.net = loss_name, mlp()

    def forward(self, x, labels=None):
        logits = self.net(x)
        return {"logits": logits} if labels is None else {"loss": loss_fn(self.loss_name, logits, labels), "logits": logits}


def rows(xs, ys):
    return [{"x": a, "labels": b} for a, b in zip(xs, ys)]


def accuracy(prediction):
    return {"accuracy": float((np.argmax(prediction.predictions, axis=1) == prediction.label_ids).mean())}


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-3, 100.0, log=True)
    loss_name = trial.suggest_categorical("loss", ["cross_entropy", "mse"])
    torch.manual_seed(trial.number)
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(out, num_train_epochs=args.epochs, learning_rate=lr, optim="sgd", lr_scheduler_type="constant",
                                     per_device_train_batch_size=50, eval_strategy="epoch", logging_strategy="epoch",
                                     save_strategy="no", report_to="none", disable_tqdm=True, max_grad_norm=0.0)
        callback = BTTacklerTrainerCallback(to_optuna(trial))
        trainer = Trainer(Net(loss_name), training, train_dataset=rows(x, y), eval_dataset=rows(vx, vy), compute_metrics=accuracy,
                          callbacks=[callback])
        trainer.train()
    if trial.should_prune():  # the callback stopped the Trainer (control.should_training_stop): tell Optuna
        raise optuna.TrialPruned()
    return callback.payloads[-1]["metrics"].get("val_acc") or 0.0


run_study(objective, args.trials)

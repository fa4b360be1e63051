"""A Lightning fit reporting to bttackler through BTTacklerCallback, inside an Optuna study (docs/torch.md).

    .venv/bin/python docs/examples/torch/lightning_digits.py [--trials 3] [--epochs 8]
"""
import argparse
import warnings

import lightning.pytorch as pl
import optuna
import torch
from torch.utils.data import DataLoader, TensorDataset

from bttackler.torch import to_optuna
from bttackler.torch.lightning import BTTacklerCallback
from common import digits, loss_fn, mlp, run_study

warnings.filterwarnings("ignore", module="lightning")
parser = argparse.ArgumentParser()
parser.add_argument("--trials", type=int, default=3)
parser.add_argument("--epochs", type=int, default=8)
args = parser.parse_args()
x, y, vx, vy = digits()


class Digits(pl.LightningModule):
    def __init__(self, lr: float, loss_name: str) -> None:
        super().__init__()
        self.lr, self.loss_name, self.net = lr, loss_name, mlp()

    def training_step(self, batch, index):
        loss = loss_fn(self.loss_name, self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, index):
        logits = self.net(batch[0])
        self.log("val_loss", loss_fn(self.loss_name, logits, batch[1]))
        self.log("val_acc", (logits.argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-3, 100.0, log=True)
    loss_name = trial.suggest_categorical("loss", ["cross_entropy", "mse"])
    torch.manual_seed(trial.number)
    trainer = pl.Trainer(max_epochs=args.epochs, callbacks=[BTTacklerCallback(to_optuna(trial))], accelerator="auto",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Digits(lr, loss_name), DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True),
                DataLoader(TensorDataset(vx, vy), batch_size=600))
    if trial.should_prune():  # the callback stopped the fit (trainer.should_stop): tell Optuna
        raise optuna.TrialPruned()
    return float(trainer.callback_metrics["val_acc"])


run_study(objective, args.trials)

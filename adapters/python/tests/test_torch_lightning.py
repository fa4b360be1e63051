"""BTTacklerCallback in a real Lightning fit on scikit-learn's digits, payloads sent to the real service."""
from __future__ import annotations

import uuid
import warnings
from typing import Any, Dict, List

import lightning.pytorch as pl
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from bttackler import BTTacklerClient
from bttackler.torch import to_service
from bttackler.torch.lightning import BTTacklerCallback

warnings.filterwarnings("ignore", module="lightning")


class Digits(pl.LightningModule):
    def __init__(self, lr: float, loss: str = "cross_entropy") -> None:
        super().__init__()
        self.lr, self.loss_name = lr, loss
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "mse":
            return torch.nn.functional.mse_loss(out, torch.nn.functional.one_hot(y, 10).float())
        return torch.nn.functional.cross_entropy(out, y)

    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        out = self.net(x)
        self.log("val_loss", self._loss(out, y))
        self.log("val_acc", (out.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loaders() -> List[DataLoader]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    return [DataLoader(TensorDataset(x[:1200], y[:1200]), batch_size=50, shuffle=True), DataLoader(TensorDataset(x[1200:], y[1200:]), batch_size=200)]


def fit(module: pl.LightningModule, callback: BTTacklerCallback, epochs: int) -> pl.Trainer:
    torch.manual_seed(0)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[callback], accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, *loaders())
    return trainer


def test_a_lightning_fit_reports_every_epoch_with_its_logged_metrics(client: BTTacklerClient) -> None:
    study = f"lightning-{uuid.uuid4().hex[:8]}"
    verdicts: List[Dict[str, Any]] = []
    send = to_service(client, study, "sane")

    def on_payload(payload: Dict[str, Any]) -> bool:
        verdict = client.report_and_assess(study, "sane", payload)
        verdicts.append(verdict)
        return bool(verdict and verdict["stop"])

    callback = BTTacklerCallback(on_payload)
    trainer = fit(Digits(lr=0.3), callback, epochs=3)
    assert trainer.current_epoch == 3 and len(callback.payloads) == 3
    assert all(v is not None and v["stop"] is False for v in verdicts), verdicts  # accepted and healthy
    last = callback.payloads[-1]
    assert last["step"] == 2 and last["max_steps"] == 3 and last["non_finite"] is False
    assert set(last["metrics"]) >= {"train_loss", "val_loss", "val_acc"} and last["metrics"]["val_acc"] > 0.7
    assert [layer["name"] for layer in last["layers"]] == ["net.0.weight", "net.2.weight"]
    assert all(layer["grad_abs_mean"] > 0 and layer["update_ratio"] > 0 for layer in last["layers"])
    assert send(last) is False  # the same step again: the stored verdict


def test_a_diverging_lightning_fit_is_stopped(client: BTTacklerClient) -> None:
    study = f"lightning-{uuid.uuid4().hex[:8]}"
    callback = BTTacklerCallback(to_service(client, study, "diverging"))
    trainer = fit(Digits(lr=50.0, loss="mse"), callback, epochs=10)
    assert trainer.current_epoch < 10 and len(callback.payloads) <= 3, [p["non_finite"] for p in callback.payloads]
    verdict = client.assess(study, "diverging")
    assert verdict is not None and verdict["stop"] is True and {"NF", "EG"} & {s["code"] for s in verdict["symptoms"]}, verdict


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sample_every must be an integer >= 1, got -1"):
        BTTacklerCallback(sample_every=-1)
    with pytest.raises(TypeError, match="on_payload must be callable"):
        BTTacklerCallback("send")  # type: ignore[arg-type]

"""BTTacklerTrainerCallback in a real Hugging Face Trainer run on scikit-learn's digits, payloads sent to the real service."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from transformers import Trainer, TrainingArguments

from bttackler import BTTacklerClient
from bttackler.torch import to_service
from bttackler.torch.hf import BTTacklerTrainerCallback


class DigitsNet(torch.nn.Module):
    def __init__(self, loss: str = "cross_entropy") -> None:
        super().__init__()
        self.loss_name = loss
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        logits = self.net(x)
        if labels is None:
            return {"logits": logits}
        if self.loss_name == "mse":
            loss = torch.nn.functional.mse_loss(logits, torch.nn.functional.one_hot(labels, 10).float())
        else:
            loss = torch.nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


class Rows(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.y[i]}


def accuracy(prediction: Any) -> Dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, axis=1) == prediction.label_ids).mean())}


def train(tmp_path: Path, callback: BTTacklerTrainerCallback, *, lr: float, loss: str = "cross_entropy", epochs: int = 3) -> Trainer:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    args = TrainingArguments(
        str(tmp_path / "out"), num_train_epochs=epochs, learning_rate=lr, optim="sgd", lr_scheduler_type="constant",
        per_device_train_batch_size=50, per_device_eval_batch_size=200, eval_strategy="epoch", logging_strategy="epoch",
        save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, max_grad_norm=0.0, seed=0,
    )
    trainer = Trainer(DigitsNet(loss), args, train_dataset=Rows(x[:1200], y[:1200]), eval_dataset=Rows(x[1200:], y[1200:]),
                      compute_metrics=accuracy, callbacks=[callback])
    trainer.train()
    return trainer


def test_a_trainer_run_reports_every_epoch_after_its_evaluation(tmp_path: Path, client: BTTacklerClient) -> None:
    study = f"hf-{uuid.uuid4().hex[:8]}"
    verdicts: List[Optional[Dict[str, Any]]] = []

    def on_payload(payload: Dict[str, Any]) -> Any:
        verdicts.append(client.report_and_assess(study, "sane", payload))
        return verdicts[-1]

    callback = BTTacklerTrainerCallback(on_payload)
    trainer = train(tmp_path, callback, lr=0.3)
    assert len(callback.payloads) == 3 and trainer.state.epoch == 3
    assert all(v is not None and v["stop"] is False for v in verdicts), verdicts
    last = callback.payloads[-1]
    assert last["step"] == 2 and last["max_steps"] == 3 and last["non_finite"] is False
    assert set(last["metrics"]) >= {"train_loss", "val_loss", "val_acc"} and last["metrics"]["val_acc"] > 0.7
    assert [layer["name"] for layer in last["layers"]] == ["net.0.weight", "net.2.weight"]
    assert all(layer["grad_abs_mean"] > 0 and layer["update_ratio"] > 0 for layer in last["layers"])


def test_a_diverging_trainer_run_is_stopped(tmp_path: Path, client: BTTacklerClient) -> None:
    study = f"hf-{uuid.uuid4().hex[:8]}"
    callback = BTTacklerTrainerCallback(to_service(client, study, "diverging"))
    trainer = train(tmp_path, callback, lr=50.0, loss="mse", epochs=10)
    assert trainer.state.epoch < 10 and len(callback.payloads) <= 3
    verdict = client.assess(study, "diverging")
    assert verdict is not None and verdict["stop"] is True and {"NF", "EG"} & {s["code"] for s in verdict["symptoms"]}, verdict


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sample_every must be an integer >= 1, got 0"):
        BTTacklerTrainerCallback(sample_every=0)

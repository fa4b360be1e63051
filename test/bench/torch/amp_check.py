"""AMP on CUDA: TorchReporter with a GradScaler (plain loop) and BTTacklerCallback under Lightning's "16-mixed".

A healthy run (lr 0.3, cross-entropy) must not be flagged non-finite although fp16 overflows make the
scaler skip its first steps; a diverging run (lr 50, MSE on one-hot targets) must be flagged within a
few epochs, also though the scaler skips every overflowing step (the weights then stay finite).

    python3 test/bench/torch/amp_check.py --out amp.json
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List

import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "adapters" / "python"))
from bttackler.torch import TorchReporter  # noqa: E402

warnings.filterwarnings("ignore")


def data(device: str) -> List[torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return [torch.tensor(x / 16.0, dtype=torch.float32, device=device), torch.tensor(y, device=device)]


def net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def loss_of(name: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if name == "mse":
        return torch.nn.functional.mse_loss(out.float(), torch.nn.functional.one_hot(y, 10).float())
    return torch.nn.functional.cross_entropy(out.float(), y)


def plain(lr: float, loss_name: str, epochs: int = 6) -> List[Dict[str, Any]]:
    torch.manual_seed(0)
    x, y = data("cuda")
    model = net().cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cuda")
    reporter = TorchReporter(model, scaler=scaler, sample_every=1, max_steps=epochs)
    out = []
    for _ in range(epochs):
        total = torch.zeros((), device="cuda")
        for i in range(0, 1500, 50):
            optimizer.zero_grad()
            with torch.autocast("cuda", dtype=torch.float16):
                loss = loss_of(loss_name, model(x[i:i + 50]), y[i:i + 50])
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            reporter.observe()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach()
        payload = reporter.end_epoch({"train_loss": total / 30})
        out.append({"step": payload["step"], "non_finite": payload["non_finite"], "train_loss": payload["metrics"]["train_loss"],
                    "scale": scaler.get_scale(), "grad_abs_mean": [layer.get("grad_abs_mean") for layer in payload["layers"]]})
    return out


def lightning_run(lr: float, loss_name: str, epochs: int = 6) -> List[Dict[str, Any]]:
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    from torch.utils.data import DataLoader, TensorDataset

    from bttackler.torch.lightning import BTTacklerCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net()

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            loss = loss_of(loss_name, self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=lr)

    torch.manual_seed(0)
    x, y = data("cpu")
    callback = BTTacklerCallback(sample_every=1)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="gpu", devices=1, precision="16-mixed", callbacks=[callback], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Module(), DataLoader(TensorDataset(x[:1500], y[:1500]), batch_size=50))
    scaler = callback.reporter.scaler if callback.reporter else None
    return [{"step": p["step"], "non_finite": p["non_finite"], "train_loss": (p.get("metrics") or {}).get("train_loss"),
             "scaler": type(scaler).__name__} for p in callback.payloads]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    runs = {
        "plain_healthy": lambda: plain(0.3, "cross_entropy"), "plain_diverging": lambda: plain(50.0, "mse"),
        "lightning_healthy": lambda: lightning_run(0.3, "cross_entropy"), "lightning_diverging": lambda: lightning_run(50.0, "mse"),
    }
    result: Dict[str, Any] = {}
    for name, run in runs.items():
        try:
            result[name] = run()
            print(name, json.dumps([{k: v for k, v in r.items() if k != "grad_abs_mean"} for r in result[name]]), flush=True)
        except Exception as exc:  # noqa: BLE001 - report and go on with the next run
            result[name] = f"{type(exc).__name__}: {exc}"
            print(name, "FAILED", result[name], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

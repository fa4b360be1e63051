"""An NNI trial in Python that reports payload v1 dicts (or plain numbers) as its intermediate results.

A two-layer numpy network fits a small synthetic regression problem with plain SGD. Each
epoch it reports, with ``nni.report_intermediate_result``, either

- ``report: payload`` (default): a payload v1 dict with NNI's ``default`` key added::

      {"default": val_loss, "step": epoch, "max_steps": epochs,
       "metrics": {"train_loss": ..., "val_loss": ...},
       "layers": [{"name": "dense1", "grad_abs_mean": ..., ...}, ...],
       "non_finite": False, "seconds": ...}

  NNI 3.0 passes the dict whole to the assessor (NNI's tuners and web UI read ``default``);
- ``report: number``: the validation loss alone, a plain float.

Hyperparameters: ``lr`` (a large one, e.g. 10, makes the weights explode within a few
epochs), ``report``, ``epochs`` (default 8), ``pause`` (seconds per epoch, default 0.5, so
that a stopped trial is visibly cut short). The data and the initial weights come from a
fixed seed, so a configuration behaves the same in every run.

Outside NNI: ``BTTACKLER_PARAMS='{"lr": 10}' python trial.py`` prints what it would report.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

import nni


def main() -> None:
    params = nni.get_next_parameter()
    if not params:  # standalone (NNI gives None or {}), for trying it out
        params = json.loads(os.environ.get("BTTACKLER_PARAMS", "{}"))
    lr = float(params.get("lr", 0.05))
    report = params.get("report", "payload")
    epochs = int(params.get("epochs", 8))
    pause = float(params.get("pause", 0.5))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 8))
    y = np.tanh(x @ rng.normal(size=(8, 1))) + 0.1 * rng.normal(size=(320, 1))
    x_train, y_train, x_val, y_val = x[:256], y[:256], x[256:], y[256:]
    w1 = rng.normal(scale=math.sqrt(2 / 8), size=(8, 16))
    b1 = np.zeros(16)
    w2 = rng.normal(scale=math.sqrt(2 / 16), size=(16, 1))
    b2 = np.zeros(1)

    def forward(inputs):
        hidden = np.maximum(inputs @ w1 + b1, 0.0)
        return hidden, hidden @ w2 + b2

    with np.errstate(all="ignore"):  # an exploding run overflows: that is what is diagnosed
        for epoch in range(epochs):
            started = time.monotonic()
            sums = {name: {"grad": 0.0, "zero": 0.0, "update": 0.0} for name in ("dense1", "dense2")}
            losses = []
            batches = 0
            for start in range(0, len(x_train), 32):
                xb, yb = x_train[start:start + 32], y_train[start:start + 32]
                hidden, out = forward(xb)
                err = out - yb
                losses.append(float(np.mean(err ** 2)))
                d_out = 2 * err / len(xb)
                g_w2, g_b2 = hidden.T @ d_out, d_out.sum(axis=0)
                d_hidden = (d_out @ w2.T) * (hidden > 0)
                g_w1, g_b1 = xb.T @ d_hidden, d_hidden.sum(axis=0)
                for name, weight, grad in (("dense1", w1, g_w1), ("dense2", w2, g_w2)):
                    sums[name]["grad"] += float(np.mean(np.abs(grad)))
                    sums[name]["zero"] += float(np.mean(grad == 0))
                    sums[name]["update"] += float(np.linalg.norm(lr * grad) / (np.linalg.norm(weight) + 1e-12))
                w1 -= lr * g_w1
                b1 -= lr * g_b1
                w2 -= lr * g_w2
                b2 -= lr * g_b2
                batches += 1
            train_loss = float(np.mean(losses))
            val_loss = float(np.mean((forward(x_val)[1] - y_val) ** 2))
            layers = [
                {
                    "name": name,
                    "grad_abs_mean": s["grad"] / batches,
                    "grad_zero_frac": s["zero"] / batches,
                    "weight_abs_mean": float(np.mean(np.abs(weight))),
                    "update_ratio": s["update"] / batches,
                }
                for (name, s), weight in zip(sums.items(), (w1, w2))
            ]
            finite = all(math.isfinite(v) for v in (train_loss, val_loss)) and all(
                math.isfinite(v) for layer in layers for v in layer.values() if isinstance(v, float)
            )
            time.sleep(max(0.0, pause - (time.monotonic() - started)))
            if report == "number":
                value = val_loss
            else:
                value = {
                    "default": val_loss,
                    "step": epoch,
                    "max_steps": epochs,
                    "metrics": {"train_loss": train_loss, "val_loss": val_loss},
                    "layers": layers,
                    "non_finite": not finite,
                    "seconds": round(time.monotonic() - started, 3),
                }
            nni.report_intermediate_result(value)
            print(json.dumps({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss}), flush=True)
    nni.report_final_result(val_loss)


if __name__ == "__main__":
    main()

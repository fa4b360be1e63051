"""The trials of the Ray end-to-end and fault tests: a small numpy MLP trained for real, which reports one indicator
payload per epoch inside ``tune.report`` under the key ``bttackler``.

The data are two interleaved half-moons (600 points, fixed seed), the model 2-16-16-2 with ReLU units, trained
with plain minibatch SGD and softmax cross-entropy. With a sane learning rate (0.1-0.5) it reaches > 85 % validation
accuracy in a few epochs; with a huge one (>= 50) the weights blow up and the loss and gradients turn inf/NaN within
an epoch or two, which the service diagnoses (NF/EG).
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Tuple

import numpy as np
from ray import tune

Array = np.ndarray


def moons(n: int = 600, seed: int = 0) -> Tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    return x + rng.normal(0, 0.15, (n, 2)), label


def init(sizes: List[int], seed: int) -> List[Tuple[Array, Array]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, 1 / np.sqrt(a), (a, b)), np.zeros(b)) for a, b in zip(sizes[:-1], sizes[1:])]


def forward(params: List[Tuple[Array, Array]], x: Array) -> List[Array]:
    acts = [x]
    for i, (w, b) in enumerate(params):
        z = acts[-1] @ w + b
        acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
    return acts


def loss_and_grads(params: List[Tuple[Array, Array]], x: Array, y: Array) -> Tuple[float, List[Tuple[Array, Array]], Array]:
    acts = forward(params, x)
    logits = acts[-1] - acts[-1].max(axis=1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    loss = float(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())
    delta = probs
    delta[np.arange(len(y)), y] -= 1
    delta /= len(y)
    grads: List[Tuple[Array, Array]] = []
    for i in range(len(params) - 1, -1, -1):
        w, _ = params[i]
        grads.insert(0, (acts[i].T @ delta, delta.sum(axis=0)))
        if i > 0:
            delta = (delta @ w.T) * (acts[i] > 0)
    return loss, grads, acts[-1]


def train_mlp(config: Dict[str, Any]) -> None:
    """A Ray function trainable. config: lr, epochs, seed; step_pause (seconds slept per epoch, for the fault test);
    nan_flag (a file: once it exists, a trial with kind "nan_after_flag" reports a NaN loss)."""
    lr, epochs = float(config["lr"]), int(config.get("epochs", 8))
    x, y = moons()
    xt, yt, xv, yv = x[:480], y[:480], x[480:], y[480:]
    params = init([2, 16, 16, 2], int(config.get("seed", 0)))
    rng = np.random.default_rng(1)
    with np.errstate(all="ignore"):
        for epoch in range(epochs):
            order = rng.permutation(len(xt))
            sums = [np.zeros(3) for _ in params]  # per layer: sums of mean |grad| and of the zero fraction, batches
            losses = []
            non_finite = False
            for start in range(0, len(xt), 32):
                batch = order[start:start + 32]
                loss, grads, _ = loss_and_grads(params, xt[batch], yt[batch])
                losses.append(loss)
                for i, (gw, _) in enumerate(grads):
                    sums[i] += (float(np.abs(gw).mean()), float((gw == 0).mean()), 1)
                non_finite = non_finite or not all(np.isfinite(g).all() for gw in grads for g in gw)
                params = [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)]
            train_loss = float(np.mean(losses))
            val_loss, _, logits = loss_and_grads(params, xv, yv)
            val_acc = float((logits.argmax(axis=1) == yv).mean())
            flag = config.get("nan_flag")
            if config.get("kind") == "nan_after_flag" and flag and os.path.exists(flag):
                train_loss = float("nan")
            payload = {
                "step": epoch,
                "max_steps": epochs,
                "metrics": {"train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc},
                "layers": [
                    {"name": f"dense{i}", "grad_abs_mean": float(g / n), "grad_zero_frac": float(z / n), "weight_abs_mean": float(np.abs(w).mean())}
                    for i, ((g, z, n), (w, _)) in enumerate(zip(sums, params))
                ],
                "non_finite": bool(non_finite or not np.isfinite(train_loss)),
            }
            time.sleep(float(config.get("step_pause", 0.0)))
            tune.report({"val_acc": val_acc if np.isfinite(val_acc) else 0.0, "train_loss": train_loss, "bttackler": payload})


#: docs/examples/mnist/train.js: a TensorFlow.js MNIST trial written with the trial SDK.
TRAIN_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs", "examples", "mnist", "train.js")


#: train.js's hyperparameters by configuration: "exploding" blows up within an epoch or two (NF/EG), "healthy" learns.
JS_CONFIGS = {
    "exploding": {"lr": 50, "optimizer": "sgd", "loss": "mse", "epochs": 4, "samples": 600},
    "healthy": {"epochs": 3, "samples": 600, "backend": "wasm"},
}


def node_trainable(config: Dict[str, Any]) -> None:
    """A Ray function trainable that runs train.js through the relay with the hyperparameters of ``config["config"]``.
    ``marker`` goes on the command line only (train.js ignores it), so that the test can look for leftover processes."""
    from bttackler.ray import run_node_trial

    run_node_trial(["node", os.path.realpath(TRAIN_JS), f"--marker={config['marker']}"], JS_CONFIGS[config["config"]])

"""scikit-learn's digits (1797 8x8 images, inside the package: nothing is downloaded), as tensors."""
from __future__ import annotations

from typing import Tuple

import torch
from sklearn.datasets import load_digits


def digits() -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train x, train y, validation x, validation y): 1200 and 597 examples, pixels scaled to [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    return x[:1200], y[:1200], x[1200:], y[1200:]


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def loss_fn(name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy, or MSE on one-hot targets (with a large learning rate it blows up to inf, then NaN)."""
    if name == "mse":
        return torch.nn.functional.mse_loss(logits, torch.nn.functional.one_hot(y, 10).float())
    return torch.nn.functional.cross_entropy(logits, y)

"""What the three examples share: scikit-learn's digits (1797 8x8 images, inside the package: nothing is
downloaded), the network, the losses, and the Optuna study that runs an objective and prints each trial."""
from __future__ import annotations

from typing import Callable, Tuple

import optuna
import torch
from sklearn.datasets import load_digits

from bttackler.optuna import STOP_ATTR, BTTacklerPruner


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


def run_study(objective: Callable[[optuna.Trial], float], trials: int) -> None:
    """A maximising study pruned by bttackler (a private service), its first two trials fixed: lr 50 with MSE
    (diverges), lr 0.3 with cross-entropy (learns). Prints one line per trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=BTTacklerPruner())
    study.enqueue_trial({"lr": 50.0, "loss": "mse"})
    study.enqueue_trial({"lr": 0.3, "loss": "cross_entropy"})
    study.optimize(objective, n_trials=trials)
    for t in study.trials:
        stop = t.user_attrs.get(STOP_ATTR)
        print(f"trial {t.number}: {t.state.name:8} lr={t.params['lr']:.3g} {t.params['loss']:13} "
              + (f"stopped at epoch {stop['step']}: {stop['reason'][:90]}" if stop else f"val_acc={t.value}"))

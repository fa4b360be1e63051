"""BTTacklerCallback: the reporter as a Lightning ``Callback`` (``lightning.pytorch``, or ``pytorch_lightning``)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

import torch

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # the older package name
    from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef]

from ._hosts import deliver
from ._reporter import TorchReporter, _check_int


class BTTacklerCallback(Callback):
    """Sends one payload v1 per training epoch to ``on_payload`` and stops the fit when it answers stop.

    Gradients are observed at ``on_before_optimizer_step`` (unscaled under AMP, and also on the
    steps AMP's scaler then skips); the payload is made at ``on_train_epoch_end``, after the
    epoch's validation, with the logged metrics (``trainer.callback_metrics``: one-element
    tensors, read in the same single transfer as the layer statistics). ``on_payload(payload)``
    answers True (or a verdict with ``stop: true``) to stop: the callback sets
    ``trainer.should_stop``. Use :func:`bttackler.torch.to_optuna`, :func:`~bttackler.torch.to_nni`
    or :func:`~bttackler.torch.to_service` for it. ``metrics`` picks and renames logged metrics
    (``{"val_loss": "val/loss"}``); by default every logged scalar goes under its own name.
    ``max_steps`` defaults to ``trainer.max_epochs``.

    Example:

        .. code-block:: python

            import lightning.pytorch as pl
            from bttackler.torch import to_optuna
            from bttackler.torch.lightning import BTTacklerCallback

            trainer = pl.Trainer(max_epochs=20, callbacks=[BTTacklerCallback(to_optuna(trial))])
            trainer.fit(module, train_loader, val_loader)
            if trial.should_prune():
                raise optuna.TrialPruned()
    """

    def __init__(
        self,
        on_payload: Optional[Callable[[Dict[str, Any]], Any]] = None,
        *,
        sample_every: int = 10,
        layers: Optional[Iterable[str]] = None,
        metrics: Optional[Dict[str, str]] = None,
        max_steps: Optional[int] = None,
    ) -> None:
        super().__init__()
        if on_payload is not None and not callable(on_payload):
            raise TypeError(f"on_payload must be callable or None, got {on_payload!r}")
        if metrics is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in dict(metrics).items()):
            raise TypeError(f"metrics must map payload metric names to logged names (strings), got {metrics!r}")
        self.on_payload = on_payload
        self.sample_every = sample_every
        self.layers = None if layers is None else list(layers)
        self.metrics = None if metrics is None else dict(metrics)
        self.max_steps = max_steps
        self.reporter: Optional[TorchReporter] = None
        self.payloads: list = []
        _check_int("sample_every", sample_every, 1)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        max_steps = self.max_steps
        if max_steps is None and isinstance(trainer.max_epochs, int) and trainer.max_epochs >= 1:
            max_steps = trainer.max_epochs
        scaler = getattr(getattr(trainer, "precision_plugin", None), "scaler", None)
        self.reporter = TorchReporter(pl_module, sample_every=self.sample_every, layers=self.layers, max_steps=max_steps, scaler=scaler)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.reporter is not None:
            self.reporter.begin_epoch()

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        if self.reporter is not None:
            self.reporter.observe()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.reporter is None:
            return
        logged = dict(trainer.callback_metrics)
        if self.metrics is None:
            chosen = {k: v for k, v in logged.items() if 1 <= len(k) <= 128 and _scalar(v)}
        else:
            chosen = {name: logged[key] for name, key in self.metrics.items() if key in logged and _scalar(logged[key])}
        payload = self.reporter.end_epoch(chosen, step=trainer.current_epoch)
        self.payloads.append(payload)
        if deliver(self.on_payload, payload, "lightning"):
            trainer.should_stop = True


def _scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and (value.is_floating_point() or value.dtype in (torch.int32, torch.int64))
    return isinstance(value, (int, float)) and not isinstance(value, bool)

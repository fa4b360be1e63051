"""BTTacklerTrainerCallback: the reporter as a Hugging Face ``transformers.TrainerCallback``."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, Mapping, Optional

from transformers import TrainerCallback

from ._hosts import deliver
from ._reporter import TorchReporter, _check_int

#: Trainer log names -> payload metric names; other numeric log entries keep their names ("epoch" is left out).
LOG_NAMES = {"loss": "train_loss", "eval_loss": "val_loss", "eval_accuracy": "val_acc", "eval_acc": "val_acc"}
_NOT_METRICS = ("epoch", "step", "total_flos")


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value))


class BTTacklerTrainerCallback(TrainerCallback):
    """Sends one payload v1 per training epoch to ``on_payload`` and stops the Trainer when it answers stop.

    Gradients are observed at ``on_pre_optimizer_step`` (after clipping, before the step; at
    ``on_step_end`` they are already zeroed); the layer statistics are read at ``on_epoch_end``.
    The Trainer logs and evaluates only after ``on_epoch_end``, so the payload waits for them:
    with ``eval_strategy="epoch"`` it is sent at ``on_evaluate`` with the evaluation's metrics,
    with ``logging_strategy="epoch"`` (and no epoch evaluation) at the epoch's training log,
    otherwise at once with the latest logged values. Names: ``loss`` -> ``train_loss``,
    ``eval_loss`` -> ``val_loss``, ``eval_accuracy`` -> ``val_acc``; other numbers keep their
    log names. ``on_payload(payload)`` answers True (or a verdict with ``stop: true``) to set
    ``control.should_training_stop``. ``max_steps`` defaults to ``args.num_train_epochs``.

    Example:

        .. code-block:: python

            from transformers import Trainer, TrainingArguments
            from bttackler.torch import to_optuna
            from bttackler.torch.hf import BTTacklerTrainerCallback

            args = TrainingArguments("out", num_train_epochs=20, eval_strategy="epoch", logging_strategy="epoch")
            trainer = Trainer(model, args, train_dataset=train, eval_dataset=val,
                              callbacks=[BTTacklerTrainerCallback(to_optuna(trial))])
            trainer.train()
    """

    def __init__(
        self,
        on_payload: Optional[Callable[[Dict[str, Any]], Any]] = None,
        *,
        sample_every: int = 10,
        layers: Optional[Iterable[str]] = None,
        max_steps: Optional[int] = None,
    ) -> None:
        if on_payload is not None and not callable(on_payload):
            raise TypeError(f"on_payload must be callable or None, got {on_payload!r}")
        self.on_payload = on_payload
        self.sample_every = _check_int("sample_every", sample_every, 1)
        self.layers = None if layers is None else list(layers)
        self.max_steps = None if max_steps is None else _check_int("max_steps", max_steps, 1)
        self.reporter: Optional[TorchReporter] = None
        self.payloads: list = []
        self._logged: Dict[str, Optional[float]] = {}
        self._pending: Optional[Dict[str, Any]] = None
        self._wait_for = ""

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        max_steps = self.max_steps
        if max_steps is None:
            epochs = math.ceil(float(getattr(args, "num_train_epochs", 0) or 0))
            max_steps = epochs if epochs >= 1 else None
        scaler = getattr(kwargs.get("optimizer"), "scaler", None)  # accelerate's AcceleratedOptimizer carries the GradScaler under fp16
        self.reporter = TorchReporter(model, sample_every=self.sample_every, layers=self.layers, max_steps=max_steps, scaler=scaler)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.reporter is not None:
            self.reporter.begin_epoch()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.reporter is not None:
            self.reporter.observe()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.reporter is None:
            return
        self._finish(control)  # a payload still waiting (its log never came) goes first
        self._pending = self.reporter.end_epoch()
        if _strategy(getattr(args, "eval_strategy", getattr(args, "evaluation_strategy", "no"))) == "epoch":
            self._wait_for = "evaluate"
        elif _strategy(getattr(args, "logging_strategy", "no")) == "epoch":
            self._wait_for = "log"
        else:
            self._finish(control)

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        for key, value in (logs or {}).items():
            if key in _NOT_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            name = LOG_NAMES.get(key, key)
            if 1 <= len(name) <= 128:
                self._logged[name] = float(value) if math.isfinite(value) else None
        if self._wait_for == "log" and logs and "loss" in logs:
            self._finish(control)

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self.on_log(args, state, control, logs=metrics)
        if self._wait_for == "evaluate":
            self._finish(control)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._finish(control)

    def _finish(self, control: Any) -> None:
        payload, self._pending, self._wait_for = self._pending, None, ""
        if payload is None:
            return
        if self._logged:
            metrics = dict(payload.get("metrics") or {})
            metrics.update(self._logged)
            payload["metrics"] = metrics
            if any(v is None for v in self._logged.values()):
                payload["non_finite"] = True
            self._logged = {}
        self.payloads.append(payload)
        if deliver(self.on_payload, payload, "transformers"):
            control.should_training_stop = True

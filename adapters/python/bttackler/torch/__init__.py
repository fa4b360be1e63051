"""bttackler for PyTorch: indicator payloads (payload v1) from a training, one device-to-host read per epoch.

- :class:`TorchReporter` — the core: ``TorchReporter(model, optimizer)`` observes the gradients at
  every ``sample_every``-th optimizer step; ``reporter.end_epoch(metrics)`` returns the payload.
- :class:`bttackler.torch.lightning.BTTacklerCallback` — a Lightning ``Callback``.
- :class:`bttackler.torch.hf.BTTacklerTrainerCallback` — a Hugging Face ``TrainerCallback``.
- :func:`to_optuna`, :func:`to_nni`, :func:`to_service` — where the payloads go.

See docs/torch.md.
"""
from ._hosts import to_nni, to_optuna, to_service
from ._reporter import TorchReporter

__all__ = ["TorchReporter", "to_nni", "to_optuna", "to_service"]

"""The study's objective as the hosts know it: an Optuna study's direction, NNI's ``optimize_mode``.

The service judges trials by the study's objective (docs/configuration.md#objective): by
default ``val_acc`` maximized, else ``val_loss``, else ``train_loss`` minimized. A host that
knows which way its study goes declares it once, when it opens the study, so that a
minimizing study is judged by its loss even when the payloads also carry an accuracy.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

DIRECTIONS = ("minimize", "maximize")


def with_objective(config: Optional[Mapping[str, Any]], direction: str, metric: str = "auto") -> Dict[str, Any]:
    """``config`` (config.v1) with ``objective`` set to ``metric`` in ``direction``, unless the config declares one.

    >>> with_objective(None, "minimize")
    {'objective': {'metric': 'auto', 'direction': 'minimize'}}
    >>> with_objective({"objective": {"metric": "val_f1"}}, "minimize")
    {'objective': {'metric': 'val_f1'}}
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be minimize or maximize, got {direction!r}")
    out = dict(config or {})
    out.setdefault("objective", {"metric": metric, "direction": direction})
    return out

"""report(): one epoch's indicator payload to the service, and its value to Optuna."""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, Mapping, Optional, Tuple

import optuna
from optuna.study import StudyDirection

from ._identity import service_study
from ._pruner import find_pruner

logger = logging.getLogger("bttackler")

#: Which payload metric becomes Optuna's intermediate value when ``value`` is not given, in order of preference.
VALUE_METRICS: Dict[StudyDirection, Tuple[str, ...]] = {
    StudyDirection.MINIMIZE: ("val_loss", "train_loss"),
    StudyDirection.MAXIMIZE: ("val_acc", "train_acc"),
}
_warned_no_pruner: set = set()


def _check_payload(payload: Any) -> int:
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping (indicator payload v1, docs/payload.md), got {payload!r} ({type(payload).__name__})")
    step = payload.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"payload['step'] must be an integer >= 0 (0-based epoch), got {step!r}")
    metrics = payload.get("metrics", {})
    if metrics is not None and not isinstance(metrics, Mapping):
        raise TypeError(f"payload['metrics'] must be a mapping of metric names to numbers, got {metrics!r}")
    return step


def value_of(payload: Mapping[str, Any], direction: StudyDirection, metric: Optional[str] = None) -> float:
    """Optuna's intermediate value for a payload: ``metrics[metric]``, or by the study's direction
    ``val_loss``, else ``train_loss`` (minimize) / ``val_acc``, else ``train_acc`` (maximize).
    A metric that is ``null`` (non-finite) gives NaN."""
    metrics = payload.get("metrics") or {}
    names = (metric,) if metric is not None else VALUE_METRICS.get(direction, ())
    for name in names:
        if name in metrics:
            value = metrics[name]
            if value is None:
                return math.nan
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                try:
                    return float(value)
                except (TypeError, ValueError):
                    raise TypeError(f"payload['metrics'][{name!r}] must be a number or null, got {value!r}") from None
            return float(value)
    wanted = " or ".join(repr(n) for n in names)
    raise ValueError(
        f"payload['metrics'] has no {wanted} to report to Optuna (the study {direction.name.lower()}s); "
        f"pass value= or metric=, got metrics {sorted(metrics)!r}"
    )


def _has_loss(payload: Mapping[str, Any]) -> bool:
    metrics = payload.get("metrics") or {}
    return any(name in metrics for name in VALUE_METRICS[StudyDirection.MINIMIZE])


def report(
    trial: "optuna.trial.Trial",
    payload: Mapping[str, Any],
    value: Optional[float] = None,
    *,
    metric: Optional[str] = None,
) -> Optional[Dict[str, Any]]:
    """Reports one step: the indicator ``payload`` to the bttackler service and a value to Optuna.

    Calls ``trial.report(value, payload["step"])``, then sends the payload (report-and-assess,
    idempotent per (study, trial number, step)) through the study's :class:`BTTacklerPruner`,
    which keeps the verdict so that the next ``trial.should_prune()`` answers from it without
    another call. ``value`` defaults to the payload's metric named ``metric``, else by the
    study's direction ``val_loss``/``train_loss`` (minimize) or ``val_acc``/``train_acc``
    (maximize); a non-finite metric (``null``/NaN) is reported as NaN.

    Returns the verdict (``{"stop": ..., "reason": ..., ...}``), or None when the service did
    not answer (fail open) or the study's pruner is not a BTTacklerPruner (then only
    ``trial.report`` happens, after a warning). With an ``optuna.trial.FixedTrial`` (no study)
    only ``trial.report`` happens, with a loss if the payload has one, else an accuracy. Raises TypeError/ValueError only for a payload
    that is not payload v1 or has no value to report, before anything is sent.

    Example:

        .. code-block:: python

            import optuna
            from bttackler.optuna import BTTacklerPruner, report


            def objective(trial):
                lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
                loss = 2.3
                for epoch in range(10):
                    loss *= 0.9  # train one epoch here
                    grads = [1e-3, 2e-3]  # mean |gradient| per layer, input side first
                    report(trial, {"step": epoch, "max_steps": 10, "metrics": {"train_loss": loss},
                                   "layers": [{"name": f"dense{i}", "grad_abs_mean": g} for i, g in enumerate(grads)]})
                    if trial.should_prune():
                        raise optuna.TrialPruned()
                return loss


            optuna.create_study(pruner=BTTacklerPruner()).optimize(objective, n_trials=3)
    """
    step = _check_payload(payload)
    study = getattr(trial, "study", None)
    if study is None:  # optuna.trial.FixedTrial (an objective run by hand): no study, no pruner
        if not callable(getattr(trial, "report", None)):
            raise TypeError(f"trial must be the optuna.trial.Trial given to the objective, got {trial!r} ({type(trial).__name__})")
        if value is None:
            value = value_of(payload, StudyDirection.MINIMIZE if metric or _has_loss(payload) else StudyDirection.MAXIMIZE, metric)
        trial.report(value, step)
        return None
    if value is None:
        value = value_of(payload, study.direction, metric)
    trial.report(value, step)
    pruner = find_pruner(study.pruner)
    if pruner is None:
        name = type(study.pruner).__name__
        if name not in _warned_no_pruner:
            _warned_no_pruner.add(name)
            logger.warning(
                "bttackler.optuna.report: the study's pruner is a %s, not a BTTacklerPruner: the payload is not sent, "
                "only trial.report(value, step) happens", name,
            )
        return None
    try:
        return pruner._send(service_study(study), trial.number, payload, direction=study.direction.name.lower())
    except Exception as exc:  # noqa: BLE001 - fail open
        logger.warning("bttackler.optuna.report: payload of trial %s step %s not sent (%s: %s)", trial.number, step, type(exc).__name__, exc)
        return None

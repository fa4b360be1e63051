"""Where a payload goes: the host that runs the trial (Optuna, NNI) or the service directly.

Each function returns a ``send(payload) -> bool`` callable for the integrations' ``on_payload``:
it hands the payload over and answers True when the trial should stop. None of them raises
for an unreachable service (the adapters answer "continue" then).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, Mapping, Optional

logger = logging.getLogger("bttackler.torch")

Send = Callable[[Mapping[str, Any]], bool]


def to_optuna(trial: Any, *, metric: Optional[str] = None) -> Send:
    """Sends each payload with :func:`bttackler.optuna.report` (to the study's ``BTTacklerPruner``
    and its value to ``trial.report``); answers ``trial.should_prune()``.

    >>> import optuna
    >>> send = to_optuna(optuna.trial.FixedTrial({}))
    >>> send({"step": 0, "metrics": {"train_loss": 1.0}})
    False
    """
    from bttackler.optuna import report

    def send(payload: Mapping[str, Any]) -> bool:
        report(trial, payload, metric=metric)
        return bool(trial.should_prune())

    return send


def to_nni(metric: str = "val_acc") -> Send:
    """Sends each payload with ``nni.report_intermediate_result({"default": metrics[metric], **payload})``,
    which the bttackler NNI assessor reads whole; answers False (NNI's assessor ends a stopped trial itself).
    ``default`` is the number NNI's web UI plots; a missing or non-finite metric gives NaN there."""
    import nni

    def send(payload: Mapping[str, Any]) -> bool:
        value = (payload.get("metrics") or {}).get(metric)
        default = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        nni.report_intermediate_result({"default": default, **payload})
        return False

    return send


def to_service(client: Any, study: str, trial: str) -> Send:
    """Sends each payload to the service with ``client.report_and_assess(study, trial, payload)``
    (a :class:`bttackler.BTTacklerClient`); answers the verdict's ``stop`` (False when the service
    did not answer)."""
    from bttackler.client import should_stop

    def send(payload: Mapping[str, Any]) -> bool:
        return should_stop(client.report_and_assess(study, trial, payload))

    return send


def wants_stop(answer: Any) -> bool:
    """An ``on_payload`` answer as a stop decision: True, or a verdict mapping with ``stop: true``."""
    if isinstance(answer, Mapping):
        return answer.get("stop") is True
    return answer is True


def deliver(on_payload: Optional[Callable[[Dict[str, Any]], Any]], payload: Dict[str, Any], where: str) -> bool:
    """Calls ``on_payload(payload)`` for an integration; a fault in it is logged, never raised, and means "continue"."""
    if on_payload is None:
        return False
    try:
        return wants_stop(on_payload(payload))
    except Exception as exc:  # noqa: BLE001 - a trial is never killed by a reporting fault
        if type(exc).__name__ == "TrialPruned":  # optuna.TrialPruned raised from on_payload: a stop, not a fault
            return True
        logger.warning("bttackler.torch (%s): on_payload failed for step %s (%s: %s); training continues", where, payload.get("step"), type(exc).__name__, exc)
        return False

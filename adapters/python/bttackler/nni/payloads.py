"""NNI trial-history values as payload v1.

What a trial reported with ``nni.report_intermediate_result`` reaches the assessor as it
was reported. Three kinds:

- a **payload dict**: a dict with any payload v1 field (``step``, ``max_steps``, ``metrics``,
  ``layers``, ``non_finite``, ``seconds``), as the JS trial SDK sends it (``{"default": x,
  ...payload}``) or a Python trial reports it. Its payload fields are sent as they are
  (other top-level keys, such as NNI's ``default``, are left out), so every rule can run.
  Its ``step`` is kept when it is an integer >= 0; otherwise the value's position in the
  history is the step.
- a **plain number** (or a dict without payload fields whose ``default`` is a number): it
  becomes ``{"step": position, "metrics": {metric: number}}``, so only the metric rules run
  (NF for a NaN or infinity, and DIV, SC, HO, OF on a loss).
- anything else: ``{"step": position}``, diagnosed as nothing.
"""
from __future__ import annotations

import numbers
from typing import Any, Dict, Mapping

PAYLOAD_FIELDS = ("step", "max_steps", "metrics", "layers", "non_finite", "seconds")


def is_payload(value: Any) -> bool:
    """True for a dict that carries payload v1 fields."""
    return isinstance(value, Mapping) and any(field in value for field in PAYLOAD_FIELDS)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def to_payload(value: Any, position: int, metric: str) -> Dict[str, Any]:
    """The payload v1 for one trial-history value at ``position`` (0-based).

    >>> to_payload(0.93, 2, "val_acc")
    {'step': 2, 'metrics': {'val_acc': 0.93}}
    >>> to_payload({"default": 0.5, "step": 0, "metrics": {"train_loss": 1.2}}, 0, "val_acc")
    {'step': 0, 'metrics': {'train_loss': 1.2}}
    """
    if is_payload(value):
        payload = {field: value[field] for field in PAYLOAD_FIELDS if field in value}
        step = payload.get("step")
        if not (isinstance(step, numbers.Integral) and not isinstance(step, bool) and step >= 0):
            payload["step"] = position
        else:
            payload["step"] = int(step)
        return payload
    if isinstance(value, Mapping):
        value = value.get("default")
    if _number(value):
        return {"step": position, "metrics": {metric: float(value)}}
    return {"step": position}

"""What a stop verdict of the service says, in the form every host adapter records it.

A verdict (``trial.reportAndAssess`` / ``trial.assess``, docs/protocol.md) carries a ``reason``
(one line per symptom, e.g. ``"EG grad_ratio_high: gradients grow 2700x ..."``), the symptoms
with their ``action`` and the step the trial was stopped at (``stopped_at``).

Example:

    >>> verdict = {"stop": True, "stopped_at": 3, "reason": "NF non_finite_metric: metric\\n  train_loss is not finite",
    ...            "symptoms": [{"code": "NF", "action": "stop"}, {"code": "VG", "action": "watch"}]}
    >>> stop_codes(verdict)
    ['NF']
    >>> one_line(verdict["reason"])
    'NF non_finite_metric: metric train_loss is not finite'
    >>> should_stop(verdict), should_stop(None)
    (True, False)
    >>> stop_record(verdict, step=5)
    {'by': 'bttackler', 'step': 3, 'symptoms': ['NF'], 'reason': 'NF non_finite_metric: metric train_loss is not finite'}
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional

#: A symptom code at the start of the reason or of one of its parts ("EG grad_ratio_high: ...; NF ...").
_CODES = re.compile(r"(?:^|; |: )([A-Z]{2,4}) [a-z][a-z0-9_]*:")


def should_stop(verdict: Optional[Mapping[str, Any]]) -> bool:
    """True when a verdict (from report_and_assess or assess) says to stop the trial; False for None."""
    return isinstance(verdict, Mapping) and verdict.get("stop") is True


def one_line(text: str) -> str:
    """``text`` with every run of white space (new lines included) made one space."""
    return " ".join(str(text).split())


def stop_codes(verdict: Mapping[str, Any]) -> List[str]:
    """The codes of the symptoms that stopped the trial (``action == "stop"``), in order, each once;
    when the verdict lists none, the codes named in its ``reason``."""
    symptoms = verdict.get("symptoms") or []
    codes = [s.get("code") for s in symptoms if isinstance(s, Mapping) and s.get("action") == "stop"]
    found = list(dict.fromkeys(c for c in codes if isinstance(c, str)))
    if found:
        return found
    return list(dict.fromkeys(_CODES.findall(str(verdict.get("reason") or ""))))


def stop_record(verdict: Mapping[str, Any], step: Any) -> Dict[str, Any]:
    """What a host records of a stop verdict: ``{"by": "bttackler", "step", "symptoms", "reason"}``; the step is the
    verdict's ``stopped_at``, else ``step`` (the step the host asked about); the reason on one line."""
    stopped_at = verdict.get("stopped_at")
    return {
        "by": "bttackler",
        "step": stopped_at if isinstance(stopped_at, int) else step,
        "symptoms": stop_codes(verdict),
        "reason": one_line(verdict.get("reason") or "stopped by bttackler"),
    }

"""The ``bttackler_stop`` user attribute of a pruned Optuna trial: its name and the size it is kept to.

Example:

    >>> record = {"by": "bttackler", "step": 3, "symptoms": ["NF"], "reason": "x" * 2000}
    >>> fit_record(record)
    >>> len(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) <= MAX_ATTR_CHARS
    True
"""
from __future__ import annotations

import json
from typing import Any, Dict

#: The user attribute that holds the reason of a stop.
STOP_ATTR = "bttackler_stop"
#: optuna-dashboard shows a user attribute cut at 1,024 characters: the record stays below.
MAX_ATTR_CHARS = 1024


def fit_record(record: Dict[str, Any]) -> None:
    """Shortens record["reason"] until the record is at most MAX_ATTR_CHARS characters of JSON."""
    def size() -> int:
        return len(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    while len(record["symptoms"]) > 20 and size() > MAX_ATTR_CHARS:
        record["symptoms"] = record["symptoms"][:20]
    excess = size() - MAX_ATTR_CHARS
    if excess > 0:
        reason = record["reason"]
        record["reason"] = reason[: max(0, len(reason) - excess - 1)] + "…"
        while size() > MAX_ATTR_CHARS and record["reason"] != "…":  # escapes can make JSON longer than the text
            record["reason"] = record["reason"][:-2] + "…"

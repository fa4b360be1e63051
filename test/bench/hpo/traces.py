"""Recorded trials (bttackler.trace.v1, written by ``npm run bench:record``) as the simulator sees them.

A trace line holds one trial trained for all its planned epochs, never stopped: every
epoch's payload v1 (metrics ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``),
the epoch's time and the held-out test accuracy. The simulator charges each epoch its
recorded CPU seconds (wall seconds in traces without them) and feeds the methods the
epoch's ``val_acc`` (and bttackler the whole payload). ``test_acc`` is never shown to a method.
"""
from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence

TRACE_FORMAT = "bttackler.trace.v1"
#: Ten classes: a classifier at or below this validation accuracy learned nothing useful.
HOPELESS_ACC = 0.2


def _number(value: Any) -> float:
    """A trace number; null (how traces write NaN and infinities) becomes NaN."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


@dataclass(frozen=True)
class Trial:
    """One recorded trial: what it costs per epoch and what it reports."""

    index: int
    config: Mapping[str, Any]
    payloads: Sequence[Mapping[str, Any]]
    val_acc: Sequence[float]
    test_acc: Sequence[float]
    seconds: Sequence[float]
    status: str

    @property
    def epochs(self) -> int:
        return len(self.payloads)

    @property
    def final_val_acc(self) -> float:
        """The validation accuracy it ends with when nobody stops it (NaN counts as nothing learned)."""
        v = self.val_acc[-1]
        return v if math.isfinite(v) else 0.0

    @property
    def final_test_acc(self) -> float:
        v = self.test_acc[-1]
        return v if math.isfinite(v) else 0.0

    @property
    def hopeless(self) -> bool:
        """Non-finite training, or a final accuracy at chance level."""
        return self.status == "non_finite" or self.final_val_acc <= HOPELESS_ACC


def top_quartile_cut(trials: Sequence[Trial]) -> float:
    """The final accuracy at which the top quartile of ``trials`` starts (sorted[floor(0.75 (n - 1))])."""
    finals = sorted(t.final_val_acc for t in trials)
    return finals[int(0.75 * (len(finals) - 1))]


def _epoch_cost(epoch: Mapping[str, Any]) -> float:
    """What an epoch costs in the simulation: the recorder's CPU seconds for it when the trace has them
    (traces are recorded at low priority on a shared machine: wall time carries the load of the hour,
    CPU time hardly does), else its wall seconds."""
    cpu = _number(epoch.get("cpu_seconds"))
    return cpu if math.isfinite(cpu) and cpu > 0 else _number(epoch.get("seconds"))


def _trial(line: Mapping[str, Any]) -> Trial:
    epochs: List[Mapping[str, Any]] = list(line["epochs"])
    payloads = [dict(e["payload"]) for e in epochs]
    for p in payloads:
        p.setdefault("max_steps", line.get("max_epochs", len(epochs)))
    return Trial(
        index=int(line["trial"]),
        config=dict(line["config"]),
        payloads=payloads,
        val_acc=[_number((e["payload"].get("metrics") or {}).get("val_acc")) for e in epochs],
        test_acc=[_number(e.get("test_acc")) for e in epochs],
        seconds=[max(1e-6, _epoch_cost(e)) for e in epochs],
        status=str(line.get("status", "ok")),
    )


def parse_traces(text: str, source: str = "traces") -> List[Trial]:
    """Trial lines of a trace file; a cut-short last line (a recording killed mid-write) is left out."""
    trials: List[Trial] = []
    lines = text.split("\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as err:
            if number == len(lines) and not text.endswith("\n"):
                continue
            raise ValueError(f"{source}:{number}: not JSON ({err})") from None
        if not isinstance(line, dict) or line.get("format") != TRACE_FORMAT:
            raise ValueError(f"{source}:{number}: not a {TRACE_FORMAT} trial line")
        if line.get("status") == "error" or not line.get("epochs"):
            continue  # training threw: nothing a host would have seen to the end
        trials.append(_trial(line))
    return trials


def load_traces(paths: Sequence[str]) -> List[Trial]:
    """Trials of one or more trace files (plain or gzip, told apart by their first bytes), in file order.

    Trials must have the same number of epochs; duplicate trial indices are refused.
    """
    trials: List[Trial] = []
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        trials.extend(parse_traces(raw.decode("utf-8"), path))
    seen: Dict[int, int] = {}
    for t in trials:
        seen[t.index] = seen.get(t.index, 0) + 1
    dup = [i for i, n in seen.items() if n > 1]
    if dup:
        raise ValueError(f"trial indices recorded twice: {sorted(dup)[:10]}")
    lengths = {t.epochs for t in trials}
    if len(lengths) > 1:
        raise ValueError(f"trials have different numbers of epochs: {sorted(lengths)}")
    return trials

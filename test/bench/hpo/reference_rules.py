"""The published BTTackler rules (Pei et al., KDD 2024), as a baseline for the simulator.

Each epoch, from the payload v1 (per layer l, input side first: g_l = ``grad_abs_mean``,
z_l = ``grad_zero_frac``; q_l = g_l / g_(l+1); "first half" = epoch < epochs / 2), any rule that
holds stops the trial at once (no persistence):

| code | rule | stage | protectable |
| EG | a non-finite loss or gradient; median(g) > 1e4; median(q) > 1e3 or a non-finite q | all | no |
| VG | median(g) < 1e-5; or some g = 0, a non-finite q, or median(abs(q)) < 1e-4 | first half | yes |
| DR | median(z) > 0.5, once 5 epochs are in | all | yes |
| SC | CV(train losses so far) < 1e-4 with >= 3 epochs (first half); CV(second half of the curve) > CV(first half), train or val loss (second half) | all | yes |
| HO | over the last 6 losses, slope >= 0.01 and CV > 0.2, train or val loss | second half | no |
| NMG | mean(val_loss[-6:-3]) < mean(val_loss[-3:]) | all | yes |

Protection: a trial whose train loss is at or below the 10th percentile of the train losses
already reported at the same epoch (at least 10 of them) is protected from then on. CV = std /
mean (population std); the slope is the least-squares slope per epoch. Thresholds are the
reference's defaults. Where the published code cannot do what its rule says (its non-finite
flag never becomes true), this baseline does what the rule says: it is, if anything, kinder to
the reference than its code.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Dict, List, Mapping, Optional, Sequence

from base import Method
from traces import Objective, Trial


def _cv(xs: Sequence[float]) -> Optional[float]:
    if len(xs) < 2:
        return None
    m = statistics.fmean(xs)
    return statistics.pstdev(xs) / m if m > 0 else None


def _slope(ys: Sequence[float]) -> float:
    n = len(ys)
    mx = (n - 1) / 2
    my = statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in range(n))
    return sum((x - mx) * (y - my) for x, y in zip(range(n), ys)) / den if den else 0.0


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def reference_symptoms(payload: Mapping[str, Any], epoch: int, epochs: int, train: Sequence[float], val: Sequence[float]) -> List[str]:
    """The rules that hold at this epoch, as codes; a trailing * marks a protectable one ("VG*")."""
    found: List[str] = []
    layers = payload.get("layers") or []
    metrics = payload.get("metrics") or {}
    g = [l["grad_abs_mean"] for l in layers if "grad_abs_mean" in l]
    z = [l["grad_zero_frac"] for l in layers if _finite(l.get("grad_zero_frac"))]
    bad_metric = any(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in metrics.values())
    if payload.get("non_finite") or bad_metric or any(not _finite(x) for x in g):
        return ["EG"]
    first_half = epoch < epochs / 2
    if g:
        q = [a / b if b != 0 else math.inf for a, b in zip(g, g[1:])]
        med_g = statistics.median(g)
        if med_g > 1e4 or (q and (statistics.median(q) > 1e3 or any(not math.isfinite(x) for x in q))):
            found.append("EG")
        if first_half and (med_g < 1e-5 or any(x == 0 for x in g) or (q and statistics.median([abs(x) for x in q]) < 1e-4)):
            found.append("VG*")
    if z and epoch + 1 >= 5 and statistics.median(z) > 0.5:
        found.append("DR*")
    if first_half:
        c = _cv(train)
        if len(train) >= 3 and c is not None and c < 1e-4:
            found.append("SC*")
    else:
        for curve in (train, val):
            h = len(curve) // 2
            a, b = _cv(curve[:h]), _cv(curve[h:])
            if a is not None and b is not None and b > a:
                found.append("SC*")
                break
        for curve in (train, val):
            last = curve[-6:]
            c = _cv(last)
            if len(last) == 6 and c is not None and _slope(last) >= 0.01 and c > 0.2:
                found.append("HO")
                break
    if len(val) >= 6 and statistics.fmean(val[-6:-3]) < statistics.fmean(val[-3:]):
        found.append("NMG*")
    return found


class ReferenceRules(Method):
    """The reference's rules and protection on each epoch's payload; the first rule that holds stops the trial."""

    name = "reference-bttackler"

    def __init__(self, goal: Objective = Objective()) -> None:
        self._goal = goal
        self._cohort: Dict[int, List[float]] = {}
        self._protected: set = set()
        self._curves: Dict[int, tuple] = {}

    def start(self, trial: Trial) -> None:
        self._curves[trial.index] = ([], [])

    def stop(self, trial: Trial, epoch: int) -> bool:
        payload = trial.payloads[epoch]
        metrics = payload.get("metrics") or {}
        train, val = self._curves[trial.index]
        loss = metrics.get("train_loss")
        if _finite(loss):
            train.append(float(loss))
            seen = self._cohort.setdefault(epoch, [])
            if len(seen) >= 10 and loss <= _percentile(seen, 10):
                self._protected.add(trial.index)
            seen.append(float(loss))
        if _finite(metrics.get("val_loss")):
            val.append(float(metrics["val_loss"]))
        tags = reference_symptoms(payload, epoch, trial.epochs, train, val)
        protected = trial.index in self._protected
        return any(not (t.endswith("*") and protected) for t in tags)

    def end(self, trial: Trial, completed: bool) -> None:
        self._curves.pop(trial.index, None)


def _percentile(xs: Sequence[float], p: float) -> float:
    """NumPy's linear percentile."""
    s = sorted(xs)
    pos = (len(s) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)

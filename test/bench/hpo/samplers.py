"""Which recorded configuration a worker trains next: random search, or Optuna's TPE over the recorded pool.

A simulated study can only train configurations that were recorded. Random search takes
them in a seeded random order. TPE (Optuna's default sampler) asks for a configuration in
the search space the recorded configurations span, and the worker trains the nearest one
not yet used: the standard way to run a model-based sampler on a tabular benchmark. Every
trial that ends is added to the sampler's study as what it was: complete with its final
objective, or pruned with the values it reported up to its stop (TPE ranks pruned trials by
those), so a method's stops steer the sampler as they would in a real study.

The space is read off the recorded configurations: booleans, strings and integers with at
most 10 distinct values are categorical; other numbers are floats, on a log scale when they
are non-negative and their positive values span a factor of 20 or more (a 0 among them maps
to a tenth of the smallest positive value). Distances for "nearest": categorical 0 or 1,
numbers their difference over the range, on the scale above; ties go to the earlier trial.
"""
from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional, Sequence

from traces import Trial


class RandomOrder:
    """The trials in a seeded random order."""

    name = "random"

    def __init__(self, trials: Sequence[Trial], seed: int) -> None:
        self._order = list(range(len(trials)))
        random.Random(seed).shuffle(self._order)
        self._next = 0

    def next(self) -> Optional[int]:
        if self._next >= len(self._order):
            return None
        self._next += 1
        return self._order[self._next - 1]

    def done(self, position: int, epochs_run: int) -> None:
        """The trial at ``position`` ended after ``epochs_run`` epochs (random search learns nothing from it)."""


class _Dimension:
    def __init__(self, name: str, values: Sequence[Any]) -> None:
        self.name = name
        distinct = sorted(set(values), key=repr)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        self.categorical = not numeric or (all(isinstance(v, int) for v in values) and len(distinct) <= 10)
        self.choices: List[Any] = distinct
        if not self.categorical:
            positive = [float(v) for v in values if v > 0]
            self.offset = 0.0
            self.log = bool(positive) and min(values) >= 0 and max(positive) / min(positive) >= 20
            if self.log:
                self.offset = min(positive) / 10 if min(values) == 0 else 0.0
            scaled = [self.scale(float(v)) for v in values]
            self.low, self.high = min(scaled), max(scaled)

    def scale(self, v: float) -> float:
        return math.log10(v + self.offset) if not self.categorical and self.log else v

    def distribution(self) -> Any:
        import optuna

        if self.categorical:
            return optuna.distributions.CategoricalDistribution(self.choices)
        return optuna.distributions.FloatDistribution(self.low, self.high if self.high > self.low else self.low + 1e-12)

    def encode(self, v: Any) -> Any:
        return v if self.categorical else min(max(self.scale(float(v)), self.low), self.high)

    def distance(self, a: Any, b: Any) -> float:
        if self.categorical:
            return 0.0 if a == b else 1.0
        span = self.high - self.low
        return abs(self.encode(a) - b) / span if span > 0 else 0.0


class TPEOrder:
    """Optuna's TPE sampler (seeded) over the recorded pool; each proposal trains the nearest unused configuration."""

    name = "tpe"

    def __init__(self, trials: Sequence[Trial], seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self._optuna = optuna
        self._trials = trials
        keys = sorted({k for t in trials for k in t.config})
        self._dims = [_Dimension(k, [t.config.get(k) for t in trials]) for k in keys if len({repr(t.config.get(k)) for t in trials}) > 1]
        self._dists = {d.name: d.distribution() for d in self._dims}
        goal = trials[0].goal
        self._study = optuna.create_study(direction=goal.direction, sampler=optuna.samplers.TPESampler(seed=seed))
        self._unused = list(range(len(trials)))

    def next(self) -> Optional[int]:
        if not self._unused:
            return None
        asked = self._study.ask(self._dists)
        wanted = asked.params
        self._study.tell(asked, state=self._optuna.trial.TrialState.FAIL)  # a proposal, not a trial: TPE ignores failed ones
        best = min(self._unused, key=lambda p: (sum(d.distance(self._trials[p].config.get(d.name), wanted[d.name]) for d in self._dims), p))
        self._unused.remove(best)
        return best

    def done(self, position: int, epochs_run: int) -> None:
        t = self._trials[position]
        params = {d.name: d.encode(t.config.get(d.name)) for d in self._dims}
        values = {e: v for e, v in enumerate(t.objective[:epochs_run]) if math.isfinite(v)}
        state = self._optuna.trial.TrialState
        complete = epochs_run == t.epochs and math.isfinite(t.final)
        frozen = self._optuna.trial.create_trial(
            params=params,
            distributions=self._dists,
            value=t.final if complete else None,
            intermediate_values=values,
            state=state.COMPLETE if complete else state.PRUNED if epochs_run < t.epochs else state.FAIL,
        )
        self._study.add_trial(frozen)


SAMPLERS = {"random": RandomOrder, "tpe": TPEOrder}

"""The early-stopping methods the simulator compares, all behind one small interface.

Every method sees the same thing at the end of each epoch but the last: the trial's
objective of that epoch (the task's metric, e.g. ``val_acc`` or ``val_loss``; bttackler also
gets the epoch's whole payload v1, which carries the same value). The baselines are the real
implementations from the installed ``optuna`` and ``nni`` packages, driven the way their
hosts drive them, in the task's direction:

- Optuna pruners through ask/tell: ``study.ask()`` when a trial starts, ``trial.report(val_acc,
  epoch)`` and ``trial.should_prune()`` after each epoch, ``study.tell`` when it ends;
- NNI assessors as NNI's dispatcher calls them: ``assess_trial(id, history)`` with the
  trial's values so far, ``trial_end(id, success)`` when it ends;
- bttackler through its Python client against a real ``bttackler serve``.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from base import Method, NoStopping  # noqa: F401 - re-exported: the simulator and tests import them from here
from reference_rules import ReferenceRules
from traces import Objective, Trial, top_quartile_cut


class OptunaPrunerMethod(Method):
    """A real Optuna pruner, driven through ask/tell on an in-memory study in the task's direction."""

    def __init__(self, name: str, make_pruner: Callable[[], Any], seed: int, goal: Objective = Objective()) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.name = name
        self._optuna = optuna
        self._study = optuna.create_study(
            direction=goal.direction, pruner=make_pruner(), sampler=optuna.samplers.RandomSampler(seed=seed)
        )
        self._running: Dict[int, Any] = {}

    def start(self, trial: Trial) -> None:
        self._running[trial.index] = self._study.ask()

    def stop(self, trial: Trial, epoch: int) -> bool:
        t = self._running[trial.index]
        t.report(trial.objective[epoch], epoch)
        return bool(t.should_prune())

    def end(self, trial: Trial, completed: bool) -> None:
        t = self._running.pop(trial.index)
        state = self._optuna.trial.TrialState
        if not completed:
            self._study.tell(t, state=state.PRUNED)
        elif math.isfinite(trial.final):
            self._study.tell(t, trial.final)
        else:
            self._study.tell(t, state=state.FAIL)


class NNIAssessorMethod(Method):
    """A real NNI assessor, called as NNI 3.0's dispatcher calls it."""

    def __init__(self, name: str, assessor: Any) -> None:
        from nni.assessor import AssessResult

        self.name = name
        self._assessor = assessor
        self._bad = AssessResult.Bad
        self._history: Dict[int, List[float]] = {}

    def start(self, trial: Trial) -> None:
        self._history[trial.index] = []

    def stop(self, trial: Trial, epoch: int) -> bool:
        history = self._history[trial.index]
        history.append(trial.objective[epoch])
        return self._assessor.assess_trial(str(trial.index), list(history)) == self._bad

    def end(self, trial: Trial, completed: bool) -> None:
        self._history.pop(trial.index, None)
        self._assessor.trial_end(str(trial.index), completed)


class ForesightOracle(Method):
    """Not a method anyone can run: it knows how every trial ends and stops, after epoch ``epoch``,
    exactly the trials ``doomed`` picks. With the trials below the top quartile as the doomed ones,
    it is the ceiling of a method with no false kill."""

    def __init__(self, name: str, epoch: int, doomed: Callable[[Trial], bool]) -> None:
        self.name = name
        self._epoch = epoch
        self._doomed = doomed

    def stop(self, trial: Trial, epoch: int) -> bool:
        return epoch >= self._epoch and self._doomed(trial)


#: The oracle whose TSBA is a task's ceiling: every trial below the top quartile, stopped after epoch 1.
CEILING = "oracle-below-q75-at-1"


def foresight_oracles(trials: Sequence[Trial]) -> Dict[str, Callable[[], Method]]:
    """The ceilings of docs/benchmarks.md: the hopeless trials at step 0, everything below the top
    quartile after epoch 1 (the ceiling, CEILING) and at once, the bottom half after epoch 3."""
    half = sorted(t.final_score for t in trials)[len(trials) // 2]
    q75 = top_quartile_cut(trials)
    specs: List[Tuple[str, int, Callable[[Trial], bool]]] = [
        ("oracle-hopeless-at-0", 0, lambda t: t.hopeless),
        ("oracle-bottom-half-after-3", 3, lambda t: t.final_score < half),
        (CEILING, 1, lambda t: t.final_score < q75),
        ("oracle-below-q75-at-once", 0, lambda t: t.final_score < q75),
    ]
    return {name: (lambda name=name, epoch=epoch, doomed=doomed: ForesightOracle(name, epoch, doomed)) for name, epoch, doomed in specs}


class BTTacklerMethod(Method):
    """bttackler: each epoch's payload to a real service; a stop verdict stops the trial.

    Unlike the adapters, which fail open, a missing answer here is an error: a benchmark
    that silently continued would report numbers bttackler never produced.
    """

    def __init__(self, client: Any, study: str, config: Optional[Mapping[str, Any]] = None, name: str = "bttackler") -> None:
        self.name = name
        self._client = client
        self._study = study
        opened = client.open_study(study, dict(config) if config is not None else None)
        if opened is None:
            raise RuntimeError(f"the bttackler service did not open study {study}")
        self.reasons: Dict[int, str] = {}

    def stop(self, trial: Trial, epoch: int) -> bool:
        verdict = self._client.report_and_assess(self._study, str(trial.index), trial.payloads[epoch])
        if verdict is None:
            raise RuntimeError(f"no verdict from the bttackler service for trial {trial.index} at epoch {epoch}")
        if verdict.get("stop"):
            self.reasons[trial.index] = str(verdict.get("reason", ""))
        return bool(verdict.get("stop"))

    def end(self, trial: Trial, completed: bool) -> None:
        self._client.end_trial(self._study, str(trial.index), "complete" if completed else "pruned")


#: Curvefitting judges a trial from this many reported values on (NNI's documented example).
CURVEFITTING_START_STEP = 6


def baseline_factories(seed: int, epochs: int, goal: Objective = Objective()) -> Dict[str, Callable[[], Method]]:
    """Every built-in baseline, with the defaults their documentation gives (a few need a choice; it is stated),
    in the task's direction. NNI's Curvefitting assumes a maximized, positive metric (it prunes below
    ``threshold`` x the best): it is left out of a minimized task."""
    import optuna
    from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor
    from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor

    logging.getLogger("nni").setLevel(logging.ERROR)
    p = optuna.pruners
    # Threshold: a trial still no better than "learned nothing" after 4 epochs (Optuna's bound is inclusive of nothing: strictly worse)
    bound = {"lower": goal.hopeless_at} if goal.maximize else {"upper": goal.hopeless_at}
    factories: Dict[str, Callable[[], Method]] = {
        "optuna-median": lambda: OptunaPrunerMethod("optuna-median", lambda: p.MedianPruner(), seed, goal),
        "optuna-percentile25": lambda: OptunaPrunerMethod("optuna-percentile25", lambda: p.PercentilePruner(25.0), seed, goal),
        "optuna-sha": lambda: OptunaPrunerMethod("optuna-sha", lambda: p.SuccessiveHalvingPruner(), seed, goal),
        # resources are epochs: 1 to the planned number
        "optuna-hyperband": lambda: OptunaPrunerMethod(
            "optuna-hyperband", lambda: p.HyperbandPruner(min_resource=1, max_resource=epochs), seed, goal
        ),
        # patience 2: Median must say prune for 3 epochs in a row (Optuna documents no default)
        "optuna-patient-median": lambda: OptunaPrunerMethod(
            "optuna-patient-median", lambda: p.PatientPruner(p.MedianPruner(), patience=2), seed, goal
        ),
        "optuna-threshold": lambda: OptunaPrunerMethod(
            "optuna-threshold", lambda: p.ThresholdPruner(n_warmup_steps=4, **bound), seed, goal
        ),
        "optuna-wilcoxon": lambda: OptunaPrunerMethod("optuna-wilcoxon", lambda: p.WilcoxonPruner(), seed, goal),
        "nni-medianstop": lambda: NNIAssessorMethod("nni-medianstop", MedianstopAssessor(optimize_mode=goal.direction)),
        "reference-bttackler": lambda: ReferenceRules(goal),
    }
    if goal.maximize:
        factories["nni-curvefitting"] = lambda: NNIAssessorMethod(
            "nni-curvefitting", CurvefittingAssessor(epoch_num=epochs, start_step=CURVEFITTING_START_STEP, threshold=0.95, gap=1)
        )
    return factories


class CachedCurveModel:
    """Stands in for NNI's ``CurveModel`` inside its curvefitting assessor: the real model fits
    each distinct history once and every later call with the same target and history gets that
    prediction back. NNI's fit is a Monte Carlo sampling from the unseeded global NumPy state, so
    one fit is as valid a draw as another; the assessor's own decision (the prediction against
    ``threshold`` × the best completed result) is still made on every call. Across seeds the
    same trial reaches the same epochs with the same values, so this makes 20 seeds affordable."""

    fits: Dict[Tuple[int, Tuple[float, ...]], Any] = {}
    model: Any = None
    calls = 0

    def __init__(self, target_pos: int) -> None:
        self._target = target_pos

    def predict(self, history: Sequence[float]) -> Any:
        type(self).calls += 1
        key = (self._target, tuple(history))
        if key not in self.fits:
            self.fits[key] = type(self).model(self._target).predict(list(history))
        return self.fits[key]


def cache_curve_fits() -> None:
    """Make NNI's curvefitting assessor fit each distinct history once per process (see
    ``CachedCurveModel``). Idempotent."""
    from nni.algorithms.hpo.curvefitting_assessor import curvefitting_assessor as module

    if module.CurveModel is not CachedCurveModel:
        CachedCurveModel.model = module.CurveModel
        module.CurveModel = CachedCurveModel


def load_curve_fits(path: str) -> int:
    """Add the curve fits saved by ``save_curve_fits`` in ``path`` (if it exists) to the cache of
    ``CachedCurveModel``; returns how many it read."""
    import pickle

    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        fits = pickle.load(f)
    CachedCurveModel.fits.update(fits)
    return len(fits)


def save_curve_fits(path: str) -> None:
    """Write every curve fit of the cache to ``path`` (a pickle, replaced whole), for a later run's
    ``load_curve_fits``."""
    import pickle

    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump(dict(CachedCurveModel.fits), f)
    os.replace(tmp, path)


def _seed_numpy() -> None:
    """Each forked process its own draws (NNI's fit samples from the global NumPy state)."""
    import numpy

    numpy.random.seed(None)


def _fit_curve(key: Tuple[int, Tuple[float, ...]]) -> Any:
    target, history = key
    return CachedCurveModel.model(target).predict(list(history))


def prefit_curves(trials: Sequence[Trial], epochs: int, start_step: int, jobs: int) -> int:
    """Fill the cache of ``CachedCurveModel`` (after ``cache_curve_fits``) with a fit of every history the
    Curvefitting assessor of ``baseline_factories`` can be asked about on these trials (each trial's first
    ``start_step`` .. ``epochs - 1`` values), in ``jobs`` forked processes: one fit per history, as the cache
    would make lazily, so processes forked afterwards share them. Returns how many fits it made."""
    import multiprocessing

    keys = sorted(
        {(epochs, tuple(t.objective[:k])) for t in trials for k in range(start_step, min(len(t.objective), epochs - 1) + 1)} - set(CachedCurveModel.fits)
    )
    with multiprocessing.get_context("fork").Pool(jobs, initializer=_seed_numpy) as pool:
        CachedCurveModel.fits.update(zip(keys, pool.map(_fit_curve, keys, chunksize=4)))
    return len(keys)

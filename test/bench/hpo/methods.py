"""The early-stopping methods the simulator compares, all behind one small interface.

Every method sees the same thing at the end of each epoch but the last: the trial's
``val_acc`` of that epoch (bttackler also gets the epoch's whole payload v1, which carries
the same ``val_acc``). The baselines are the real implementations from the installed
``optuna`` and ``nni`` packages, driven the way their hosts drive them:

- Optuna pruners through ask/tell: ``study.ask()`` when a trial starts, ``trial.report(val_acc,
  epoch)`` and ``trial.should_prune()`` after each epoch, ``study.tell`` when it ends;
- NNI assessors as NNI's dispatcher calls them: ``assess_trial(id, history)`` with the
  trial's values so far, ``trial_end(id, success)`` when it ends;
- bttackler through its Python client against a real ``bttackler serve``.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from traces import Trial, top_quartile_cut


class Method:
    """Decides, epoch by epoch, whether a trial goes on. One instance per simulated run."""

    name = "none"

    def start(self, trial: Trial) -> None:
        """A worker starts the trial."""

    def stop(self, trial: Trial, epoch: int) -> bool:
        """Epoch ``epoch`` (0-based) of the trial has ended: True stops the trial."""
        return False

    def end(self, trial: Trial, completed: bool) -> None:
        """The trial ran all its epochs (completed) or was stopped."""

    def close(self) -> None:
        """The run is over."""


class NoStopping(Method):
    """Every trial runs to the end: the baseline every figure is relative to."""

    name = "none"


def _acc(trial: Trial, epoch: int) -> float:
    return trial.val_acc[epoch]


class OptunaPrunerMethod(Method):
    """A real Optuna pruner, driven through ask/tell on a maximising in-memory study."""

    def __init__(self, name: str, make_pruner: Callable[[], Any], seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.name = name
        self._optuna = optuna
        self._study = optuna.create_study(
            direction="maximize", pruner=make_pruner(), sampler=optuna.samplers.RandomSampler(seed=seed)
        )
        self._running: Dict[int, Any] = {}

    def start(self, trial: Trial) -> None:
        self._running[trial.index] = self._study.ask()

    def stop(self, trial: Trial, epoch: int) -> bool:
        t = self._running[trial.index]
        t.report(_acc(trial, epoch), epoch)
        return bool(t.should_prune())

    def end(self, trial: Trial, completed: bool) -> None:
        t = self._running.pop(trial.index)
        state = self._optuna.trial.TrialState
        if not completed:
            self._study.tell(t, state=state.PRUNED)
        elif math.isfinite(trial.val_acc[-1]):
            self._study.tell(t, trial.val_acc[-1])
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
        history.append(_acc(trial, epoch))
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


def foresight_oracles(trials: Sequence[Trial]) -> Dict[str, Callable[[], Method]]:
    """The ceilings of docs/benchmarks.md: the hopeless trials after epoch 1, the bottom half after
    epoch 3, everything below the top quartile after epoch 2 and at once."""
    half = sorted(t.final_val_acc for t in trials)[len(trials) // 2]
    q75 = top_quartile_cut(trials)
    specs: List[Tuple[str, int, Callable[[Trial], bool]]] = [
        ("oracle-hopeless-after-1", 1, lambda t: t.hopeless),
        ("oracle-bottom-half-after-3", 3, lambda t: t.final_val_acc < half),
        ("oracle-below-q75-after-2", 2, lambda t: t.final_val_acc < q75),
        ("oracle-below-q75-at-once", 0, lambda t: t.final_val_acc < q75),
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


def baseline_factories(seed: int, epochs: int) -> Dict[str, Callable[[], Method]]:
    """Every built-in baseline, with the defaults their documentation gives (a few need a choice; it is stated)."""
    import optuna
    from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor
    from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor

    logging.getLogger("nni").setLevel(logging.ERROR)
    p = optuna.pruners
    return {
        "optuna-median": lambda: OptunaPrunerMethod("optuna-median", lambda: p.MedianPruner(), seed),
        "optuna-percentile25": lambda: OptunaPrunerMethod("optuna-percentile25", lambda: p.PercentilePruner(25.0), seed),
        "optuna-sha": lambda: OptunaPrunerMethod("optuna-sha", lambda: p.SuccessiveHalvingPruner(), seed),
        # resources are epochs: 1 to the planned number
        "optuna-hyperband": lambda: OptunaPrunerMethod(
            "optuna-hyperband", lambda: p.HyperbandPruner(min_resource=1, max_resource=epochs), seed
        ),
        # patience 2: Median must say prune for 3 epochs in a row (Optuna documents no default)
        "optuna-patient-median": lambda: OptunaPrunerMethod(
            "optuna-patient-median", lambda: p.PatientPruner(p.MedianPruner(), patience=2), seed
        ),
        "optuna-wilcoxon": lambda: OptunaPrunerMethod("optuna-wilcoxon", lambda: p.WilcoxonPruner(), seed),
        "nni-medianstop": lambda: NNIAssessorMethod("nni-medianstop", MedianstopAssessor(optimize_mode="maximize")),
        "nni-curvefitting": lambda: NNIAssessorMethod(
            "nni-curvefitting", CurvefittingAssessor(epoch_num=epochs, start_step=6, threshold=0.95, gap=1)
        ),
    }


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

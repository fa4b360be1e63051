"""stopped_trials(): the trials BTTacklerStopper stopped, with step, symptoms and reason, from a ResultGrid or an experiment folder."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ._stopper import STOP_KEY


@dataclass(frozen=True)
class StoppedTrial:
    """One trial that bttackler stopped: Ray's trial id, the step of the stop, the symptom codes and the reason."""

    trial_id: str
    step: Optional[int]
    symptoms: List[str]
    reason: str
    config: Dict[str, Any] = field(default_factory=dict)
    path: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.trial_id} stopped at step {self.step} [{', '.join(self.symptoms)}]: {self.reason}"


def _from_record(trial_id: str, record: Mapping[str, Any], config: Any, path: Optional[str]) -> StoppedTrial:
    step = record.get("step")
    symptoms = record.get("symptoms")
    return StoppedTrial(
        trial_id=str(trial_id),
        step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        symptoms=[str(s) for s in symptoms] if isinstance(symptoms, list) else [],
        reason=str(record.get("reason") or ""),
        config=dict(config) if isinstance(config, Mapping) else {},
        path=path,
    )


def _last_record(result_json: Path) -> Tuple[Optional[Mapping[str, Any]], Optional[str]]:
    """The stop record in a trial's result.json (one JSON result per line) and the trial id; (None, id) if there is none."""
    record: Optional[Mapping[str, Any]] = None
    trial_id: Optional[str] = None
    with result_json.open("r", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                result = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            if not isinstance(result, dict):
                continue
            trial_id = str(result.get("trial_id", trial_id))
            found = result.get(STOP_KEY)
            if isinstance(found, Mapping):
                record = found
    return record, trial_id


def _from_folder(folder: Path) -> List[StoppedTrial]:
    if not folder.is_dir():
        raise FileNotFoundError(f"experiment folder not found: {str(folder)!r} (give the folder Ray printed, e.g. ~/ray_results/<name>, or a ResultGrid)")
    stopped = []
    for result_json in sorted(folder.glob("*/result.json")):
        record, trial_id = _last_record(result_json)
        if record is None:
            continue
        params = result_json.parent / "params.json"
        try:
            config = json.loads(params.read_text(encoding="utf-8")) if params.is_file() else {}
        except ValueError:
            config = {}
        stopped.append(_from_record(trial_id or result_json.parent.name, record, config, str(result_json.parent)))
    return stopped


def _from_results(results: Iterable[Any]) -> List[StoppedTrial]:
    stopped = []
    for result in results:
        metrics = getattr(result, "metrics", None) or {}
        record = metrics.get(STOP_KEY) if isinstance(metrics, Mapping) else None
        if isinstance(record, Mapping):
            path = getattr(result, "path", None)
            stopped.append(_from_record(metrics.get("trial_id", ""), record, getattr(result, "config", None), None if path is None else str(path)))
    return stopped


def stopped_trials(source: Union["os.PathLike[str]", str, Any]) -> List[StoppedTrial]:
    """Every trial that :class:`BTTacklerStopper` stopped, in trial-id order.

    ``source`` is the ``ResultGrid`` that ``Tuner.fit()`` returned, or the experiment folder
    (``<storage_path>/<name>``, e.g. ``~/ray_results/my_experiment``): each trial folder's
    ``result.json`` holds the stop record on the result the trial was stopped on. Trials that
    finished, failed or were stopped by something else (a scheduler, another stopper) are not
    listed.

    Example:

        .. code-block:: python

            from bttackler.ray import stopped_trials

            for trial in stopped_trials("~/ray_results/my_experiment"):
                print(trial)  # 3f2a1_00001 stopped at step 2 [NF]: NF non_finite_metric: metric train_loss is not finite
    """
    if isinstance(source, (str, os.PathLike)):
        found = _from_folder(Path(os.path.expanduser(os.fspath(source))))
    elif hasattr(source, "__getitem__") and hasattr(source, "__len__"):  # a ResultGrid (indexable), or a list of Results
        found = _from_results(source[i] for i in range(len(source)))
    else:
        raise TypeError(f"source must be a ray.tune.ResultGrid or the path of an experiment folder, got {source!r} ({type(source).__name__})")
    return sorted(found, key=lambda t: t.trial_id)

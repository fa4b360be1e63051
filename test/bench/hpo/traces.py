"""Recorded trials (bttackler.trace.v1, written by the trace recorders) as the simulator sees them.

A trace file is one *task*: one model family on one data set, one objective. A trace line
holds one trial trained for all its planned epochs, never stopped: every epoch's payload v1,
the epoch's time and, where the task has one, a held-out test score. The simulator charges
each epoch its recorded CPU seconds (wall seconds in traces without them) and feeds the
methods the epoch's objective value (and bttackler the whole payload). The held-out test
score is never shown to a method.

A line may say what its task is:

    "task": {"name": "mnist-cnn", "objective": {"metric": "val_acc", "direction": "maximize"},
             "hopeless_at": 0.2}

``hopeless_at`` is the final objective no better than which a trial learned nothing: chance
accuracy for a classifier, the constant predictor's loss for a loss-only task. Lines without
the block are the first recordings (MNIST MLPs, ten classes): ``val_acc``, maximized,
hopeless at 0.2. Every line of a file must agree.

A trial's outcome has one definition, shared with bttackler calibrate (src/calibration/outcome.ts)
and written down in docs/benchmarks.md, "Outcomes": the first line of each trial index counts (a
later line of the same index is dropped); a trial whose training threw (``status: "error"``)
ended without a result: its final score is the worst and it is hopeless; the simulator runs its
recorded epochs, after which it fails. test/fixtures/outcomes/ holds golden traces that both test
suites check.
"""
from __future__ import annotations

import gzip
import json
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

TRACE_FORMAT = "bttackler.trace.v1"
#: Ten classes: a classifier at or below this validation accuracy learned nothing useful.
HOPELESS_ACC = 0.2


def _number(value: Any) -> float:
    """A trace number; null (how traces write NaN and infinities) becomes NaN."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


@dataclass(frozen=True)
class Objective:
    """What a task optimizes: the metric, its direction, and the value that means nothing was learned."""

    metric: str = "val_acc"
    direction: str = "maximize"
    hopeless_at: float = HOPELESS_ACC

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"objective direction must be maximize or minimize, got {self.direction!r}")

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def score(self, value: float) -> float:
        """Higher is better whatever the direction; a non-finite value is the worst score."""
        if not math.isfinite(value):
            return -math.inf
        return value if self.maximize else -value

    def hopeless(self, value: float) -> bool:
        """Whether a final value is no better than ``hopeless_at`` (non-finite included)."""
        return self.score(value) <= self.score(self.hopeless_at)


MNIST_MLP = Objective()


@dataclass(frozen=True)
class Trial:
    """One recorded trial: what it costs per epoch and what it reports."""

    index: int
    config: Mapping[str, Any]
    payloads: Sequence[Mapping[str, Any]]
    #: the objective's value at each epoch (NaN where not finite)
    objective: Sequence[float]
    test_score: Sequence[float]
    seconds: Sequence[float]
    status: str
    goal: Objective = field(default=MNIST_MLP)

    @property
    def epochs(self) -> int:
        return len(self.payloads)

    @property
    def failed(self) -> bool:
        """Its training threw: it ends without a result after its recorded epochs."""
        return self.status == "error"

    @property
    def final(self) -> float:
        """The objective it ends with when nobody stops it (NaN when not finite, missing or failed)."""
        return math.nan if self.failed or not self.objective else self.objective[-1]

    @property
    def final_score(self) -> float:
        """``final`` as a score: higher is better, a non-finite end is the worst."""
        return self.goal.score(self.final)

    def score(self, epoch: int) -> float:
        return self.goal.score(self.objective[epoch])

    @property
    def hopeless(self) -> bool:
        """Non-finite or failed training, or a final objective no better than the task's ``hopeless_at`` (a
        non-finite final included)."""
        return self.status != "ok" or self.goal.hopeless(self.final)


@dataclass(frozen=True)
class Task:
    """The trials of one trace file and what they optimize."""

    name: str
    goal: Objective
    trials: Sequence[Trial]

    @property
    def epochs(self) -> int:
        """The planned epochs (a failed trial may have fewer)."""
        return max(t.epochs for t in self.trials)


def top_quartile_cut(trials: Sequence[Trial]) -> float:
    """The final score at which the top quartile of ``trials`` starts (sorted[floor(0.75 (n - 1))])."""
    finals = sorted(t.final_score for t in trials)
    return finals[int(0.75 * (len(finals) - 1))]


def outcomes(trials: Sequence[Trial]) -> List[Dict[str, Any]]:
    """Every trial's outcome, the top quartile taken within ``trials``: ``{trial, final_score, hopeless,
    top_quartile}``, ``final_score`` None for -inf (the golden check of test/fixtures/outcomes)."""
    cut = top_quartile_cut(trials) if trials else math.inf
    return [
        {"trial": t.index, "final_score": None if t.final_score == -math.inf else t.final_score,
         "hopeless": t.hopeless, "top_quartile": t.final_score >= cut}
        for t in trials
    ]


def _epoch_cost(epoch: Mapping[str, Any]) -> float:
    """What an epoch costs in the simulation: the recorder's CPU seconds for it when the trace has them
    (traces are recorded at low priority on a shared machine: wall time carries the load of the hour,
    CPU time hardly does), else its wall seconds."""
    cpu = _number(epoch.get("cpu_seconds"))
    return cpu if math.isfinite(cpu) and cpu > 0 else _number(epoch.get("seconds"))


def _goal(line: Mapping[str, Any], source: str) -> Objective:
    task = line.get("task")
    if task is None and isinstance(line.get("objective"), str):
        # the first loss-only recordings: a metric name in the settings; hopeless only when non-finite
        metric = line["objective"]
        return Objective(metric, "minimize" if "loss" in metric else "maximize", math.nan)
    if task is None:
        return MNIST_MLP
    if not isinstance(task, dict) or not isinstance(task.get("objective"), dict):
        raise ValueError(f"{source}: a task block needs an objective: {task!r}")
    o = task["objective"]
    return Objective(str(o.get("metric")), str(o.get("direction")), float(task.get("hopeless_at", math.nan)))


def _trial(line: Mapping[str, Any], goal: Objective) -> Trial:
    epochs: List[Mapping[str, Any]] = list(line["epochs"])
    payloads = [dict(e["payload"]) for e in epochs]
    for p in payloads:
        p.setdefault("max_steps", line.get("max_epochs", len(epochs)))
    return Trial(
        index=int(line["trial"]),
        config=dict(line["config"]),
        payloads=payloads,
        objective=[_number((e["payload"].get("metrics") or {}).get(goal.metric)) for e in epochs],
        test_score=[_number(e.get("test_acc", e.get("test_score"))) for e in epochs],
        seconds=[max(1e-6, _epoch_cost(e)) for e in epochs],
        status=str(line.get("status", "ok")),
        goal=goal,
    )


def parse_task(text: str, source: str = "traces", name: Optional[str] = None) -> Task:
    """The trial lines of one trace file as a task; a cut-short last line (a recording killed
    mid-write) is left out; lines that disagree on the task are refused; of lines with the same
    trial index the first counts."""
    trials: List[Trial] = []
    goal: Optional[Objective] = None
    task_name = name
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
        here = _goal(line, f"{source}:{number}")
        if goal is None:
            goal = here
            given = (line.get("task") or {}).get("name")
            task_name = task_name or (str(given) if given else None)
        elif here != goal:
            raise ValueError(f"{source}:{number}: the task's objective differs from the file's first line ({here} vs {goal})")
        trials.append(_trial(line, here))
    return Task(task_name or "traces", goal or MNIST_MLP, first_lines(trials))


def parse_traces(text: str, source: str = "traces") -> List[Trial]:
    """The trials of one trace file's text (see parse_task)."""
    return list(parse_task(text, source).trials)


def _read(path: str) -> str:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def task_name_of(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".gz", ".jsonl"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def first_lines(trials: Sequence[Trial]) -> List[Trial]:
    """The first trial of each index, in their order (a later line of the same index is dropped)."""
    seen: Set[int] = set()
    kept: List[Trial] = []
    for t in trials:
        if t.index not in seen:
            seen.add(t.index)
            kept.append(t)
    return kept


def _check(trials: Sequence[Trial], source: str) -> None:
    lengths = {t.epochs for t in trials if not t.failed}
    if len(lengths) > 1:
        raise ValueError(f"{source}: trials have different numbers of epochs: {sorted(lengths)}")


def load_task(path: str) -> Task:
    """One trace file (plain or gzip, told apart by their first bytes) as a task, named by its
    task block or else by the file name. Trials that did not fail must have the same number of
    epochs; of lines with the same trial index the first counts."""
    task = parse_task(_read(path), path)
    task = replace(task, name=task.name if task.name != "traces" else task_name_of(path))
    _check(task.trials, path)
    return task


def load_traces(paths: Sequence[str]) -> List[Trial]:
    """The trials of one or more trace files of the same task, in file order (e.g. shards)."""
    tasks = [load_task(p) for p in paths]
    goals = {t.goal for t in tasks}
    if len(goals) > 1:
        raise ValueError(f"the trace files are of different tasks: {sorted(str(g) for g in goals)}")
    trials = first_lines([t for task in tasks for t in task.trials])
    _check(trials, ", ".join(paths))
    return trials


def loss_only_view(task: Task, hopeless_at: float = math.log(10)) -> Task:
    """The task as a study that reports no accuracy would see it: every ``*_acc`` metric left out of
    the payloads, the objective the validation loss, minimized, hopeless at ``hopeless_at`` (the
    constant predictor's cross-entropy, ln 10 for ten balanced classes)."""
    goal = Objective("val_loss", "minimize", hopeless_at)
    trials = []
    for t in task.trials:
        payloads = []
        for p in t.payloads:
            q = dict(p)
            q["metrics"] = {k: v for k, v in (p.get("metrics") or {}).items() if not k.endswith("_acc")}
            payloads.append(q)
        objective = [_number((p.get("metrics") or {}).get("val_loss")) for p in payloads]
        trials.append(replace(t, payloads=payloads, objective=objective, goal=goal))
    return Task(f"{task.name} (loss only)", goal, trials)

"""``npm run bench:hpo`` — closed-loop HPO simulation on recorded traces, one table per task and a pooled one.

Each trace file is a task (traces.py): its trials and its objective (``val_acc`` maximized,
``val_loss`` minimized, ...). Random search with W workers under a time budget: each worker
takes the next configuration of a seeded random order of the recorded trials, trains it epoch
by epoch (each epoch costs its recorded seconds), and after every epoch but the last the method
under test decides whether the trial goes on. A stopped trial frees its worker at once for the
next configuration. A trial that runs all its epochs completes with its final objective; a
stopped trial reports no result (as in NNI, Optuna and Ray, where an early-stopped or pruned
trial is not a candidate for the best). A trial whose training threw (``status: "error"``) runs
its recorded epochs and then ends without a result. Every method sees the same orders, the same
epoch times and the same values (see methods.py). Below, "best" follows the task's direction;
what counts as hopeless or top quartile is defined once (traces.py, docs/benchmarks.md "Outcomes").

Per method and seed, against ``none`` (no stopping) on the same order:
- TSBA = (1 - T_i / T_none) x 100 %: T_none is when ``none`` reached its best objective within
  the budget, T_i when the method first reached that objective (not reached: no TSBA, counted);
  and TSBA as a share of the task's ceiling, the TSBA of the foresight oracle that stops every
  trial below the top quartile after epoch 1 (methods.CEILING);
- Top-10 hit ratio: of the 10 best completed trials of both runs pooled (a configuration both
  completed is in the pool twice; ties at the cut share the last places), the share that is
  the method's;
- false kills: stopped trials that, run to the end, would have been among the 10 best of the
  trials either run started (ties at the cut included);
- top-quartile stops: stopped trials whose unstopped final objective is in the top quartile of
  all recorded trials of the task, over the top-quartile trials started; hopeless caught:
  hopeless trials (non-finite, or a final objective no better than the task's ``hopeless_at``:
  chance accuracy, the constant predictor's loss) stopped before half their epochs, over those started
  that had the chance: a trial the budget's end cut off before it reached half its epochs, unstopped,
  counts neither way.
The pooled table puts every task's seeds together (TSBA and hit ratio: the mean over all
task-seeds; counts: summed; share of the ceiling: the mean of the tasks' shares).

Usage (from the repository root, after ``npm run build`` and with .venv set up by ``npm run test:python``):
  .venv/bin/python test/bench/hpo/simulate.py --traces test/bench/traces/mnist-mlp.jsonl.gz [--traces OTHER_TASK ...] [--traces-dir DIR]
      [--loss-only-view] [--seeds 20] [--jobs 1] [--workers 4] [--budget-frac 0.3] [--methods none,bttackler,...]
      [--bttackler-config '{"rules": ...}'] [--parity even|odd] [--oracle] [--explain] [--fresh-curve-fits]
      [--curve-fits FILE] [--out-dir DIR] [--quiet]
A task recorded in shards is given as one --traces with the files joined by "+".
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from methods import (  # noqa: E402
    CEILING,
    CURVEFITTING_START_STEP,
    BTTacklerMethod,
    CachedCurveModel,
    Method,
    NoStopping,
    baseline_factories,
    cache_curve_fits,
    foresight_oracles,
    load_curve_fits,
    prefit_curves,
    save_curve_fits,
)
from samplers import SAMPLERS  # noqa: E402
from traces import Task, Trial, load_task, load_traces, loss_only_view, top_quartile_cut  # noqa: E402

SAMPLER_NAMES = {"random": "random search", "tpe": "TPE"}

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TOP_K = 10


@dataclass
class RunResult:
    """What one method did with one order of the trials."""

    method: str
    seed: int
    budget: float
    started: List[int] = field(default_factory=list)
    #: (time, trial index, final score: the objective, negated when it is minimized)
    completed: List[Tuple[float, int, float]] = field(default_factory=list)
    #: (time, trial index, epoch at which it was stopped)
    stopped: List[Tuple[float, int, int]] = field(default_factory=list)
    #: (trial index, epochs it had run) of the trials still running when the budget ran out
    unfinished: List[Tuple[int, int]] = field(default_factory=list)
    decide_seconds: float = 0.0


class _FixedOrder:
    """A given sequence of positions, as a sampler that learns nothing."""

    def __init__(self, order: Sequence[int]) -> None:
        self._upcoming = iter(order)

    def next(self) -> Optional[int]:
        return next(self._upcoming, None)

    def done(self, position: int, epochs_run: int) -> None:
        pass


def simulate(trials: Sequence[Trial], order: Any, method: Method, workers: int, budget: float, seed: int) -> RunResult:
    """Runs a study with ``workers`` workers until ``budget`` seconds: ``order`` is a sequence of positions in
    ``trials`` (random search) or a sampler from samplers.py, told how each trial ended."""
    result = RunResult(method=method.name, seed=seed, budget=budget)
    events: List[Tuple[float, int, int, int]] = []  # (time the epoch ends, worker, position in trials, epoch)
    sampler = order if hasattr(order, "next") else _FixedOrder(order)

    def start_next(worker: int, now: float) -> None:
        while now < budget:
            position = sampler.next()
            if position is None:
                return
            trial = trials[position]
            result.started.append(trial.index)
            if trial.epochs == 0:  # it failed before its first epoch ended: nothing to run or decide
                sampler.done(position, 0)
                continue
            method.start(trial)
            heapq.heappush(events, (now + trial.seconds[0], worker, position, 0))
            return

    for w in range(workers):
        start_next(w, 0.0)
    while events:
        now, worker, position, epoch = heapq.heappop(events)
        if now > budget:  # this and every later epoch end after the budget: those trials never finish
            result.unfinished = sorted((trials[p].index, e) for _, _, p, e in [(now, worker, position, epoch), *events])
            break
        trial = trials[position]
        last = epoch == trial.epochs - 1
        if last:
            if trial.failed:  # its training threw here: no result
                method.end(trial, False)
            else:
                result.completed.append((now, trial.index, trial.final_score))
                method.end(trial, True)
            sampler.done(position, epoch + 1)
            start_next(worker, now)
            continue
        t0 = time.perf_counter()
        stop = method.stop(trial, epoch)
        result.decide_seconds += time.perf_counter() - t0
        if stop:
            result.stopped.append((now, trial.index, epoch))
            method.end(trial, False)
            sampler.done(position, epoch + 1)
            start_next(worker, now)
        else:
            heapq.heappush(events, (now + trial.seconds[epoch + 1], worker, position, epoch + 1))
    method.close()
    return result


def best_curve(result: RunResult) -> List[Tuple[float, float]]:
    """(time, best final score completed so far), one point per improvement."""
    curve: List[Tuple[float, float]] = []
    best = -math.inf
    for t, _, acc in sorted(result.completed):
        if acc > best:
            best = acc
            curve.append((t, acc))
    return curve


def tsba(method: RunResult, baseline: RunResult) -> Optional[float]:
    """Time-saving for baseline accuracy (the objective's best) in percent; None when the method never reached the baseline's best."""
    base = best_curve(baseline)
    if not base:
        return None
    target_time, target = base[-1]
    for t, acc in best_curve(method):
        if acc >= target:
            return (1.0 - t / target_time) * 100.0 if target_time > 0 else 0.0
    return None


def top_k_hit_ratio(method: RunResult, baseline: RunResult, k: int = TOP_K) -> float:
    """The method's share of the k best completed trials of both runs pooled; ties at the cut share the places left."""
    pool = [(acc, True) for _, _, acc in method.completed] + [(acc, False) for _, _, acc in baseline.completed]
    if not pool:
        return 0.5
    accs = sorted((a for a, _ in pool), reverse=True)
    if len(pool) <= k:
        return sum(1 for _, mine in pool if mine) / len(pool)
    cut = accs[k - 1]
    above = [mine for acc, mine in pool if acc > cut]
    at = [mine for acc, mine in pool if acc == cut]
    share = (k - len(above)) / len(at)
    return (sum(above) + share * sum(at)) / k


def false_kills(method: RunResult, baseline: RunResult, by_index: Mapping[int, Trial], k: int = TOP_K) -> List[int]:
    """Stopped trials that, unstopped, would have been among the k best of the trials either run started."""
    started = set(method.started) | set(baseline.started)
    finals = sorted((by_index[i].final_score for i in started), reverse=True)
    if not finals:
        return []
    cut = finals[min(k, len(finals)) - 1]
    return sorted(i for _, i, _ in method.stopped if by_index[i].final_score >= cut)


def median_tsba(per_seed: Sequence[Optional[float]]) -> float:
    """The median TSBA over every seed, a seed that never reached the baseline's best counting as
    the worst (-inf): unlike the mean over the seeds that reached it, a method cannot look good by
    failing on half the seeds. -inf when the median falls on such a seed."""
    if not per_seed:
        return math.nan
    return statistics.median([-math.inf if v is None else v for v in per_seed])


def mean_ci(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval (Student's t)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = statistics.fmean(values)
    if n == 1:
        return m, math.nan
    from scipy.stats import t as student_t

    return m, float(student_t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n)


@dataclass
class MethodSummary:
    method: str
    tsba: List[float]
    tsba_missed: int
    #: per seed, None when the method never reached the baseline's best
    tsba_per_seed: List[Optional[float]]
    hit: List[float]
    completed: List[int]
    started: List[int]
    stopped: List[int]
    false_kills: List[int]
    top_quartile_stopped: int
    top_quartile_started: int
    hopeless_caught: int
    hopeless_started: int
    decide_ms: float
    #: per task: the mean TSBA over the ceiling oracle's mean TSBA (filled in by the caller)
    ceiling_share: List[float] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """The safety lines of the goals: no eventual top-10 trial stopped, at most 2 % of the top quartile."""
        return sum(self.false_kills) == 0 and self.top_quartile_stopped <= 0.02 * max(1, self.top_quartile_started)


def summarize(name: str, runs: Sequence[RunResult], baselines: Sequence[RunResult], trials: Sequence[Trial]) -> MethodSummary:
    by_index = {t.index: t for t in trials}
    q75 = top_quartile_cut(trials)
    s = MethodSummary(name, [], 0, [], [], [], [], [], [], 0, 0, 0, 0, 0.0)
    decisions = 0
    for run, base in zip(runs, baselines):
        ts = tsba(run, base)
        s.tsba_per_seed.append(ts)
        if ts is None:
            s.tsba_missed += 1
        else:
            s.tsba.append(ts)
        s.hit.append(top_k_hit_ratio(run, base))
        s.completed.append(len(run.completed))
        s.started.append(len(run.started))
        s.stopped.append(len(run.stopped))
        s.false_kills.append(len(false_kills(run, base, by_index)))
        stopped_at = {i: e for _, i, e in run.stopped}
        cut_short = {i for i, epochs_run in run.unfinished if epochs_run < by_index[i].epochs // 2}
        for i in run.started:
            t = by_index[i]
            if t.final_score >= q75:
                s.top_quartile_started += 1
                s.top_quartile_stopped += i in stopped_at
            if t.hopeless and i not in cut_short:
                s.hopeless_started += 1
                s.hopeless_caught += i in stopped_at and stopped_at[i] < t.epochs // 2
        s.decide_ms += run.decide_seconds * 1000
        decisions += len(run.started)
    s.decide_ms = s.decide_ms / max(1, decisions)
    return s


def with_ceiling_share(summaries: Sequence[MethodSummary]) -> None:
    """Sets each summary's share of the ceiling: its mean TSBA over the ceiling oracle's (one task)."""
    ceiling = next((s for s in summaries if s.method == CEILING), None)
    top = statistics.fmean(ceiling.tsba) if ceiling is not None and ceiling.tsba else math.nan
    for s in summaries:
        s.ceiling_share = [statistics.fmean(s.tsba) / top] if s.tsba and top > 0 else []


def pool(per_task: Sequence[Sequence[MethodSummary]]) -> List[MethodSummary]:
    """One summary per method over every task: lists joined, counts summed, ceiling shares kept per task."""
    pooled: Dict[str, MethodSummary] = {}
    for summaries in per_task:
        for s in summaries:
            p = pooled.get(s.method)
            if p is None:
                pooled[s.method] = MethodSummary(**{**s.__dict__, **{k: list(v) for k, v in s.__dict__.items() if isinstance(v, list)}})
                continue
            for name in ("tsba", "tsba_per_seed", "hit", "completed", "started", "stopped", "false_kills", "ceiling_share"):
                getattr(p, name).extend(getattr(s, name))
            for name in ("tsba_missed", "top_quartile_stopped", "top_quartile_started", "hopeless_caught", "hopeless_started"):
                setattr(p, name, getattr(p, name) + getattr(s, name))
            p.decide_ms = max(p.decide_ms, s.decide_ms)
    return list(pooled.values())


def fmt_ci(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    m, h = mean_ci([v * scale for v in values])
    if math.isnan(m):
        return "n/a"
    return f"{m:.{digits}f} ± {h:.{digits}f}" if not math.isnan(h) else f"{m:.{digits}f}"


def table(summaries: Sequence[MethodSummary]) -> str:
    """One row per method; its counts are over its own runs (seeds x the tasks it ran on, in the pooled table)."""
    head = (
        "| method | TSBA vs none, % | share of the ceiling's TSBA, % | seeds not reaching none's best | TSBA median over all seeds, % "
        "| Top-10 hit ratio vs none, % | trials completed | trials stopped | false kills (top-10 trials stopped) "
        "| top-quartile trials stopped | hopeless trials stopped by mid-training | safe |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for s in summaries:
        med = median_tsba(s.tsba_per_seed)
        med_text = "not reached" if med == -math.inf else "n/a" if math.isnan(med) else f"{med:.1f}"
        share = f"{100 * statistics.fmean(s.ceiling_share):.0f}" if s.ceiling_share else "n/a"
        runs = len(s.tsba_per_seed)
        rows.append(
            f"| {s.method} | {fmt_ci(s.tsba) if s.tsba else 'n/a'} | {share} | {s.tsba_missed}/{runs} | {med_text} | {fmt_ci(s.hit, 100)} | {fmt_ci(s.completed)} "
            f"| {fmt_ci(s.stopped)} | {sum(s.false_kills)} in {runs} runs ({fmt_ci(s.false_kills, digits=2)} per run) "
            f"| {s.top_quartile_stopped}/{s.top_quartile_started} ({100 * s.top_quartile_stopped / max(1, s.top_quartile_started):.1f} %) "
            f"| {s.hopeless_caught}/{s.hopeless_started} ({100 * s.hopeless_caught / max(1, s.hopeless_started):.1f} %) "
            f"| {'yes' if s.safe else 'no'} |"
        )
    return head + "\n".join(rows) + "\n"


def explain_top_quartile_stops(trials: Sequence[Trial], runs: Sequence[Tuple[RunResult, Mapping[int, str]]]) -> str:
    """The top-quartile trials that were stopped over the given runs, each with the step, how many
    runs stopped it there and the reason the method gave (the first run's): where a method's
    false alarms come from. ``runs`` pairs each run with the method's reasons by trial index."""
    by_index = {t.index: t for t in trials}
    q75 = top_quartile_cut(trials)
    counts: Dict[Tuple[int, int], int] = {}
    reasons: Dict[Tuple[int, int], str] = {}
    for run, why in runs:
        for _, index, epoch in run.stopped:
            if by_index[index].final_score >= q75:
                counts[(index, epoch)] = counts.get((index, epoch), 0) + 1
                reasons.setdefault((index, epoch), why.get(index, ""))
    goal = trials[0].goal if trials else None
    metric = goal.metric if goal else "objective"
    cut = (q75 if goal is None or goal.maximize else -q75) if trials else math.nan
    sign = ">=" if goal is None or goal.maximize else "<="
    lines = [f"top-quartile trials (final {metric} {sign} {cut:.4f}) stopped in {len(runs)} runs: {len(counts)} (trial, step) pairs"]
    for (index, epoch), n in sorted(counts.items()):
        lines.append(f"- trial {index} (final {by_index[index].final:.3f}) at step {epoch}, in {n} runs: {reasons[(index, epoch)]}")
    return "\n".join(lines)


def plot(runs_by_method: Mapping[str, Sequence[RunResult]], budget: float, path: str, task: Task, workers: int) -> None:
    """The best objective so far against time, averaged over seeds, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    value = (lambda score: score) if task.goal.maximize else (lambda score: -score)
    grid = [budget * i / 400 for i in range(401)]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for name, runs in runs_by_method.items():
        if name.startswith("oracle-"):
            continue
        mean_curve = []
        for t in grid:
            values = []
            for run in runs:
                best = [score for when, score in best_curve(run) if when <= t]
                values.append(value(best[-1]) if best else math.nan)
            known = [v for v in values if math.isfinite(v)]
            mean_curve.append(statistics.fmean(known) if len(known) == len(values) else math.nan)
        style = {"linewidth": 2.6, "color": "black"} if name == "bttackler" else {"linewidth": 1.3}
        if name == "none":
            style = {"linewidth": 1.6, "color": "grey", "linestyle": "--"}
        ax.plot([t / 60 for t in grid], mean_curve, label=name, **style)
    ax.set_xlabel(f"simulated time, minutes ({workers} workers)")
    ax.set_ylabel(f"best {task.goal.metric} so far (mean over seeds)")
    ax.set_title(f"Random search on recorded traces ({task.name}): best {task.goal.metric} so far")
    finite = [value(score) for name, runs in runs_by_method.items() if not name.startswith("oracle-") for run in runs for _, _, score in run.completed]
    finite = [v for v in finite if math.isfinite(v)]
    if finite:
        best = max(finite) if task.goal.maximize else min(finite)
        spread = (max(finite) - min(finite)) or 1.0
        low, high = (best - 0.25 * spread, best + 0.02 * spread) if task.goal.maximize else (best - 0.02 * spread, best + 0.25 * spread)
        ax.set_ylim(low, high)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right" if task.goal.maximize else "upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def bttackler_session(config: Optional[Mapping[str, Any]]) -> Tuple[Callable[..., Method], Callable[[], None]]:
    """A local ``bttackler serve`` (in memory) and a factory of per-seed (and per-task) bttackler methods against it."""
    from bttackler import BTTacklerClient, LocalService

    service = LocalService(db=":memory:", command=["node", os.path.join(ROOT, "dist", "cli", "main.js")])
    client = BTTacklerClient(service=service, timeout=30.0)
    run_id = uuid.uuid4().hex[:8]

    def make(seed: int, task: str = "task") -> Method:
        return BTTacklerMethod(client, f"hpo-{run_id}-{task}-seed{seed}", config)

    def close() -> None:
        client.close()
        service.stop()

    return make, close


ALL_METHODS = [
    "none",
    "bttackler",
    "reference-bttackler",
    "optuna-median",
    "optuna-percentile25",
    "optuna-sha",
    "optuna-hyperband",
    "optuna-patient-median",
    "optuna-threshold",
    "optuna-wilcoxon",
    "nni-medianstop",
    "nni-curvefitting",
]


@dataclass
class TaskResult:
    task: Task
    sampler: str
    budget: float
    runs: Dict[str, List[RunResult]]
    summaries: List[MethodSummary]
    reasons: List[Tuple[RunResult, Mapping[int, str]]]


def task_plan(task: Task, methods: Sequence[str], args: argparse.Namespace) -> Tuple[List[str], Dict[str, Callable[[], Method]], float]:
    """The methods that run on ``task`` (Curvefitting only where it is maximized, then the oracles), the oracles
    and the budget: the time to run every recorded trial to the end on the workers, times ``--budget-frac``."""
    oracles = foresight_oracles(task.trials)
    if not args.oracle:
        oracles = {CEILING: oracles[CEILING]}
    budget = args.budget_frac * sum(sum(t.seconds) for t in task.trials) / args.workers
    names = [m for m in methods if m != "nni-curvefitting" or task.goal.maximize] + list(oracles)
    return names, oracles, budget


#: What one seed of one task gives: every method's run, and bttackler's run with its stop reasons (if it ran).
SeedResult = Tuple[Dict[str, RunResult], Optional[Tuple[RunResult, Mapping[int, str]]]]


def run_seed(
    task: Task, sampler: str, methods: Sequence[str], args: argparse.Namespace, make_bttackler: Optional[Callable[..., Method]], seed: int, log: Callable[..., None]
) -> SeedResult:
    """Every method on one seed of one task with one sampler. Each method gets its own sampler (the same seed):
    a method's stops steer a model-based one."""
    names, oracles, budget = task_plan(task, methods, args)
    factories = baseline_factories(seed, task.epochs, task.goal)
    runs: Dict[str, RunResult] = {}
    explained: Optional[Tuple[RunResult, Mapping[int, str]]] = None
    for m in names:
        if m == "none":
            method: Method = NoStopping()
        elif m == "bttackler":
            method = make_bttackler(seed, f"{task.name.replace(' ', '_')}-{sampler}")  # type: ignore[misc]
        elif m in oracles:
            method = oracles[m]()
        else:
            method = factories[m]()
        t0 = time.perf_counter()
        r = simulate(task.trials, SAMPLERS[sampler](task.trials, seed), method, args.workers, budget, seed)
        runs[m] = r
        if isinstance(method, BTTacklerMethod):
            explained = (r, dict(method.reasons))
        log(f"{task.name} ({sampler}) seed {seed} {m:26s} started {len(r.started):4d} completed {len(r.completed):4d} stopped {len(r.stopped):4d} ({time.perf_counter() - t0:.1f} s)")
    return runs, explained


def task_result(task: Task, sampler: str, methods: Sequence[str], args: argparse.Namespace, per_seed: Sequence[SeedResult]) -> TaskResult:
    """The seeds of one task and sampler, in seed order, summarized; the summaries carry their share of the task's ceiling."""
    names, _, budget = task_plan(task, methods, args)
    runs: Dict[str, List[RunResult]] = {m: [seed_runs[m] for seed_runs, _ in per_seed] for m in names}
    reasons = [explained for _, explained in per_seed if explained is not None]
    summaries = [summarize(m, runs[m], runs["none"], task.trials) for m in names if m != "none"]
    with_ceiling_share(summaries)
    return TaskResult(task, sampler, budget, runs, summaries, reasons)


class _SeedJobs:
    """Runs (task, sampler, seed) jobs in ``jobs`` forked processes; each process starts its own bttackler service
    (if bttackler is among the methods) and keeps its Curvefitting fits across the jobs it runs. The results do not
    depend on the number of processes: every run is seeded, and each bttackler run has a study of its own."""

    _tasks: Sequence[Task] = ()
    _methods: Sequence[str] = ()
    _args: Optional[argparse.Namespace] = None
    _config: Optional[Mapping[str, Any]] = None
    _log: Callable[..., None] = staticmethod(lambda *a: None)
    _make: Optional[Callable[..., Method]] = None

    @classmethod
    def _init(cls) -> None:
        if "bttackler" in cls._methods:
            make, close = bttackler_session(cls._config)
            cls._make = make
            import multiprocessing.util

            multiprocessing.util.Finalize(None, close, exitpriority=10)

    @classmethod
    def _run(cls, job: Tuple[int, str, int]) -> SeedResult:
        task, sampler, seed = job
        assert cls._args is not None
        return run_seed(cls._tasks[task], sampler, cls._methods, cls._args, cls._make, seed, cls._log)

    @classmethod
    def run(
        cls, tasks: Sequence[Task], samplers: Sequence[str], methods: Sequence[str], args: argparse.Namespace, config: Optional[Mapping[str, Any]], log: Callable[..., None]
    ) -> List[TaskResult]:
        import multiprocessing

        cls._tasks, cls._methods, cls._args, cls._config, cls._log = tasks, methods, args, config, log
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        jobs = [(t, sampler, seed) for sampler in samplers for t in range(len(tasks)) for seed in seeds]
        with multiprocessing.get_context("fork").Pool(args.jobs, initializer=cls._init) as pool:
            done = pool.map(cls._run, jobs, chunksize=1)
        by_job = dict(zip(jobs, done))
        return [
            task_result(tasks[t], sampler, methods, args, [by_job[(t, sampler, seed)] for seed in seeds]) for sampler in samplers for t in range(len(tasks))
        ]


def load_tasks(specs: Sequence[str], parity: Optional[str], loss_only_view: bool) -> List[Task]:
    """One task per --traces (files joined by "+" are shards of one task), and with ``loss_only_view``
    the loss-only view of every maximized task."""
    tasks: List[Task] = []
    for spec in specs:
        paths = spec.split("+")
        first = load_task(paths[0])
        task = first if len(paths) == 1 else Task(first.name, first.goal, load_traces(paths))
        if parity is not None:
            task = Task(task.name, task.goal, [t for t in task.trials if t.index % 2 == (0 if parity == "even" else 1)])
        tasks.append(task)
    if loss_only_view:
        tasks += [loss_only(t) for t in tasks if t.goal.maximize]
    return tasks


def loss_only(task: Task) -> Task:
    return loss_only_view(task)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", action="append", default=[], help="a task's trace file (.jsonl or .jsonl.gz; shards joined by +); repeatable, one task each")
    ap.add_argument("--traces-dir", default=None, help="every *.jsonl.gz in this folder is a task (after the --traces ones)")
    ap.add_argument("--loss-only-view", action="store_true", help="also run every maximized task as a loss-only study (no *_acc metrics, val_loss minimized)")
    ap.add_argument("--samplers", default="random", help="comma-separated: random (random search), tpe (Optuna's TPE over the recorded pool); default random")
    ap.add_argument("--seeds", type=int, default=20, help="seeds of the samplers (default 20)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=1, help="seeds simulated side by side in this many processes (default 1; the results are the same)")
    ap.add_argument("--budget-frac", type=float, default=0.3, help="budget as a fraction of the time to run every recorded trial to the end on the workers")
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--bttackler-config", default=None, help="study config (JSON) for bttackler; default: the service's defaults")
    ap.add_argument("--parity", choices=["even", "odd"], default=None, help="only the trials with an even (or odd) index: calibrate's split")
    ap.add_argument("--oracle", action="store_true", help="also run the other foresight oracles (the ceiling oracle always runs)")
    ap.add_argument(
        "--fresh-curve-fits",
        action="store_true",
        help="nni-curvefitting: fit the curves anew at every call, as NNI does, instead of once per distinct history (slow)",
    )
    ap.add_argument(
        "--curve-fits",
        metavar="FILE",
        default=None,
        help="nni-curvefitting: start from the curve fits saved in FILE (if it exists) and save them there with the new ones, after each task's fits and at the end",
    )
    ap.add_argument(
        "--explain",
        action="store_true",
        help="after each task's table, list the top-quartile trials bttackler stopped, with the step, the number of seeds and its reason",
    )
    ap.add_argument("--out-dir", default=None, help="where to write results.md, best-so-far-<task>.png and runs.json")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    for name, value, ok in [
        ("--seeds", args.seeds, args.seeds >= 1),
        ("--workers", args.workers, args.workers >= 1),
        ("--jobs", args.jobs, args.jobs >= 1),
        ("--budget-frac", args.budget_frac, 0 < args.budget_frac <= 1),
    ]:
        if not ok:
            ap.error(f"{name} out of range: {value}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; known: {', '.join(ALL_METHODS)}")
    if "none" not in methods:
        methods.insert(0, "none")
    config = json.loads(args.bttackler_config) if args.bttackler_config else None
    samplers = [x.strip() for x in args.samplers.split(",") if x.strip()]
    if not samplers or any(x not in SAMPLERS for x in samplers):
        ap.error(f"--samplers: choose among {', '.join(SAMPLERS)}, got {args.samplers!r}")

    specs = list(args.traces)
    if args.traces_dir is not None:
        specs += sorted(os.path.join(args.traces_dir, f) for f in os.listdir(args.traces_dir) if f.endswith(".jsonl.gz"))
    if not specs:
        ap.error("no traces: give --traces FILE or --traces-dir DIR")
    tasks = load_tasks(specs, args.parity, args.loss_only_view)
    for task in tasks:
        if len(task.trials) < 2 * args.workers:
            print(f"too few trials in {task.name}: {len(task.trials)}", file=sys.stderr)
            return 2
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    keep_fits = "nni-curvefitting" in methods and not args.fresh_curve_fits
    if keep_fits:
        cache_curve_fits()
        if args.curve_fits:
            log(f"nni-curvefitting: {load_curve_fits(args.curve_fits)} curve fits read from {args.curve_fits}")
        if args.jobs > 1:
            for task in tasks:
                if task.goal.maximize:
                    t0 = time.perf_counter()
                    n = prefit_curves(task.trials, task.epochs, CURVEFITTING_START_STEP, args.jobs)
                    log(f"{task.name}: {n} Curvefitting histories fitted in {time.perf_counter() - t0:.0f} s")
                    if args.curve_fits and n:
                        save_curve_fits(args.curve_fits)
    started = time.perf_counter()
    for task in tasks:
        _, _, budget = task_plan(task, methods, args)
        log(f"{task.name}: {len(task.trials)} trials x {task.epochs} epochs, {task.goal.metric} ({task.goal.direction}); {args.workers} workers; budget {budget:.0f} s; seeds {args.seeds}")
    if args.jobs > 1:
        results = _SeedJobs.run(tasks, samplers, methods, args, config, log)
    else:
        make_bttackler, close_bttackler = bttackler_session(config) if "bttackler" in methods else (None, lambda: None)
        try:
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            results = [
                task_result(task, sampler, methods, args, [run_seed(task, sampler, methods, args, make_bttackler, seed, log) for seed in seeds])
                for sampler in samplers
                for task in tasks
            ]
        finally:
            close_bttackler()
    text = ""
    for r in results:
        none_completed = fmt_ci([len(x.completed) for x in r.runs["none"]])
        text += (
            f"## {r.task.name}, {SAMPLER_NAMES[r.sampler]}\n\n{len(r.task.trials)} recorded trials x {r.task.epochs} epochs; objective {r.task.goal.metric} "
            f"({r.task.goal.direction}), hopeless at {r.task.goal.hopeless_at:g}; {SAMPLER_NAMES[r.sampler]}, {args.workers} workers, budget {r.budget:.0f} s "
            f"({args.budget_frac:g} of running every trial to the end); seeds {args.first_seed}-{args.first_seed + args.seeds - 1}; "
            f"none completed {none_completed} trials per seed. Mean ± 95 % interval over seeds.\n\n" + table(r.summaries) + "\n"
        )
        if args.explain and r.reasons:
            text += "bttackler: " + explain_top_quartile_stops(r.task.trials, r.reasons) + "\n\n"
    for sampler in samplers:
        group = [r for r in results if r.sampler == sampler]
        if len(group) > 1:
            text += (
                f"## pooled, {SAMPLER_NAMES[sampler]}: {len(group)} tasks ({', '.join(r.task.name for r in group)})\n\n"
                f"Every task's seeds together ({args.seeds} x {len(group)} runs per method; a method run on fewer tasks, over its own runs); "
                f"share of the ceiling: the mean of the tasks' shares.\n\n"
                + table(pool([r.summaries for r in group]))
                + "\n"
            )
    print(text)
    log(f"simulated in {time.perf_counter() - started:.0f} s")
    if CachedCurveModel.calls:
        log(f"nni-curvefitting: {CachedCurveModel.calls} predictions from {len(CachedCurveModel.fits)} curve fits")
    if keep_fits and args.curve_fits and args.jobs == 1:
        save_curve_fits(args.curve_fits)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, "results.md"), "w") as f:
            f.write(text)
        with open(os.path.join(args.out_dir, "runs.json"), "w") as f:
            json.dump({f"{r.task.name} ({r.sampler})": {m: [x.__dict__ for x in rs] for m, rs in r.runs.items()} for r in results}, f)
        for r in results:
            slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{r.task.name}-{r.sampler}").strip("-")
            plot(r.runs, r.budget, os.path.join(args.out_dir, f"best-so-far-{slug}.png"), r.task, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

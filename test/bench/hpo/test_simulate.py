"""Correctness of the HPO simulator (not its speed): the event loop, the metrics, the methods' wiring
to the real Optuna, NNI and bttackler, and a smoke run on the committed traces."""
from __future__ import annotations

import json
import math
import os
import sys
from typing import List, Optional, Sequence

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import simulate as sim  # noqa: E402
from methods import (  # noqa: E402
    CachedCurveModel,
    Method,
    NNIAssessorMethod,
    NoStopping,
    OptunaPrunerMethod,
    cache_curve_fits,
    foresight_oracles,
    load_curve_fits,
    prefit_curves,
    save_curve_fits,
)
from traces import Trial, parse_traces  # noqa: E402

TRACES = os.path.join(HERE, "..", "traces", "mnist-mlp.jsonl.gz")


def trial(index: int, accs: Sequence[float], seconds: float = 1.0, status: str = "ok", non_finite_from: Optional[int] = None) -> Trial:
    payloads = []
    for step, acc in enumerate(accs):
        bad = non_finite_from is not None and step >= non_finite_from
        payloads.append(
            {
                "step": step,
                "max_steps": len(accs),
                "metrics": {"train_loss": None if bad else 2.3 * (1 - acc) + 0.01, "val_acc": acc},
                "non_finite": bad,
            }
        )
    return Trial(index, {}, payloads, list(accs), list(accs), [seconds] * len(accs), status)


class StopAt(Method):
    """Stops the given trials after the given epoch; records every question it is asked."""

    name = "stop-at"

    def __init__(self, plan: dict) -> None:
        self.plan = plan
        self.asked: List[tuple] = []
        self.ended: List[tuple] = []

    def stop(self, t: Trial, epoch: int) -> bool:
        self.asked.append((t.index, epoch))
        return self.plan.get(t.index) == epoch

    def end(self, t: Trial, completed: bool) -> None:
        self.ended.append((t.index, completed))


def test_no_stopping_runs_trials_in_order_on_every_worker_until_the_budget():
    trials = [trial(i, [0.5, 0.6, 0.7]) for i in range(6)]
    r = sim.simulate(trials, [0, 1, 2, 3, 4, 5], NoStopping(), workers=2, budget=6.0, seed=1)
    assert r.started == [0, 1, 2, 3]  # at t=6 the budget is spent: trials 4 and 5 never start
    assert [(t, i) for t, i, _ in r.completed] == [(3.0, 0), (3.0, 1), (6.0, 2), (6.0, 3)]
    assert r.stopped == []


def test_a_stopped_trial_frees_its_worker_at_once_and_the_last_epoch_is_never_judged():
    trials = [trial(i, [0.5, 0.6, 0.7]) for i in range(5)]
    m = StopAt({0: 0})
    r = sim.simulate(trials, [0, 1, 2, 3, 4], m, workers=2, budget=5.0, seed=1)
    assert r.stopped == [(1.0, 0, 0)]
    # worker 0 takes trial 2 at t=1 and completes it at t=4; worker 1 completes trial 1 at t=3, then starts trial 3
    assert [(t, i) for t, i, _ in r.completed] == [(3.0, 1), (4.0, 2)]
    assert r.started == [0, 1, 2, 3, 4]
    assert all(epoch < 2 for _, epoch in m.asked)
    assert (0, False) in m.ended and (1, True) in m.ended


def test_a_hopeless_trial_the_budget_cut_off_before_mid_training_counts_neither_way():
    # four hopeless trials of 8 epochs on 2 workers: 0 and 1 end at 8 s; then 2 (1 s an epoch) and 3 (3 s an epoch)
    trials = [trial(i, [0.1] * 8, seconds=3.0 if i == 3 else 1.0) for i in range(4)]
    base = sim.simulate(trials, [0, 1, 2, 3], NoStopping(), workers=2, budget=13.0, seed=1)
    assert base.unfinished == [(2, 5), (3, 1)]  # 2 is past its mid-training, 3 had one epoch when the budget ran out
    s = sim.summarize("none", [base], [base], trials)
    assert (s.hopeless_caught, s.hopeless_started) == (0, 3)  # 0, 1 and 2 missed; 3 never had the chance
    # trial 0 stopped at 2 s: 2 runs on worker 0 from 2 s to 10 s, 3 on worker 1 from 8 s (one epoch by 13 s)
    run = sim.simulate(trials, [0, 1, 2, 3], StopAt({0: 1}), workers=2, budget=13.0, seed=1)
    assert run.unfinished == [(3, 1)]
    s = sim.summarize("stop-at", [run], [base], trials)
    assert (s.hopeless_caught, s.hopeless_started) == (1, 3)


def run_result(completed, stopped=(), started=None, method="m"):
    r = sim.RunResult(method=method, seed=1, budget=100.0)
    r.completed = list(completed)
    r.stopped = list(stopped)
    r.started = list(started) if started is not None else [i for _, i, _ in completed] + [i for _, i, _ in stopped]
    return r


def test_median_tsba_counts_a_seed_that_never_reached_the_best_as_the_worst():
    assert sim.median_tsba([10.0, None, 30.0]) == 10.0
    assert sim.median_tsba([50.0, None, None]) == -math.inf
    assert sim.median_tsba([20.0, 40.0]) == 30.0
    assert math.isnan(sim.median_tsba([]))


def test_tsba_is_the_share_of_the_baselines_time_saved_to_reach_its_best():
    base = run_result([(10.0, 1, 0.80), (40.0, 2, 0.90), (60.0, 3, 0.85)])
    faster = run_result([(5.0, 4, 0.70), (10.0, 2, 0.95)])
    assert sim.tsba(faster, base) == pytest.approx(75.0)  # reached 0.90 at 10 s, the baseline at 40 s
    slower = run_result([(80.0, 2, 0.90)])
    assert sim.tsba(slower, base) == pytest.approx(-100.0)
    assert sim.tsba(run_result([(1.0, 5, 0.89)]), base) is None


def test_top10_hit_ratio_is_one_half_for_identical_runs_and_counts_shares_at_ties():
    same = [(float(i), i, 0.5 + i / 100) for i in range(15)]
    assert sim.top_k_hit_ratio(run_result(same), run_result(same)) == pytest.approx(0.5)
    better = [(float(i), 100 + i, 0.99) for i in range(10)]
    assert sim.top_k_hit_ratio(run_result(better), run_result(same)) == pytest.approx(1.0)
    assert sim.top_k_hit_ratio(run_result(same), run_result(better)) == pytest.approx(0.0)
    # 9 baseline trials above 0.9; the 10th place is shared by one trial of each side at 0.9
    base = [(float(i), i, 0.95) for i in range(9)] + [(9.0, 9, 0.90)]
    mine = [(1.0, 50, 0.90), (2.0, 51, 0.10)]
    assert sim.top_k_hit_ratio(run_result(mine), run_result(base)) == pytest.approx(0.05)


def test_false_kills_are_stopped_trials_that_would_have_been_among_the_best_started():
    trials = {i: trial(i, [0.1 * (i % 10), 0.01 * i]) for i in range(30)}
    base = run_result([(1.0, i, trials[i].final_score) for i in range(20)])
    # trial 29 ends best of all; trial 3 among the worst
    method = run_result([], stopped=[(1.0, 29, 0), (1.0, 3, 0)], started=[29, 3])
    assert sim.false_kills(method, base, trials) == [29]


def test_foresight_oracles_stop_only_the_trials_below_their_cut_from_their_epoch_on():
    trials = [trial(i, [0.1 * (i + 1)] * 6) for i in range(8)]  # finals 0.1 ... 0.8
    oracles = foresight_oracles(trials)
    assert list(oracles) == ["oracle-hopeless-at-0", "oracle-bottom-half-after-3", "oracle-below-q75-at-1", "oracle-below-q75-at-once"]
    hopeless, half = oracles["oracle-hopeless-at-0"](), oracles["oracle-bottom-half-after-3"]()
    assert [hopeless.stop(t, 0) for t in trials[:3]] == [True, True, False]  # 0.1, 0.2 are hopeless; 0.3 is not
    assert [half.stop(t, 3) for t in trials] == [True] * 4 + [False] * 4  # the median (0.5) and above are kept
    result = sim.simulate(trials, list(range(8)), oracles["oracle-below-q75-at-once"](), 2, 1e9, 1)
    assert sorted(i for _, i, _ in result.stopped) == [0, 1, 2, 3, 4]  # below the q75 cut, 0.6 (kept), of 0.1 ... 0.8


def test_optuna_median_pruner_is_driven_through_ask_and_tell():
    good = [trial(i, [0.5 + 0.02 * e for e in range(6)]) for i in range(6)]
    bad = trial(99, [0.1] * 6)
    m = OptunaPrunerMethod("optuna-median", lambda: __import__("optuna").pruners.MedianPruner(n_startup_trials=5), seed=1)
    r = sim.simulate(good + [bad], list(range(7)), m, workers=1, budget=1e9, seed=1)
    assert [i for _, i, _ in r.stopped] == [99]
    assert len(r.completed) == 6


def test_nni_medianstop_assessor_is_called_as_the_dispatcher_calls_it():
    from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor

    good = [trial(i, [0.5 + 0.02 * e for e in range(6)]) for i in range(3)]
    bad = trial(99, [0.1] * 6)
    m = NNIAssessorMethod("nni-medianstop", MedianstopAssessor(optimize_mode="maximize"))
    r = sim.simulate(good + [bad], list(range(4)), m, workers=1, budget=1e9, seed=1)
    assert [(i, e) for _, i, e in r.stopped] == [(99, 0)]


def test_nni_curve_fits_are_made_once_per_history_and_the_assessor_still_decides_each_call():
    from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor
    from nni.algorithms.hpo.curvefitting_assessor import curvefitting_assessor as module
    from nni.assessor import AssessResult

    cache_curve_fits()
    cache_curve_fits()
    assert module.CurveModel is CachedCurveModel and CachedCurveModel.model is not CachedCurveModel
    flat = [0.3 + 0.001 * e for e in range(6)]

    def assessor(best: float) -> CurvefittingAssessor:
        a = CurvefittingAssessor(epoch_num=20, start_step=6, threshold=0.95, gap=1)
        a.assess_trial("done", [best] * 6)
        a.trial_end("done", True)
        return a

    fits, calls = len(CachedCurveModel.fits), CachedCurveModel.calls
    high = assessor(0.9)
    assert high.assess_trial("a", flat) == AssessResult.Bad  # a flat curve near 0.3 is predicted near 0.3
    assert high.assess_trial("b", flat) == AssessResult.Bad
    # the same fit against a lower bar: the assessor's own comparison decides
    assert assessor(0.3).assess_trial("c", flat) == AssessResult.Good
    assert (len(CachedCurveModel.fits), CachedCurveModel.calls) == (fits + 1, calls + 3)


def test_curve_fits_made_ahead_in_processes_are_the_ones_the_assessor_asks_for(tmp_path):
    cache_curve_fits()
    trials = [trial(i, [0.1 * (i + 1) + 0.01 * e for e in range(8)]) for i in range(3)]
    assert prefit_curves(trials, 8, 6, jobs=2) == 6  # each trial's first 6 and first 7 values
    assert prefit_curves(trials, 8, 6, jobs=2) == 0  # already there
    fits, calls = len(CachedCurveModel.fits), CachedCurveModel.calls
    from nni.algorithms.hpo.curvefitting_assessor import CurvefittingAssessor

    method = NNIAssessorMethod("nni-curvefitting", CurvefittingAssessor(epoch_num=8, start_step=6, threshold=0.95, gap=1))
    r = sim.simulate(trials, [2, 0, 1], method, workers=1, budget=1e9, seed=1)
    # trials 0 and 1, far below trial 2, are judged at their sixth value and stopped, with the fits made ahead
    assert sorted((i, e) for _, i, e in r.stopped) == [(0, 5), (1, 5)]
    assert CachedCurveModel.calls - calls == 2 and len(CachedCurveModel.fits) == fits
    # saved and read back, the fits spare a later run its fitting
    path = str(tmp_path / "fits.pickle")
    save_curve_fits(path)
    made = dict(CachedCurveModel.fits)
    CachedCurveModel.fits.clear()
    assert load_curve_fits(path) == fits and CachedCurveModel.fits == made
    assert prefit_curves(trials, 8, 6, jobs=2) == 0
    assert load_curve_fits(str(tmp_path / "absent.pickle")) == 0


def test_bttackler_stops_a_non_finite_trial_through_the_real_service():
    make, close = sim.bttackler_session(None)
    try:
        trials = [trial(0, [0.5, 0.6, 0.7, 0.8]), trial(1, [0.3, 0.1, 0.1, 0.1], non_finite_from=1)]
        r = sim.simulate(trials, [0, 1], make(1), workers=2, budget=1e9, seed=1)
    finally:
        close()
    assert [(i, e) for _, i, e in r.stopped] == [(1, 1)]
    assert [i for _, i, _ in r.completed] == [0]


def test_explain_lists_the_top_quartile_trials_bttackler_stopped_with_step_and_reason():
    make, close = sim.bttackler_session(None)
    try:
        trials = [trial(0, [0.5, 0.6, 0.7, 0.8]), trial(1, [0.3, 0.9, 0.9, 0.9], non_finite_from=1), trial(2, [0.1] * 4)]
        runs = []
        for seed in (1, 2):
            method = make(seed)
            runs.append((sim.simulate(trials, [0, 1, 2], method, workers=3, budget=1e9, seed=seed), method.reasons))
    finally:
        close()
    text = sim.explain_top_quartile_stops(trials, runs)
    assert "stopped in 2 runs: 1 (trial, step) pairs" in text
    assert "- trial 1 (final 0.900) at step 1, in 2 runs: NF " in text
    assert "trial 0" not in text and "trial 2" not in text


def test_parse_traces_drops_a_cut_short_last_line_and_refuses_other_bad_lines():
    line = '{"format":"bttackler.trace.v1","trial":0,"config":{},"status":"ok","epochs":[{"payload":{"step":0,"metrics":{"val_acc":0.5}},"test_acc":0.5,"seconds":1}]}'
    assert len(parse_traces(line + "\n" + line[:30])) == 1
    with pytest.raises(ValueError, match="traces:1"):
        parse_traces("{not json\n" + line + "\n")
    nan = parse_traces(line.replace('"val_acc":0.5', '"val_acc":null') + "\n")[0]
    assert math.isnan(nan.objective[0]) and math.isnan(nan.final) and nan.final_score == -math.inf and nan.hopeless


@pytest.mark.skipif(not os.path.exists(TRACES), reason="no committed traces yet")
def test_smoke_every_method_on_the_committed_traces(tmp_path, capsys):
    code = sim.main(["--traces", TRACES, "--seeds", "2", "--budget-frac", "0.05", "--out-dir", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    for m in sim.ALL_METHODS[1:]:
        assert f"| {m} |" in out
    assert (tmp_path / "best-so-far-mnist-mlp-random.png").stat().st_size > 10_000


@pytest.mark.skipif(not os.path.exists(TRACES), reason="no committed traces yet")
def test_jobs_change_the_time_taken_not_the_results(tmp_path):
    """Seeds run side by side in forked processes, each with its own service, give the same runs as one process."""

    def runs(jobs: int) -> dict:
        out = tmp_path / f"jobs{jobs}"
        args = ["--traces", TRACES, "--seeds", "3", "--budget-frac", "0.05", "--samplers", "random,tpe", "--quiet"]
        args += ["--methods", "none,bttackler,optuna-median", "--jobs", str(jobs), "--out-dir", str(out)]
        assert sim.main(args) == 0
        with open(out / "runs.json") as f:
            data = json.load(f)
        for by_method in data.values():
            for rs in by_method.values():
                for r in rs:
                    r.pop("decide_seconds")
        return data

    one, three = runs(1), runs(3)
    assert set(one) == {"mnist-mlp (random)", "mnist-mlp (tpe)"}
    assert [r["seed"] for r in three["mnist-mlp (tpe)"]["bttackler"]] == [1, 2, 3]
    assert any(r["stopped"] for r in one["mnist-mlp (random)"]["bttackler"])
    assert three == one

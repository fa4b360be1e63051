"""Real NNI 3.0 experiments (`nnictl create --foreground`, the harness of test/e2e/nni) while the service fails.

The assessor is the real BTTacklerAssessor, timed by nni/timed_assessor.py (each hook's duration goes
to the dispatcher log), with classArgs url pointing at a service this test runs.

1. kill -9 of the service while trials run, restart on the same port and database a few seconds later:
   every trial SUCCEEDED with all its results, the experiment is DONE, the dispatcher log shows the
   fail-open warnings and the reconnection, no assess_trial took longer than the timeout (+ MARGIN),
   and the restarted service holds every result acknowledged before the kill plus those missed
   meanwhile (sent when it was back).
2. A slow service (a proxy delaying every chunk by more than the timeout) for the whole experiment: the
   dispatcher starts (the assessor is built without touching the network and connects lazily), every
   assess_trial returns Good within the timeout (+ MARGIN), the trial that explodes is not stopped
   (the service cannot answer in time), every trial SUCCEEDED and the experiment is DONE.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from bttackler import BTTacklerClient
from faults_helpers import FIGURES, MARGIN, DelayProxy, ServiceProcess
from helpers import wait_until  # adapters/python/tests/helpers.py (on sys.path: conftest.py)
from nni_run import REPO, Experiment, Snapshot, dispatcher_log, nni_env, render, started_experiments

HERE = Path(__file__).resolve().parent / "nni"
TRIAL_DIR = REPO / "test" / "e2e" / "nni" / "python_trial"
ASSESS = re.compile(r"FAULTS assess_trial trial=(?P<trial>\S+) results=(?P<results>\d+) took=(?P<took>[\d.]+) result=(?P<result>\w+) start=(?P<start>[\d.]+)")
TRIAL_END = re.compile(r"FAULTS trial_end trial=(?P<trial>\S+) took=(?P<took>[\d.]+)")
INIT = re.compile(r"FAULTS init took=(?P<took>[\d.]+) start=(?P<start>[\d.]+) end=(?P<end>[\d.]+)")


@pytest.fixture
def experiments() -> Iterator[List[Experiment]]:
    yield from started_experiments()


def experiment(tmp_path: Path, name: str, space: str, trials: int, url: str, study: str, timeout: float) -> Experiment:
    workdir = tmp_path / "experiments"
    config = render(
        HERE / "config.yml", tmp_path / f"{name}.yml",
        NAME=name, SEARCH_SPACE=HERE / space, PYTHON=sys.executable, TRIAL_DIR=TRIAL_DIR, TRIALS=trials,
        WORKDIR=workdir, HERE=HERE, URL=url, STUDY=study, TIMEOUT=timeout,
    )
    return Experiment(config, nni_env(tmp_path), workdir)


def ran_to_the_end(exp: Experiment, snap: Snapshot, trials: int, epochs: int) -> str:
    """Checks what NNI must show whatever the service did: the experiment is DONE, every trial SUCCEEDED with all its
    results, bttackler stopped none, the assessor raised nothing. Returns the dispatcher log."""
    report = snap.describe()
    log = dispatcher_log(exp.directory)
    assert snap.status["status"] == "DONE", report
    assert len(snap.trials) == trials and all(t["status"] == "SUCCEEDED" for t in snap.trials), report
    assert all(len(snap.periodical(t["trialJobId"])) == epochs for t in snap.trials), report
    assert "bttackler stops trial" not in log and "Traceback" not in log and "Assessor error" not in log, log
    return log


def hook_times(log: str) -> Dict[str, List[float]]:
    return {
        "assess_trial": [float(m["took"]) for m in ASSESS.finditer(log)],
        "trial_end": [float(m["took"]) for m in TRIAL_END.finditer(log)],
    }


def test_kill_9_while_nni_trials_run_then_restart(tmp_path: Path, experiments: List[Experiment]) -> None:
    timeout, epochs, outage = 2.0, 20, 3.0
    study = "faults-nni-kill"
    first = ServiceProcess(tmp_path / "service.db").start()
    services = [first]
    try:
        exp = experiment(tmp_path, "kill", "kill_space.json", 4, first.url, study, timeout).start()
        experiments.append(exp)
        exp.wait_for_api()
        watcher = BTTacklerClient(first.url, timeout=5)

        def reported() -> Dict[str, int]:
            trials = (watcher.study_trials(study) or {}).get("trials", [])
            return {t["trial"]: t["last_step"] for t in trials}

        # kill -9 once the service has acknowledged a few results, with trials still running
        assert wait_until(lambda: sum(s + 1 for s in reported().values()) >= 3, 180, every=0.2), exp.output()
        before_kill = reported()
        watcher.close()
        killed_at = time.time()
        first.kill9()
        time.sleep(outage)
        second = ServiceProcess(first.db, port=first.port)
        services.append(second)
        second.start()
        restarted_at = time.time()
        snap = exp.wait_done(limit=300)
        client = BTTacklerClient(second.url, timeout=10)
        # NNI drops the assessor's unfinished work when the experiment stops: let the last trial ends through
        wait_until(lambda: len([t for t in (client.study_trials(study) or {}).get("trials", []) if t.get("ended")]) >= 4, 20, every=0.2)
        assert exp.finish() == 0
        held = {t["trial"]: t for t in client.study_trials(study)["trials"]}
        histories = {tid: [v["step"] for v in client.history(study, tid)["verdicts"]] for tid in held}
        client.close()
    finally:
        for svc in services:
            svc.stop()

    # NNI: every trial ran to its end; none was killed by the assessor; the experiment is DONE
    log = ran_to_the_end(exp, snap, 4, epochs)
    # the dispatcher log: fail-open warnings while the service was down, then the reconnection
    assert re.search(rf"WARNING \(bttackler/.*service at {re.escape(first.url)}: .*fail open", log), log
    assert "answers again" in log, log
    # no assessor hook held the dispatcher longer than the timeout
    times = hook_times(log)
    assert times["assess_trial"] and max(times["assess_trial"]) <= timeout + MARGIN, times
    assert not times["trial_end"] or max(times["trial_end"]) <= timeout + MARGIN, times
    during = [float(m["took"]) for m in ASSESS.finditer(log) if killed_at < float(m["start"]) < restarted_at]
    assert during, "no assess_trial while the service was down"
    assert all(m["result"] == "Good" for m in ASSESS.finditer(log)), log

    # the restarted service holds every result acknowledged before the kill, and the ones missed during the outage
    for trial, last_step in before_kill.items():
        assert trial in held and set(range(last_step + 1)) <= set(histories[trial]), (trial, last_step, histories)
    for trial, steps in histories.items():
        assert steps == list(range(len(steps))), (trial, steps)  # in order, no hole: missed results were re-sent
    complete = [t for t in held if histories[t] == list(range(epochs)) and held[t].get("ended") == "complete"]
    assert complete, (held, histories)
    assert all("stopped_at" not in t for t in held.values()), held

    FIGURES["nni kill -9 + restart"] = {
        "timeout": timeout, "assess_trial_calls": len(times["assess_trial"]), "max_assess_trial": max(times["assess_trial"]),
        "assess_trial_while_down": len(during), "max_assess_trial_while_down": max(during),
        "max_trial_end": max(times["trial_end"], default=None), "results_acknowledged_before_kill": sum(s + 1 for s in before_kill.values()),
        "results_held_after_restart": sum(len(s) for s in histories.values()), "trials_complete_in_service": len(complete),
        "experiment_seconds": round(snap.experiment.get("endTime", 0) / 1000 - snap.experiment.get("startTime", 0) / 1000, 1)
        if snap.experiment.get("endTime") else None,
    }


def test_a_slow_service_never_blocks_the_nni_dispatcher(tmp_path: Path, experiments: List[Experiment]) -> None:
    timeout, epochs = 1.0, 8
    delay = timeout + 2.0
    study = "faults-nni-slow"
    service = ServiceProcess(tmp_path / "service.db").start()
    proxy = DelayProxy(service.port, delay=delay)
    try:
        exp = experiment(tmp_path, "slow", "slow_space.json", 2, proxy.url, study, timeout).start()
        experiments.append(exp)
        exp.wait_for_api()
        snap = exp.wait_done(limit=300)
        assert exp.finish() == 0
    finally:
        proxy.close()
        service.stop()

    # the dispatcher started and the experiment ran normally: DONE, both trials SUCCEEDED with every result,
    # the exploding one (lr 10, NaN from its first epoch) too: the service could never answer in time
    log = ran_to_the_end(exp, snap, 2, epochs)
    assert len(snap.find(lr=10)) == 1, snap.describe()

    # construction touched nothing: fast, and the proxy saw its first connection only after it
    [init] = INIT.finditer(log)
    assert float(init["took"]) < 0.5, init[0]
    assert proxy.accepted, "the assessor never tried to reach the service"
    assert min(proxy.accepted) > float(init["end"]), (proxy.accepted[:3], init[0])
    # every assess_trial returned Good within the timeout (+ MARGIN); the timeouts really fired
    times = hook_times(log)
    results = [m["result"] for m in ASSESS.finditer(log)]
    assert len(times["assess_trial"]) >= epochs and set(results) == {"Good"}, log
    assert max(times["assess_trial"]) <= timeout + MARGIN, times
    assert not times["trial_end"] or max(times["trial_end"]) <= timeout + MARGIN, times
    fired = [t for t in times["assess_trial"] if t >= 0.9 * timeout]
    assert fired, times
    assert f"no answer within {timeout:g} s" in log, log

    FIGURES["nni slow service"] = {
        "timeout": timeout, "proxy_delay": delay, "init": float(init["took"]),
        "first_connection_after_init": round(min(proxy.accepted) - float(init["end"]), 2),
        "assess_trial_calls": len(times["assess_trial"]), "max_assess_trial": max(times["assess_trial"]),
        "timeouts_fired": len(fired), "max_trial_end": max(times["trial_end"], default=None),
    }

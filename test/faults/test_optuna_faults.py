"""Real Optuna studies (BTTacklerPruner with the url of a service this test runs) while the service fails.

1. The service gets `kill -9` in the middle of the study, stays down for a few seconds and is restarted
   on the same port and database: every should_prune answers within the timeout (+ MARGIN), answers
   False while the service is down (even for a trial reporting NaN, which the service would prune), no
   trial fails or is pruned on the outage's account, the study completes; the pruner's client
   reconnects by itself and later reports get real verdicts; the restarted service holds every report
   acknowledged before the kill.
2. The service is slowed down (a TCP proxy delays every chunk by more than the timeout) in the middle of
   the study, then fast again: the timeouts fire, every should_prune of both worker threads answers
   within the timeout (+ MARGIN) with False, and verdicts come back once the service is fast.
3. A sluggish service (every chunk 0.25 s late, each call within the timeout) with a config (the study is
   opened before the first report): real verdicts, the NaN trial is pruned, and no should_prune takes
   longer than the timeout (+ MARGIN): study.open and the report share one budget.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import optuna
import pytest
from optuna.trial import TrialState

from bttackler import BTTacklerClient
from bttackler.optuna import STOP_ATTR, BTTacklerPruner, service_study
from faults_helpers import FIGURES, MARGIN, DelayProxy, ServiceProcess
from helpers import wait_until  # adapters/python/tests/helpers.py (on sys.path: conftest.py)

optuna.logging.set_verbosity(optuna.logging.WARNING)

TIMEOUT = 1.0  # the pruner's timeout (seconds)
STEPS = 12
STEP_PAUSE = 0.1


class Call:
    __slots__ = ("trial", "kind", "step", "start", "end", "answer")

    def __init__(self, trial: int, kind: str, step: int, start: float, end: float, answer: bool) -> None:
        self.trial, self.kind, self.step, self.start, self.end, self.answer = trial, kind, step, start, end, answer

    @property
    def took(self) -> float:
        return self.end - self.start


class StudyRun:
    """A real Optuna study (n_jobs=2 threads) whose trials report a loss per step and ask should_prune.

    A trial is "healthy" (a decreasing loss) unless it takes a token from ``kinds``: "nan-..." trials report
    NaN at every step, which the service prunes at once (NF) when it can answer. Every should_prune is
    timed; every trial.reportAndAssess of the pruner's client is recorded with its outcome (acknowledged
    or not) — the client's own method, wrapped to take notes, nothing replaced.
    """

    def __init__(self, pruner: BTTacklerPruner) -> None:
        self.pruner = pruner
        self.study = optuna.create_study(direction="minimize", pruner=pruner)
        self.key = service_study(self.study)
        self.kinds: "queue.Queue[str]" = queue.Queue()
        self.calls: List[Call] = []
        self.acks: List[Tuple[str, int, float]] = []  # (trial, step, when) of every acknowledged report
        self.done = threading.Event()
        self.errors: List[BaseException] = []
        self._lock = threading.Lock()
        client = pruner.client
        send = client.report_and_assess

        def recording(study: str, trial: str, payload: Any, **kwargs: Any) -> Any:
            verdict = send(study, trial, payload, **kwargs)
            if verdict is not None:
                with self._lock:
                    self.acks.append((trial, int(payload["step"]), time.monotonic()))
            return verdict

        client.report_and_assess = recording  # type: ignore[method-assign]

    def objective(self, trial: optuna.Trial) -> float:
        try:
            kind = self.kinds.get_nowait()
        except queue.Empty:
            kind = "healthy"
        trial.set_user_attr("kind", kind)
        lr = trial.suggest_float("lr", 0.05, 0.2)
        loss = 1.0
        for step in range(STEPS):
            loss *= 1 - lr
            trial.report(float("nan") if kind.startswith("nan") else loss, step)
            start = time.monotonic()
            answer = trial.should_prune()
            end = time.monotonic()
            with self._lock:
                self.calls.append(Call(trial.number, kind, step, start, end, answer))
            if answer:
                raise optuna.TrialPruned()
            time.sleep(STEP_PAUSE)
        return loss

    def run(self, script: Any, limit: float = 180.0) -> None:
        """Runs the study while ``script`` runs in a controller thread; the study stops once the script has ended.
        The script's failure fails the test."""

        def control() -> None:
            try:
                script()
            except BaseException as exc:  # noqa: BLE001 - reported below
                self.errors.append(exc)
            finally:
                self.done.set()

        def stop_when_done(study: optuna.Study, _trial: Any) -> None:
            if self.done.is_set():
                study.stop()

        controller = threading.Thread(target=control, daemon=True)
        controller.start()
        self.study.optimize(self.objective, n_trials=1000, n_jobs=2, timeout=limit, callbacks=[stop_when_done])
        controller.join(5)
        assert not self.errors, self.errors

    def acked(self, after: float = -math.inf, before: float = math.inf) -> List[Tuple[str, int, float]]:
        with self._lock:
            return [a for a in self.acks if after < a[2] < before]

    def calls_of(self, kind: str) -> List[Call]:
        with self._lock:
            return [c for c in self.calls if c.kind == kind]

    def prune_nan_trial(self, kind: str, message: str) -> None:
        """Starts a NaN trial of ``kind`` and waits (up to 60 s) until a should_prune of it answers True."""
        self.kinds.put(kind)
        assert wait_until(lambda: any(c.answer for c in self.calls_of(kind)), 60), message

    def slowest_call(self, timeout: float) -> float:
        """The duration of the slowest should_prune; fails if that is longer than ``timeout`` (+ MARGIN)."""
        slowest = max(c.took for c in self.calls)
        assert slowest <= timeout + MARGIN, sorted((round(c.took, 3), c.step, c.kind) for c in self.calls)[-5:]
        return slowest

    def failed_open_between(self, after: float, before: float, nan_kind: str, phase: str) -> List[Call]:
        """The should_prune calls made between ``after`` and ``before``, while the service was ``phase``: there are at
        least 10, all answered False, and the NaN trial ``nan_kind`` (which the service would prune) is among them."""
        calls = [c for c in self.calls if c.start > after and c.end < before]
        assert len(calls) >= 10, f"only {len(calls)} should_prune calls while the service was {phase}"
        assert not any(c.answer for c in calls), [(c.trial, c.kind, c.step) for c in calls if c.answer]
        assert [c for c in calls if c.kind == nan_kind], f"the NaN trial did not report while the service was {phase}"
        return calls


def check_trials(run: StudyRun, pruned_after: float) -> Dict[str, int]:
    """The study completed: no trial failed; only NaN trials were pruned, each by a should_prune that started after `pruned_after`."""
    trials = run.study.get_trials(deepcopy=False)
    states = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    assert states["FAIL"] == 0 and states["RUNNING"] == 0 and states["WAITING"] == 0, states
    for t in trials:
        kind = t.user_attrs["kind"]
        if t.state == TrialState.PRUNED:
            assert kind.startswith("nan"), (t.number, kind, t.user_attrs)
            [stop] = [c for c in run.calls if c.trial == t.number and c.answer]
            assert stop.start > pruned_after, f"trial {t.number} ({kind}) was pruned at step {stop.step} before the service was back"
            record = t.user_attrs[STOP_ATTR]
            assert record["by"] == "bttackler" and record["symptoms"] == ["NF"], record
        else:
            assert t.state == TrialState.COMPLETE, (t.number, kind, t.state)
            if kind == "healthy":
                assert len(t.intermediate_values) == STEPS
    return {k: v for k, v in states.items() if v}


def test_kill_9_in_the_middle_of_a_study_then_restart(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bttackler")
    outage = 4.0
    first = ServiceProcess(tmp_path / "service.db").start()
    services = [first]
    pruner = BTTacklerPruner(url=first.url, timeout=TIMEOUT)
    run = StudyRun(pruner)
    marks: Dict[str, float] = {}
    before_kill: List[Tuple[str, int, float]] = []

    def script() -> None:
        assert wait_until(lambda: len(run.acked()) >= 8, 60), "the study never got verdicts from the service"
        marks["kill"] = first.kill9()
        before_kill.extend(run.acked(before=marks["kill"]))
        run.kinds.put("nan-during-outage")  # the service would prune it at its first step; down, it must not
        time.sleep(outage)
        second = first.restart()
        services.append(second)
        marks["ready"] = second.ready_at or time.monotonic()
        got = wait_until(lambda: run.acked(after=marks["ready"]), 60)
        assert got, "the pruner's client never reconnected to the restarted service"
        marks["reconnected"] = got[0][2]
        run.prune_nan_trial("nan-after-restart", "no stop verdict after the restart")  # a real verdict again: pruned at its first step

    try:
        run.run(script)
        kill, ready, reconnected = marks["kill"], marks["ready"], marks["reconnected"]

        # every should_prune answered within the timeout, outage or not
        slowest = run.slowest_call(TIMEOUT)
        # while the service was down: False, for the NaN trial too
        down = run.failed_open_between(kill, ready, "nan-during-outage", "down")
        assert not [a for a in run.acked(after=kill, before=ready)], "acknowledged while the service was down?"
        # the study completed; only NaN trials were pruned, and only after the restart
        states = check_trials(run, pruned_after=ready)
        # the client reconnected by itself, within its back-off (0.5 s doubling): at most ~2x the outage late
        down_for = ready - kill
        assert reconnected - ready <= 2 * down_for + TIMEOUT + MARGIN, (reconnected - ready, down_for)
        assert any("answers again" in r.getMessage() for r in caplog.records), "no reconnection logged"
        assert any("fail open" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        assert [c for c in run.calls_of("nan-after-restart") if c.answer][0].step == 0

        # the restarted service holds every report acknowledged before the kill (and after)
        client = BTTacklerClient(services[-1].url, timeout=10)
        held: Set[Tuple[str, int]] = set()
        for number in {int(a[0]) for a in run.acked()}:
            history = client.history(run.key, str(number))
            assert history is not None, f"trial {number} is unknown to the restarted service"
            held |= {(str(number), v["step"]) for v in history["verdicts"]}
        client.close()
        assert before_kill and {(t, s) for t, s, _ in before_kill} <= held
        assert {(t, s) for t, s, _ in run.acked()} <= held

        FIGURES["optuna kill -9 + restart"] = {
            "timeout": TIMEOUT, "should_prune_calls": len(run.calls), "max_should_prune": round(slowest, 3),
            "calls_while_down": len(down), "max_should_prune_while_down": round(max(c.took for c in down), 3),
            "service_down_for": round(down_for, 2), "reconnected_after_restart": round(reconnected - ready, 2),
            "acknowledged_before_kill": len(before_kill), "held_after_restart": len(held), "trials": states,
        }
    finally:
        pruner.close()
        for svc in services:
            svc.stop()


def test_a_slow_service_costs_each_should_prune_at_most_the_timeout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bttackler")
    slow_delay, slow_for = TIMEOUT + 1.5, 6.0
    service = ServiceProcess(tmp_path / "service.db").start()
    proxy = DelayProxy(service.port)
    pruner = BTTacklerPruner(url=proxy.url, timeout=TIMEOUT)
    run = StudyRun(pruner)
    marks: Dict[str, float] = {}

    def script() -> None:
        assert wait_until(lambda: len(run.acked()) >= 8, 60), "the study never got verdicts through the proxy"
        marks["slow"] = time.monotonic()
        proxy.delay = slow_delay
        run.kinds.put("nan-while-slow")
        time.sleep(slow_for)
        proxy.delay = 0.0
        marks["fast"] = time.monotonic()
        got = wait_until(lambda: run.acked(after=marks["fast"]), 60)
        assert got, "no verdict once the service was fast again"
        marks["recovered"] = got[0][2]
        run.prune_nan_trial("nan-after-slow", "no stop verdict after the slow phase")

    try:
        run.run(script)
        slow, fast = marks["slow"], marks["fast"]

        # no should_prune, in either worker thread, took longer than the timeout (+ MARGIN)
        slowest = run.slowest_call(TIMEOUT)
        during = run.failed_open_between(slow, fast, "nan-while-slow", "slow")
        # the timeouts really fired: some calls waited about the timeout (the service was slow, not gone)
        timed_out = [c for c in during if c.took >= 0.9 * TIMEOUT]
        assert len(timed_out) >= 2, sorted(round(c.took, 3) for c in during)
        assert any(f"no answer within {TIMEOUT:g} s" in r.getMessage() for r in caplog.records), "no timeout warning"
        # a reply that arrived later was never taken for a verdict: nothing acknowledged while slow
        assert not run.acked(after=slow + TIMEOUT + MARGIN, before=fast), run.acked(after=slow, before=fast)
        states = check_trials(run, pruned_after=fast)
        assert [c for c in run.calls_of("nan-after-slow") if c.answer][0].step == 0

        FIGURES["optuna slow service"] = {
            "timeout": TIMEOUT, "proxy_delay": slow_delay, "should_prune_calls": len(run.calls),
            "max_should_prune": round(slowest, 3), "calls_while_slow": len(during),
            "timeouts_fired": len(timed_out), "max_should_prune_while_slow": round(max(c.took for c in during), 3),
            "recovered_after": round(marks["recovered"] - fast, 2), "trials": states,
        }
    finally:
        pruner.close()
        proxy.close()
        service.stop()


def test_a_sluggish_service_still_gives_verdicts_within_the_timeout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # every chunk 0.25 s late: a call on an open connection takes ~0.5 s, a new connection ~0.5 s more, so the
    # first prune of the study (connect, study.open, reportAndAssess) needs ~1.5 s of the 2 s timeout, the others ~0.5 s
    caplog.set_level(logging.INFO, logger="bttackler")
    delay, timeout = 0.25, 2.0
    service = ServiceProcess(tmp_path / "service.db").start()
    proxy = DelayProxy(service.port, delay=delay)
    pruner = BTTacklerPruner(url=proxy.url, timeout=timeout, config={})  # a config: the study is opened first
    run = StudyRun(pruner)

    def script() -> None:
        assert wait_until(lambda: len(run.acked()) >= 4, 60), "no verdict from the sluggish service"
        run.prune_nan_trial("nan-sluggish", "the NaN trial was not pruned")

    try:
        run.run(script)
        slowest = run.slowest_call(timeout)
        answered = [c for c in run.calls if c.took >= 2 * delay]  # the ones that went to the service
        assert answered, "no call went through the proxy"
        states = check_trials(run, pruned_after=-math.inf)
        assert states.get("PRUNED") == 1, states
        FIGURES["optuna sluggish service"] = {
            "timeout": timeout, "proxy_delay": delay, "should_prune_calls": len(run.calls),
            "max_should_prune": round(slowest, 3), "acknowledged": len(run.acked()), "trials": states,
        }
    finally:
        pruner.close()
        proxy.close()
        service.stop()

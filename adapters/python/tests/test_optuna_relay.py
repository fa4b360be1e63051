"""run_node_trial: real Node.js children using the trial SDK of this checkout (dist/), real Optuna, real service."""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

optuna = pytest.importorskip("optuna")
from optuna.pruners import ThresholdPruner  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from bttackler import BTTacklerClient  # noqa: E402
from bttackler.optuna import STOP_ATTR, BTTacklerPruner, NodeTrialError, run_node_trial, service_study  # noqa: E402
from helpers import NODE, REPO_ROOT  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A trial script as a user writes it: the plan comes in as its hyperparameters.
SCRIPT = """
import { trial as bttacklerTrial } from %(index)s;
const trial = await bttacklerTrial();
const p = { losses: [1.0], ...trial.params };
console.log(JSON.stringify({ event: "start", host: trial.host, id: trial.id, params: p }));
if (p.ignore_signals) for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => console.log(`ignoring ${s}`));
for (let step = 0; step < p.losses.length; step++) {
  if (p.crash_at === step) { console.error("boom: the trial crashed on purpose at step " + step); process.exit(3); }
  const verdict = await trial.report({ step, max_steps: p.losses.length, metrics: { train_loss: p.losses[step] } });
  console.log(JSON.stringify({ event: "verdict", step, ...verdict }));
  if (trial.shouldStop() && !p.ignore_stop) break;
}
if (p.hang) setInterval(() => {}, 1000);
else if (!p.no_final) await trial.final(p.final ?? 0.5);
if (p.linger) setInterval(() => {}, 1000);  // the value is delivered, but the process never exits
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    path = tmp_path_factory.mktemp("relay") / "trial.mjs"
    index = (REPO_ROOT / "dist" / "index.js").as_uri()
    path.write_text(SCRIPT % {"index": repr(index)})
    assert NODE is not None
    return [NODE, str(path)]


@pytest.fixture
def pruner(service: Any) -> Any:
    p = BTTacklerPruner(url=service.url())
    yield p
    p.close()


def optimize(pruner: Any, script: List[str], plan: Dict[str, Any], direction: str = "minimize", **kwargs: Any) -> Any:
    study = optuna.create_study(direction=direction, pruner=pruner)
    outcome: Dict[str, Any] = {}

    def objective(trial: Any) -> float:
        started = time.monotonic()
        try:
            outcome["value"] = run_node_trial(trial, script, plan, **kwargs)
            return outcome["value"]
        except BaseException as exc:
            outcome["error"] = exc
            raise
        finally:
            outcome["seconds"] = time.monotonic() - started

    study.optimize(objective, n_trials=1, catch=(NodeTrialError,))
    return study, study.trials[0], outcome


def child_lines(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bttackler.trial"]


def ended(service: Any, study: Any, trial: Any) -> Optional[str]:
    trials = BTTacklerClient(service.url()).study_trials(service_study(study))["trials"]
    return {t["trial"]: t.get("ended") for t in trials}.get(str(trial.number))


def test_a_healthy_trial_completes_with_its_final_value(pruner: Any, service: Any, script: List[str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="bttackler.trial"):
        study, trial, outcome = optimize(pruner, script, {"losses": [1.0, 0.9, 0.8], "final": 0.42})
    assert trial.state == TrialState.COMPLETE and trial.value == 0.42
    assert trial.intermediate_values == {0: 1.0, 1: 0.9, 2: 0.8}
    lines = child_lines(caplog)
    assert any('"host":"optuna"' in l and f'"id":"optuna-trial-{trial.number}"' in l for l in lines), lines
    assert sum('"event":"verdict"' in l and '"stop":false' in l for l in lines) == 3
    assert ended(service, study, trial) == "complete"


def test_a_broken_trial_is_told_to_stop_with_the_reason_and_exits_by_itself(
    pruner: Any, service: Any, script: List[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="bttackler.trial"):
        study, trial, outcome = optimize(pruner, script, {"losses": [1.0, None, 0.8, 0.7]}, grace=20)
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs[STOP_ATTR]["symptoms"] == ["NF"] and trial.user_attrs[STOP_ATTR]["step"] == 1
    assert isinstance(outcome["error"], optuna.TrialPruned)
    assert "pruned at step 1: NF non_finite_metric" in str(outcome["error"])
    assert outcome["seconds"] < 10  # it left at once, well before the grace period ran out
    lines = child_lines(caplog)
    stop_lines = [l for l in lines if '"event":"verdict"' in l and '"stop":true' in l]
    assert len(stop_lines) == 1 and "NF non_finite_metric: metric train_loss is not finite" in stop_lines[0]
    assert not any('"step":2' in l for l in lines)  # it stopped after the verdict
    assert ended(service, study, trial) == "pruned"


def test_a_trial_that_ignores_the_stop_is_killed_after_the_grace_period(pruner: Any, script: List[str], caplog: pytest.LogCaptureFixture) -> None:
    plan = {"losses": [1.0, None, 0.8], "ignore_stop": True, "ignore_signals": True, "hang": True}
    with caplog.at_level(logging.DEBUG, logger="bttackler.trial"):
        _, trial, outcome = optimize(pruner, script, plan, grace=0.5)
    assert trial.state == TrialState.PRUNED
    # grace (0.5 s), SIGTERM ignored for 5 s, then SIGKILL
    assert 5.0 < outcome["seconds"] < 12
    lines = child_lines(caplog)
    assert "stdout: ignoring SIGTERM" in lines
    # reports after the stop are answered stop at once, with the same reason
    late = [l for l in lines if '"event":"verdict"' in l and '"step":2' in l]
    assert len(late) == 1 and '"stop":true' in late[0] and "NF non_finite_metric" in late[0]


def test_the_wrapped_pruner_can_stop_a_node_trial_too(service: Any, script: List[str]) -> None:
    pruner = BTTacklerPruner(url=service.url(), wrapped=ThresholdPruner(upper=2.0))
    try:
        _, trial, outcome = optimize(pruner, script, {"losses": [1.0, 3.0, 0.5]})
    finally:
        pruner.close()
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs[STOP_ATTR]["by"] == "wrapped"
    assert "ThresholdPruner pruned the trial at step 1" in str(outcome["error"])


def test_any_optuna_pruner_works_with_run_node_trial(script: List[str]) -> None:
    _, trial, outcome = optimize(ThresholdPruner(upper=2.0), script, {"losses": [1.0, 3.0, 0.5]})
    assert trial.state == TrialState.PRUNED
    assert "ThresholdPruner pruned the trial at step 1" in str(outcome["error"])


def test_a_crash_is_a_failed_trial_with_the_end_of_its_stderr(pruner: Any, service: Any, script: List[str]) -> None:
    study, trial, outcome = optimize(pruner, script, {"losses": [1.0, 0.9, 0.8], "crash_at": 2})
    assert trial.state == TrialState.FAIL
    error = outcome["error"]
    assert isinstance(error, NodeTrialError) and error.returncode == 3
    assert "exited with code 3" in str(error) and "boom: the trial crashed on purpose at step 2" in str(error)
    assert trial.intermediate_values == {0: 1.0, 1: 0.9}
    assert ended(service, study, trial) == "failed"


def test_an_exit_without_a_final_value_is_a_failed_trial(pruner: Any, script: List[str]) -> None:
    _, trial, outcome = optimize(pruner, script, {"losses": [1.0], "no_final": True})
    assert trial.state == TrialState.FAIL
    assert "without a final value" in str(outcome["error"])


def test_a_trial_that_outlives_its_timeout_is_stopped_and_failed(pruner: Any, script: List[str]) -> None:
    _, trial, outcome = optimize(pruner, script, {"losses": [1.0], "hang": True}, timeout=1.0)
    assert trial.state == TrialState.FAIL
    assert "ran longer than 1 s" in str(outcome["error"]) and outcome["seconds"] < 8


def test_a_command_that_cannot_start_is_a_failed_trial(pruner: Any, tmp_path: Path) -> None:
    _, trial, outcome = optimize(pruner, [str(tmp_path / "no-such-program")], {"losses": []})
    assert trial.state == TrialState.FAIL
    assert "cannot start the trial process" in str(outcome["error"])


def test_params_default_to_the_trials_params(pruner: Any, script: List[str], caplog: pytest.LogCaptureFixture) -> None:
    study = optuna.create_study(pruner=pruner)

    def objective(trial: Any) -> float:
        trial.suggest_float("final", 0.25, 0.25)
        return run_node_trial(trial, script)  # BTTACKLER_PARAMS = {"final": 0.25}

    study.optimize(objective, n_trials=1)
    assert study.trials[0].value == 0.25


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ("node train.js", {}, TypeError, "'node train.js'"),
        ([], {}, TypeError, "[]"),
        (["node"], {"params": [1]}, TypeError, "[1]"),
        (["node"], {"params": {"lr": math.nan}}, ValueError, "plain JSON"),
        (["node"], {"params": {}, "grace": -1}, ValueError, "got -1"),
        (["node"], {"params": {}, "timeout": 0}, ValueError, "got 0"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(pruner: Any, args: Any, kwargs: Dict[str, Any], error: type, words: str) -> None:
    study = optuna.create_study(pruner=pruner)
    trial = study.ask()
    with pytest.raises(error) as caught:
        run_node_trial(trial, args, **kwargs)
    assert words in str(caught.value)


# A child that speaks the relay by hand, to show what the parent does with lines the SDK never writes.
RAW_CHILD = """
import json, os, socket, sys
sock = socket.socket(fileno=int(os.environ["BTTACKLER_RELAY_FD"]))
plan = json.loads(os.environ["BTTACKLER_PARAMS"])
reader = sock.makefile("rb")
for line in plan.get("before", []) + ["x" * plan.get("overlong", 0)] * bool(plan.get("overlong")):
    sock.sendall(line.encode() + b"\\n")
sock.sendall(json.dumps({"type": "report", "payload": {"step": 0, "metrics": {"train_loss": 1.0}}}).encode() + b"\\n")
answer = reader.readline()
print("answer:", answer.decode().strip() or "EOF")
sock.sendall(json.dumps({"type": "final", "value": {"default": 0.3, "extra": 1}}).encode() + b"\\n")
sock.close()
"""


@pytest.fixture(scope="module")
def raw_child(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    import sys

    path = tmp_path_factory.mktemp("raw") / "child.py"
    path.write_text(RAW_CHILD)
    return [sys.executable, str(path)]


def test_lines_the_parent_cannot_use_are_skipped_and_the_conversation_goes_on(
    pruner: Any, raw_child: List[str], caplog: pytest.LogCaptureFixture
) -> None:
    plan = {"before": ["not json", "[1, 2]", json.dumps({"type": "hello"}), ""]}
    with caplog.at_level(logging.DEBUG, logger="bttackler"):
        _, trial, outcome = optimize(pruner, raw_child, plan)
    assert trial.state == TrialState.COMPLETE and trial.value == 0.3  # {"default": x} gives x
    assert trial.intermediate_values == {0: 1.0}
    assert 'stdout: answer: {"type":"verdict","stop":false}' in child_lines(caplog)
    messages = [r.getMessage() for r in caplog.records if r.name == "bttackler"]
    assert any("not JSON" in m for m in messages) and any("not a JSON object" in m for m in messages)


def test_an_overlong_line_closes_the_relay_but_the_final_value_still_counts(
    pruner: Any, raw_child: List[str], caplog: pytest.LogCaptureFixture
) -> None:
    plan = {"overlong": 1024 * 1024 + 10}
    with caplog.at_level(logging.DEBUG, logger="bttackler"):
        _, trial, outcome = optimize(pruner, raw_child, plan)
    assert trial.state == TrialState.COMPLETE and trial.value == 0.3
    assert trial.intermediate_values == {}  # the report after the break was not relayed
    assert "stdout: answer: EOF" in child_lines(caplog)  # the child saw its relay closed
    assert any("longer than 1048576 bytes" in r.getMessage() for r in caplog.records if r.name == "bttackler")


def test_a_trial_that_delivers_its_value_but_does_not_exit_is_stopped_and_completes(pruner: Any, script: List[str]) -> None:
    _, trial, outcome = optimize(pruner, script, {"losses": [1.0], "final": 0.7, "linger": True}, grace=0.5)
    assert trial.state == TrialState.COMPLETE and trial.value == 0.7
    assert outcome["seconds"] < 5  # grace, then SIGTERM (the SDK's handlers are gone after final)

"""The one definition of a trial's outcome (docs/benchmarks.md, "Outcomes") on the golden traces of
test/fixtures/outcomes, as the simulator reads them: the same expected.json that
test/calibration/outcomes-golden.test.ts checks for bttackler calibrate."""
from __future__ import annotations

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from traces import load_task, outcomes  # noqa: E402

GOLDEN = os.path.join(HERE, "..", "..", "fixtures", "outcomes")
with open(os.path.join(GOLDEN, "expected.json"), encoding="utf-8") as f:
    EXPECTED = json.load(f)


@pytest.mark.parametrize("name", ["maximize.jsonl", "minimize.jsonl"])
def test_the_golden_outcomes(name: str) -> None:
    task = load_task(os.path.join(GOLDEN, name))
    got = outcomes(sorted(task.trials, key=lambda t: t.index))
    assert got == EXPECTED[name]


def test_a_failed_trial_runs_its_recorded_epochs_and_ends_without_a_result() -> None:
    from methods import NoStopping  # noqa: E402
    from simulate import simulate  # noqa: E402

    task = load_task(os.path.join(GOLDEN, "maximize.jsonl"))
    order = list(range(len(task.trials)))
    result = simulate(task.trials, order, NoStopping(), workers=2, budget=1e9, seed=0)
    failed = {t.index for t in task.trials if t.failed}
    assert failed == {4}
    assert sorted(result.started) == sorted(t.index for t in task.trials)
    assert {i for _, i, _ in result.completed} == {t.index for t in task.trials} - failed
    assert result.stopped == []

"""The three runnable examples of docs/torch.md, run as a user would (each starts its own private service)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO_ROOT

EXAMPLES = REPO_ROOT / "docs" / "examples" / "torch"


@pytest.mark.parametrize("script", ["plain_optuna.py", "lightning_digits.py", "hf_digits.py"])
def test_example_prunes_the_diverging_trial_and_completes_the_sane_one(script: str) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--trials", "2", "--epochs", "2"],
                          capture_output=True, text=True, timeout=240, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == 2, done.stdout
    assert lines[0].startswith("trial 0: PRUNED") and "stopped at epoch" in lines[0] and ("NF" in lines[0] or "EG" in lines[0]), lines[0]
    assert lines[1].startswith("trial 1: COMPLETE"), lines[1]

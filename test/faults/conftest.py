"""Host fault tests: what the service's faults do to real Optuna studies, real NNI experiments and a real Ray Tune study (test/faults/run.sh)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "e2e" / "nni"))  # nni_run.py: the NNI harness of the end-to-end tests
sys.path.insert(0, str(HERE.parents[1] / "adapters" / "python" / "tests"))  # helpers.py: wait_until of the adapter's tests

from faults_helpers import FIGURES, MAIN_JS, NODE  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    if NODE is None:
        raise pytest.UsageError("the host fault tests run the real service and need `node` on PATH")
    if not MAIN_JS.is_file():
        raise pytest.UsageError(f"{MAIN_JS} is missing: run `npm run build` first")
    for var in ("BTTACKLER_TOKEN", "BTTACKLER_CLI", "BTTACKLER_URL"):
        os.environ.pop(var, None)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if not FIGURES:
        return
    terminalreporter.section("measured figures (seconds)")
    for test, figures in FIGURES.items():
        terminalreporter.write_line(f"{test}: {json.dumps(figures, sort_keys=True)}")

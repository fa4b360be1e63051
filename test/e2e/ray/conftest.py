"""Fixtures of the Ray end-to-end test: one real local Ray cluster for the session (ray_cluster.py: 2 CPUs, no
dashboard, no usage stats, Ray's token auth on with a token from the environment)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MAIN_JS = ROOT / "dist" / "cli" / "main.js"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "adapters" / "python" / "tests"))  # helpers.py: wait_until
import ray_cluster as cluster  # noqa: E402

cluster.configure_environment()  # before any test module imports ray


def pytest_configure(config: pytest.Config) -> None:
    if shutil.which("node") is None:
        raise pytest.UsageError("the Ray end-to-end test needs `node` on PATH")
    if not MAIN_JS.is_file():
        raise pytest.UsageError(f"{MAIN_JS} is missing: run `npm run build` first")
    for var in ("BTTACKLER_TOKEN", "BTTACKLER_CLI", "BTTACKLER_URL"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    with cluster.running():
        yield

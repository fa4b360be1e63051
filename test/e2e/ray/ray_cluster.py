"""The local Ray cluster of the Ray end-to-end and fault tests.

``configure_environment()`` must run before ``ray`` is first imported (Ray reads its authentication settings once):
usage stats off, and Ray's token auth (on by default for a new local cluster from Ray 2.59, which then writes a
token to ``~/.ray/auth_token``) kept on with a token of this test session given through the environment, so that
nothing is written to the home directory. ``running()`` is ``ray.init(num_cpus=2)`` without the dashboard, for a ``with`` block.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent


def configure_environment() -> None:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    if os.environ["RAY_AUTH_MODE"] == "token":
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    # the workers import the trainables (this folder) by name
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(HERE), os.environ.get("PYTHONPATH", "")] if p)


@contextlib.contextmanager
def running() -> Iterator[None]:
    """ray.init for the tests, and ray.shutdown after. Ray's temporary folder is a short one of its own (Ray's
    socket paths must stay below 107 characters), removed after."""
    import ray

    folder = Path(f"/tmp/bttackler-ray-{os.getpid()}")
    folder.mkdir(exist_ok=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(folder), configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

"""Installing from the built artefacts, as a user without the checkout would (issue #20, item 8).

    .venv/bin/python -m pytest test/install -q -p no:cacheprovider      (npm run test:install)

`npm pack` makes the npm tarball, which `npm install -g --prefix <scratch>` installs (its dependencies from
the npm registry, better-sqlite3 built if no prebuilt binary is reachable); `python -m build --wheel` makes the
Python adapter's wheel, which `pip install "<wheel>[optuna]"` puts into a fresh venv (Optuna from PyPI). Then
the Optuna example of docs/optuna.md runs from a scratch folder, with only the scratch prefix's `bin`, node's
folder and the system folders on PATH, no BTTACKLER_* or PYTHONPATH: its NaN trial must be pruned by
bttackler, through the service that the npm install put on PATH. Takes minutes (installs): part of
`npm run test:faults`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")

EXAMPLE = textwrap.dedent(
    """
    import json, os, shutil, sys

    import optuna
    import bttackler
    from bttackler.optuna import BTTacklerPruner


    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 10.0, log=True)
        loss = 1.0
        for step in range(10):
            loss = loss * (1 - lr) if lr < 1 else float("nan")   # lr >= 1 "explodes"
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss


    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = BTTacklerPruner()
    study = optuna.create_study(pruner=pruner)
    study.enqueue_trial({"lr": 5.0})
    study.optimize(objective, n_trials=3)
    first = study.trials[0]
    print(json.dumps({
        "state": first.state.name,
        "stop": first.user_attrs.get("bttackler_stop"),
        "package": os.path.realpath(bttackler.__file__),
        "service": pruner._service.command_line,
        "sys_path": sys.path,
    }))
    pruner.close()
    """
)


def _clean_env(path: List[str]) -> Dict[str, str]:
    """The environment of a user's shell: no npm run variables, no BTTACKLER_*, no Python paths, no venv."""
    drop = ("npm_", "BTTACKLER_", "PYTHON", "VIRTUAL_ENV", "NODE_PATH", "INIT_CWD")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = os.pathsep.join(path)
    return env


def _run(argv: List[str], cwd: Path, env: Dict[str, str], timeout: float) -> str:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=str(cwd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    print(f"{' '.join(argv[:4])} ...: {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert done.returncode == 0, f"{argv} exited with {done.returncode}:\n{done.stdout[-4000:]}"
    return done.stdout


@pytest.mark.skipif(NODE is None or shutil.which("npm") is None, reason="needs node and npm")
def test_the_packed_tarball_and_the_wheel_install_and_prune_a_nan_trial(tmp_path_factory: pytest.TempPathFactory) -> None:
    scratch = tmp_path_factory.mktemp("install")
    assert not str(scratch).startswith(str(ROOT))
    system_path = [os.path.dirname(NODE), "/usr/local/bin", "/usr/bin", "/bin"]
    env = _clean_env(system_path)

    # the artefacts, made from the checkout
    packed = _run(["npm", "pack", "--pack-destination", str(scratch)], ROOT, env, 600).strip().splitlines()[-1]
    tarball = scratch / packed
    assert tarball.is_file() and tarball.name.startswith("bttackler-"), packed
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(scratch / "wheel"), str(ROOT / "adapters" / "python")], ROOT, env, 600)
    wheels = list((scratch / "wheel").glob("bttackler-*.whl"))
    assert len(wheels) == 1, wheels

    # installed as a user would, away from the checkout
    prefix = scratch / "prefix"
    _run(["npm", "install", "-g", "--prefix", str(prefix), "--no-audit", "--no-fund", str(tarball)], scratch, env, 900)
    cli = prefix / "bin" / "bttackler"
    assert cli.exists()
    venv = scratch / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], scratch, env, 300)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{wheels[0]}[optuna]"], scratch, env, 900)

    user_path = [str(venv / "bin"), str(prefix / "bin")] + system_path
    version = _run([str(cli), "--version"], scratch, _clean_env(user_path), 60).strip()
    assert version.endswith(json.loads((ROOT / "package.json").read_text())["version"]), version

    (scratch / "example.py").write_text(EXAMPLE)
    out = _run([str(venv / "bin" / "python"), "example.py"], scratch, _clean_env(user_path), 300)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["state"] == "PRUNED", out
    assert result["stop"]["by"] == "bttackler" and result["stop"]["symptoms"] == ["NF"], result["stop"]
    assert result["package"].startswith(str(venv)), result["package"]
    assert result["service"][0] == shutil.which("bttackler", path=os.pathsep.join(user_path)), result["service"]
    assert str(prefix) in os.path.realpath(result["service"][0])
    for entry in result["sys_path"] + result["service"]:
        if os.path.isabs(entry):  # the others are arguments ("serve") or the script's folder ("")
            assert not os.path.realpath(entry).startswith(str(ROOT)), f"the checkout is on a path: {entry}"

"""End to end: `npm run demo` (docs/examples/demo/run.sh) in a reduced mode, on real Optuna, real Node.js trials and
the real service of this checkout.

    .venv/bin/python -m pytest test/e2e/demo -q -p no:cacheprovider

Needs node_modules and a build (run.sh would install and build them if they were missing or stale, which is slow).
With seed 10, the first 4 configurations hold one whose units die (pruned) and healthy ones (complete). Six epochs,
so that VG, which stops it in the full demo (step 2), reaches step 2 within its stage (the first half of the run; its
progress guard needs three train losses); DEAD stops it too (every unit dead: its guard does not apply).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest

ROOT = Path(__file__).resolve().parents[3]
RUN_SH = ROOT / "docs" / "examples" / "demo" / "run.sh"
STATES = ("COMPLETE", "PRUNED", "FAIL")
EPOCHS = 6


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    out = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTTACKLER_")}
    proc = subprocess.run(["sh", str(RUN_SH), "--trials", "4", "--epochs", str(EPOCHS), "--samples", "600", "--seed", "10", "--out", str(out)],
                          cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    return {"proc": proc, "out": out, "stdout": proc.stdout}


def test_exits_0(demo: Dict[str, Any]) -> None:
    assert demo["proc"].returncode == 0, demo["stdout"][-4000:]


def test_prints_one_line_per_trial_event(demo: Dict[str, Any]) -> None:
    lines = demo["stdout"].splitlines()
    for n in range(4):
        assert any(re.search(rf"\d+/4 \d+:\d\d  trial {n:2d} started ", line) for line in lines), demo["stdout"]
        assert any(re.search(rf"\d+/4 \d+:\d\d  trial {n:2d} ({'|'.join(STATES)}) ", line) for line in lines), demo["stdout"]


def test_summary_table_has_each_trial_with_its_state(demo: Dict[str, Any]) -> None:
    summary = json.loads((demo["out"] / "summary.json").read_text())
    trials = summary["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    for t in trials:
        assert t["state"] in STATES
        row = re.search(rf"^\s+{t['number']}  {t['state']}\s+(\d+)/{EPOCHS}\s", demo["stdout"], re.M)
        assert row, f"no table row for trial {t['number']} ({t['state']}):\n{demo['stdout']}"
        assert int(row.group(1)) == t["epochs_run"]
    pruned = [t for t in trials if t["state"] == "PRUNED"]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    assert pruned and complete, trials
    for t in pruned:
        assert t["symptoms"] and t["reason"].split(" ")[0] in t["symptoms"] and t["stop_step"] == t["epochs_run"] - 1, t
        assert re.search(rf"^\s+{t['number']}  PRUNED .*\b{t['symptoms'][0]}\b", demo["stdout"], re.M)
    for t in complete:
        assert t["epochs_run"] == EPOCHS and 0 <= t["test_acc"] <= 1 and not t["symptoms"], t


def test_time_saving_best_trial_and_report_are_printed(demo: Dict[str, Any]) -> None:
    text = demo["stdout"]
    summary = json.loads((demo["out"] / "summary.json").read_text())
    savings = summary["savings"]
    assert 0 < savings["used_s"] <= savings["to_end_s"]
    assert re.search(r"^Time used by the trials: +\d+\.\d s", text, re.M)
    assert re.search(r"^Running every trial to the end: ~ +\d+\.\d s \(estimate\)", text, re.M)
    assert re.search(r"^Saved by pruning: +\d+\.\d %", text, re.M)
    best = max((t for t in summary["trials"] if t["state"] == "COMPLETE"), key=lambda t: t["test_acc"])
    assert f"Best test accuracy: {best['test_acc']:.3f} (trial {best['number']}:" in text
    lines = text.strip().splitlines()
    html = demo["out"] / "report.html"
    assert lines[-1] == f"HTML report: {html}" and html.is_file() and "<html" in html.read_text()[:2000].lower()


def _demo_module() -> Any:
    spec = importlib.util.spec_from_file_location("bttackler_demo", RUN_SH.parent / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_report_that_fails_fails_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No failure of `bttackler report` may pass for "no report command": a foreign database, a missing CLI."""
    demo_module = _demo_module()
    not_a_db = tmp_path / "bttackler.db"
    not_a_db.write_text("not a database\n")
    with pytest.raises(demo_module.ReportFailed, match=r"`bttackler report` failed \(exit code [1-9]"):
        demo_module.make_report(not_a_db, tmp_path)
    monkeypatch.setattr(demo_module, "CLI_JS", tmp_path / "missing" / "main.js")
    with pytest.raises(demo_module.ReportFailed, match="failed"):
        demo_module.make_report(not_a_db, tmp_path)


def test_the_database_records_every_trial(demo: Dict[str, Any]) -> None:
    db = demo["out"] / "bttackler.db"
    assert db.is_file()
    summary = json.loads((demo["out"] / "summary.json").read_text())
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        payloads = dict(conn.execute("SELECT trial, COUNT(*) FROM events WHERE study = ? AND kind = 'payload' GROUP BY trial",
                                     (summary["service_study"],)).fetchall())
        ends = conn.execute("SELECT COUNT(*) FROM events WHERE study = ? AND kind = 'end'", (summary["service_study"],)).fetchone()[0]
    assert payloads == {str(t["number"]): t["epochs_run"] for t in summary["trials"]}
    assert ends == 4


def _tfjs_node_installed() -> bool:
    return subprocess.run(["node", "-e", "require.resolve('@tensorflow/tfjs-node')"], cwd=str(ROOT), capture_output=True).returncode == 0


_NATIVE_REQUIRED = os.environ.get("CI") in ("true", "1") or os.environ.get("BTTACKLER_REQUIRE_TFJS_NODE") == "1"


@pytest.mark.skipif(not _tfjs_node_installed() and not _NATIVE_REQUIRED,
                    reason="@tensorflow/tfjs-node is not installed (npm run setup:tfjs-node)")
def test_backend_tensorflow_runs_the_trials_on_tfjs_node(tmp_path: Path) -> None:
    assert _tfjs_node_installed(), "CI requires @tensorflow/tfjs-node: .ci/run runs npm run setup:tfjs-node"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BTTACKLER_")}
    proc = subprocess.run(["sh", str(RUN_SH), "--backend", "tensorflow", "--trials", "2", "--epochs", "2", "--samples", "400",
                           "--jobs", "1", "--seed", "10", "--out", str(tmp_path)],
                          cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "tensorflow backend" in proc.stdout
    assert re.search(r"\b2 complete|\b1 complete, 1 pruned|\b2 pruned", proc.stdout), proc.stdout[-3000:]
    assert "0 failed" in proc.stdout


def test_backend_must_be_wasm_or_tensorflow() -> None:
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "docs" / "examples" / "demo" / "demo.py"), "--backend", "webgl"],
                          cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert proc.returncode == 2
    assert "invalid choice: 'webgl'" in proc.stdout

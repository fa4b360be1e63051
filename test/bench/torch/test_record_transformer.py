"""The Transformer trace recorder, run small on the CPU, and the committed traces: the HPO simulator's reader
loads them and every payload passes the schema (validatePayload of the built package)."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "test" / "bench" / "hpo"))
from traces import load_traces  # noqa: E402

TRACES = ROOT / "test" / "bench" / "traces" / "digits-transformer.jsonl.gz"

VALIDATE = """
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { validatePayload } from "./dist/index.js";
const path = process.argv[1];
let raw = readFileSync(path);
if (raw[0] === 0x1f && raw[1] === 0x8b) raw = gunzipSync(raw);
let payloads = 0, bad = [];
for (const line of raw.toString("utf8").split("\\n")) {
  if (!line.trim()) continue;
  const trial = JSON.parse(line);
  for (const epoch of trial.epochs) {
    payloads++;
    try { validatePayload(epoch.payload); } catch (e) { bad.push(`trial ${trial.trial} step ${epoch.payload.step}: ${e.message}`); }
  }
}
console.log(JSON.stringify({ payloads, bad: bad.slice(0, 5), bad_count: bad.length }));
"""


def validate(path: Path) -> dict:
    node = shutil.which("node")
    assert node is not None and (ROOT / "dist" / "index.js").is_file(), "needs node and a built checkout (npm run build)"
    done = subprocess.run([node, "--input-type=module", "-e", VALIDATE, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_small_recording_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "small.jsonl.gz"
    done = subprocess.run([sys.executable, str(HERE / "record_transformer.py"), "--trials", "0:2", "--epochs", "1", "--workers", "2",
                           "--device", "cpu", "--out", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 2 and summary["error"] == 0
    lines = [json.loads(t) for t in gzip.open(out, "rt")]
    assert [line["trial"] for line in lines] == [0, 1]
    first = lines[0]
    assert first["format"] == "bttackler.trace.v1" and first["dataset"] == "digits" and first["model"] == "transformer"
    assert len(first["epochs"]) == 1 and first["config"]["model"] == "transformer"
    layers = first["epochs"][0]["payload"]["layers"]
    assert any("self_attn.in_proj_weight" in layer["name"] for layer in layers)
    assert set(first["epochs"][0]["payload"]["metrics"]) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert len(load_traces([str(out)])) == 2
    assert validate(out)["bad_count"] == 0
    # resuming with the same file keeps what is there and records nothing twice
    again = subprocess.run([sys.executable, str(HERE / "record_transformer.py"), "--trials", "0:2", "--epochs", "1", "--workers", "2",
                            "--device", "cpu", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout.strip().splitlines()[-1])["trials"] == 2


def test_the_committed_traces_load_and_validate() -> None:
    trials = load_traces([str(TRACES)])
    assert len(trials) == 300 and all(len(t.payloads) == 20 for t in trials)
    result = validate(TRACES)
    assert result["payloads"] == 6000 and result["bad_count"] == 0, result

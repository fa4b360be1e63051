"""The bttackler demo: a real Optuna study of docs/examples/mnist/train.js, pruned by BTTacklerPruner.

    .venv/bin/python docs/examples/demo/demo.py [--trials 16] [--epochs 10] [--samples 2000] [--jobs 2] [--seed 10] [--out DIR]

Run it through `npm run demo` (docs/examples/demo/run.sh), which installs and builds what it needs
first. What happens:

1. ONE `bttackler serve` starts on an SQLite file in the output directory (default
   demo-output/<UTC time>/bttackler.db). That file is the record of the demo: every epoch's
   indicator payload and verdict, and how each trial ended.
2. An Optuna study maximizes train.js's final value, its test accuracy (train.js calls
   `trial.final(accuracy)`; each epoch, `run_node_trial` reports `val_acc` to Optuna, which is what a
   maximizing study reports). The search space is deliberately wide, as a first search often is: it
   holds learning rates that blow up or kill the ReLUs, and configurations that learn well.
   The configurations are drawn up front from Optuna's RandomSampler with a fixed seed and queued,
   so every run tries the same ones, even with `--jobs 2` (Optuna reseeds its sampler in each
   thread). Training itself is not seeded: a borderline trial may end differently from run to run.
   The default seed, 10, was picked because its 16 draws hold broken configurations of several
   kinds and good ones; test/e2e/demo relies on its first 4 (one of them dies at once).
3. Each trial is `node docs/examples/mnist/train.js` run by `run_node_trial`; one line per trial
   event is printed while it runs.
4. At the end: a table of every trial, the time used against an estimate of running every trial to
   the end, the best trial, and the HTML report (`bttackler report`; the demo fails when it fails).

The service runs with the default study configuration: the tfjs reporter sends `max_steps` (the
planned epochs) with every payload, so nothing has to be configured for the stage windows.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from bttackler import LocalService
from bttackler.optuna import STOP_ATTR, BTTacklerPruner, NodeTrialError, run_node_trial, service_study

ROOT = Path(__file__).resolve().parents[3]
TRAIN_JS = ROOT / "docs" / "examples" / "mnist" / "train.js"
CLI_JS = ROOT / "dist" / "cli" / "main.js"
STUDY_NAME = "mnist-demo"
TRIAL_TIMEOUT = 300.0  # seconds; a trial that hangs fails instead of hanging the demo


# ---------------------------------------------------------------------------------------------- options


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="bttackler demo: an Optuna study of docs/examples/mnist/train.js with BTTacklerPruner")
    parser.add_argument("--trials", type=int, default=16, help="number of trials (default 16)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs each trial plans to run (default 10)")
    parser.add_argument("--samples", type=int, default=2000, help="MNIST training digits per trial, 20%% of them for validation (default 2000)")
    parser.add_argument("--jobs", type=int, default=2, help="trials run at the same time (default 2)")
    parser.add_argument("--seed", type=int, default=10, help="seed of the random sampler (default 10)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default demo-output/<UTC time>)")
    parser.add_argument(
        "--backend",
        choices=["wasm", "tensorflow"],
        default="wasm",
        help="TensorFlow.js backend of the trials: wasm (pure JS/WebAssembly, nothing to install; default) or tensorflow "
        "(the native TensorFlow of @tensorflow/tfjs-node, when installed: npm run setup:tfjs-node)",
    )
    args = parser.parse_args(argv)
    for name in ("trials", "epochs", "samples", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.out is None:
        args.out = ROOT / "demo-output" / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    args.out = args.out.resolve()
    return args


# ---------------------------------------------------------------------------------------------- the search space


def suggest(trial: optuna.Trial) -> Dict[str, Any]:
    """train.js's hyperparameters. A learning rate above ~0.1 (adam, rmsprop) or ~1 (sgd) kills the units, makes
    the gradients vanish or explode, or turns the loss into NaN; below ~1e-3 sgd learns little; most others learn."""
    return {
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "sgd", "rmsprop"]),
        "lr": trial.suggest_float("lr", 1e-4, 10.0, log=True),
        "activation": trial.suggest_categorical("activation", ["relu", "tanh", "sigmoid"]),
        "loss": trial.suggest_categorical("loss", ["crossentropy", "mse"]),
        "depth": trial.suggest_int("depth", 1, 3),
    }


def draw_configs(n: int, seed: int) -> List[Dict[str, Any]]:
    """n configurations from RandomSampler(seed), drawn one after the other in a scratch study."""
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [suggest(scratch.ask()) for _ in range(n)]


def describe(params: Dict[str, Any]) -> str:
    return " ".join(f"{k}={_short(v)}" for k, v in params.items())


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------- progress


class Progress:
    """One line per trial event, with a counter and the elapsed time; safe from the study's threads."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, text: str) -> None:
        with self._lock:
            self._print(text)

    def trial_started(self, number: int, params: Dict[str, Any]) -> None:
        self.line(f"trial {number:2d} started   {describe(params)}")

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """An Optuna callback: called once per finished trial."""
        with self._lock:
            self.done += 1
            self._print(f"trial {trial.number:2d} {outcome(trial)}")

    def _print(self, text: str) -> None:
        width = 20
        filled = round(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        minutes, seconds = divmod(int(self.elapsed()), 60)
        print(f"[{bar}] {self.done:2d}/{self.total} {minutes:d}:{seconds:02d}  {text}", flush=True)


def outcome(trial: FrozenTrial) -> str:
    """What a finished trial's line says."""
    seconds = trial_seconds(trial)
    if trial.state == TrialState.PRUNED:
        record = trial.user_attrs.get(STOP_ATTR, {})
        codes = ",".join(record.get("symptoms", [])) or "-"
        return f"PRUNED    at step {record.get('step', '?')} [{codes}] after {seconds:.1f} s: {cut(record.get('reason', ''), 100)}"
    if trial.state == TrialState.COMPLETE:
        return f"COMPLETE  {len(trial.intermediate_values)} epochs in {seconds:.1f} s, test accuracy {trial.value:.3f}"
    return f"{trial.state.name:9s} after {seconds:.1f} s: {cut(trial.user_attrs.get('error', ''), 110)}"


def cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------------------------------- the study


def start_service(db: Path) -> LocalService:
    """`bttackler serve --port 0 --db DB` of this checkout; exits the demo if it does not come up."""
    service = LocalService(db=db, command=["node", str(CLI_JS)]).start()
    if service.url(timeout=30) is None:
        sys.exit(f"demo: the bttackler service did not start: {service.error}")
    return service


def make_objective(args: argparse.Namespace, progress: Progress):
    fixed = {"epochs": args.epochs, "samples": args.samples, "backend": args.backend}

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        progress.trial_started(trial.number, params)
        try:
            return run_node_trial(trial, ["node", str(TRAIN_JS)], {**params, **fixed}, cwd=str(ROOT), timeout=TRIAL_TIMEOUT)
        except NodeTrialError as exc:
            trial.set_user_attr("error", failure(exc))
            raise

    return objective


def failure(exc: NodeTrialError) -> str:
    """One line: how the process ended, and the error it wrote on standard error (Optuna logs the whole tail)."""
    lines = [line.strip() for line in exc.stderr_tail.splitlines() if line.strip() and not line.strip().startswith("Node.js v")]
    errors = [line for line in lines if "Error" in line]
    if exc.returncode is not None and lines:
        return f"exit code {exc.returncode}: {(errors or lines)[-1]}"
    return str(exc).splitlines()[0]


def run_study(args: argparse.Namespace, url: str, progress: Progress) -> optuna.Study:
    study = optuna.create_study(
        study_name=STUDY_NAME,
        direction="maximize",  # train.js's final value is the test accuracy; run_node_trial reports val_acc per epoch
        pruner=BTTacklerPruner(url=url),
    )
    for params in draw_configs(args.trials, args.seed):  # every trial is queued: the study's sampler is never asked
        study.enqueue_trial(params)
    try:
        study.optimize(make_objective(args, progress), n_trials=args.trials, n_jobs=args.jobs,
                       catch=(NodeTrialError,), callbacks=[progress.trial_finished])
    finally:
        study.pruner.close()
    return study


# ---------------------------------------------------------------------------------------------- the summary


def trial_seconds(trial: FrozenTrial) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def epoch_seconds(db: Path, study: str) -> Dict[str, List[float]]:
    """Each trial's per-epoch wall-clock seconds, as its own payloads reported them (payload field `seconds`).

    Read from the service's database, which keeps each payload as it arrived: the payload's JSON, or the
    JSON-RPC request that carried it (the payload at params.payload). Nothing is found if that ever changes;
    the estimate then falls back to the trial's seconds per epoch including its start-up."""
    found: Dict[str, List[float]] = {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT trial, body FROM events WHERE study = ? AND kind = 'payload' ORDER BY seq", (study,)).fetchall()
    except sqlite3.Error:
        return found
    for trial, body in rows:
        seconds = _payload(json.loads(body)).get("seconds")
        if isinstance(seconds, (int, float)) and math.isfinite(seconds):
            found.setdefault(str(trial), []).append(float(seconds))
    return found


def _payload(doc: Any) -> Dict[str, Any]:
    if isinstance(doc, dict) and "jsonrpc" in doc:
        doc = (doc.get("params") or {}).get("payload")
    return doc if isinstance(doc, dict) else {}


def summarize(study: optuna.Study, epochs: int, seconds_by_trial: Dict[str, List[float]]) -> List[Dict[str, Any]]:
    return [summarize_trial(t, epochs, seconds_by_trial.get(str(t.number), [])) for t in study.trials]


def summarize_trial(trial: FrozenTrial, epochs: int, epoch_secs: List[float]) -> Dict[str, Any]:
    record = trial.user_attrs.get(STOP_ATTR, {}) if trial.state == TrialState.PRUNED else {}
    ran = len(trial.intermediate_values)
    seconds = trial_seconds(trial)
    last_val = trial.intermediate_values[max(trial.intermediate_values)] if ran else None
    per_epoch = sum(epoch_secs) / len(epoch_secs) if epoch_secs else (seconds / ran if ran else 0.0)
    remaining = epochs - ran if trial.state == TrialState.PRUNED else 0
    return {
        "number": trial.number,
        "state": trial.state.name,
        "epochs_run": ran,
        "stop_step": record.get("step"),
        "symptoms": record.get("symptoms", []),
        "reason": record.get("reason") or trial.user_attrs.get("error", ""),
        "val_acc": last_val,
        "test_acc": trial.value if trial.state == TrialState.COMPLETE else None,
        "seconds": seconds,
        "training_seconds": sum(epoch_secs),
        "seconds_to_end": seconds + per_epoch * remaining,
        "params": trial.params,
    }


def print_table(rows: List[Dict[str, Any]], epochs: int) -> None:
    print(f"\n{'trial':>5}  {'state':8}  {'epochs':>6}  {'stop':>4}  {'symptoms':12}  {'val_acc':>7}  {'test_acc':>8}  {'secs':>5}  reason")
    for r in rows:
        print(f"{r['number']:5d}  {r['state']:8}  {r['epochs_run']:>3d}/{epochs:<2d}  {_opt(r['stop_step'], 'd'):>4}  "
              f"{','.join(r['symptoms']) or '-':12}  {_opt(r['val_acc'], '.3f'):>7}  {_opt(r['test_acc'], '.3f'):>8}  "
              f"{r['seconds']:5.1f}  {cut(r['reason'], 70) or '-'}")
    print("val_acc: the last epoch's validation accuracy; test_acc: train.js's final value, the accuracy on 1,000 held-out")
    print("test digits (the study maximizes it; COMPLETE trials only); stop: the 0-based step of the stop verdict.")


def _opt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_savings(rows: List[Dict[str, Any]], wall: float, jobs: int) -> Dict[str, float]:
    used = sum(r["seconds"] for r in rows)
    to_end = sum(r["seconds_to_end"] for r in rows)
    saved = 100.0 * (1 - used / to_end) if to_end > 0 else 0.0
    counts = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")}
    print(f"\n{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed; "
          f"the study took {wall:.0f} s of wall-clock time with {jobs} trial(s) at a time.")
    print(f"Time used by the trials:          {used:7.1f} s (the sum of each trial's own seconds)")
    print(f"Running every trial to the end: ~ {to_end:7.1f} s (estimate)")
    print(f"Saved by pruning:                 {saved:7.1f} %")
    print("The estimate adds, for each pruned trial, its mean seconds per epoch (the `seconds` its own payloads reported)")
    print("times the epochs it did not run; complete and failed trials count with the time they took.")
    startup = [r["seconds"] - r["training_seconds"] for r in rows if r["state"] == "COMPLETE" and r["training_seconds"] > 0]
    if startup:
        print(f"Each trial also spends ~{sum(startup) / len(startup):.1f} s outside its epochs (starting Node.js and TensorFlow.js,")
        print("loading the digits, the final test), which pruning cannot save (the mean over the complete trials).")
    return {"used_s": used, "to_end_s": to_end, "saved_pct": saved, "wall_s": wall}


def print_best(study: optuna.Study) -> Optional[Dict[str, Any]]:
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE and not math.isnan(t.value)]
    if not complete:
        print("\nNo trial completed, so there is no best accuracy.")
        return None
    best = max(complete, key=lambda t: t.value)
    print(f"\nBest test accuracy: {best.value:.3f} (trial {best.number}: {describe(best.params)})")
    return {"number": best.number, "test_acc": best.value, "params": best.params}


# ---------------------------------------------------------------------------------------------- the report


class ReportFailed(Exception):
    """`bttackler report` did not make the page: the demo then fails too."""


def make_report(db: Path, out: Path) -> Path:
    """`bttackler report --db DB --out OUT/report.html`: the page; raises ReportFailed when the command fails."""
    html = out / "report.html"
    try:
        made = subprocess.run(["node", str(CLI_JS), "report", "--db", str(db), "--out", str(html)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise ReportFailed(f"`bttackler report` could not run: {exc}") from None
    if made.returncode != 0 or not html.is_file():
        raise ReportFailed(f"`bttackler report` failed (exit code {made.returncode}): {cut(made.stdout, 300)}")
    return html


def write_summary(args: argparse.Namespace, rows: List[Dict[str, Any]], savings: Dict[str, float],
                  best: Optional[Dict[str, Any]], service_study_name: str) -> None:
    """summary.json next to the database: what the table shows, for scripts and tests."""
    summary = {"trials": rows, "savings": savings, "best": best, "epochs": args.epochs, "seed": args.seed,
               "study": STUDY_NAME, "service_study": service_study_name}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")


# ---------------------------------------------------------------------------------------------- main


def tfjs_node_installed() -> bool:
    """Whether node resolves @tensorflow/tfjs-node from the repository (the "tensorflow" backend's package)."""
    probe = subprocess.run(["node", "-e", "require.resolve('@tensorflow/tfjs-node')"], cwd=str(ROOT), capture_output=True)
    return probe.returncode == 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines tell what happens
    if shutil.which("node") is None:
        sys.exit("demo: `node` is not on PATH")
    if args.backend == "tensorflow" and not tfjs_node_installed():
        sys.exit("demo: --backend tensorflow needs @tensorflow/tfjs-node: run `npm run setup:tfjs-node` (or `npm i @tensorflow/tfjs-node` with internet), or leave --backend out")
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "bttackler.db"
    print(f"demo: {args.trials} trials of {TRAIN_JS.relative_to(ROOT)} ({args.epochs} epochs, {args.samples} digits each, {args.backend} backend), "
          f"{args.jobs} at a time, random sampling with seed {args.seed}")
    service = start_service(db)
    print(f"demo: bttackler serve at {service.url()} with database {db}", flush=True)
    progress = Progress(args.trials)
    try:
        study = run_study(args, service.url(), progress)
    finally:
        service.stop()  # every acknowledged report is committed before it exits
    wall = progress.elapsed()
    rows = summarize(study, args.epochs, epoch_seconds(db, service_study(study)))
    print_table(rows, args.epochs)
    savings = print_savings(rows, wall, args.jobs)
    best = print_best(study)
    write_summary(args, rows, savings, best, service_study(study))
    if all(r["state"] == "FAIL" for r in rows):
        print(f"\ndemo: every trial failed; the record is in {db}", file=sys.stderr)
        return 1
    print(f"\nThe record of this run (every payload and verdict): {db}")
    try:
        html = make_report(db, args.out)
    except ReportFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(f"HTML report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

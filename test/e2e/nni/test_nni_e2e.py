"""End to end with real NNI 3.0: `nnictl create --foreground` local experiments, the bttackler assessor, real trials.

1. docs/examples/mnist/train.js (the JS trial SDK on NNI's HTTP trial channel), the assessor
   registered with `nnictl algo register --meta` and used by name, no classArgs: it starts its
   own service, whose database stays in the experiment directory.
2. A Python trial reporting payload v1 dicts (and plain numbers) with
   nni.report_intermediate_result, the assessor by codeDirectory/className, talking to a
   service the test runs (classArgs url, config, metric).
3. The same with a url where nothing listens: every trial runs to its end and the experiment
   is DONE (the assessor fails open).

Everything NNI decided is read through its REST API while the experiment runs; what the
service decided, through the service. Run by test/e2e/nni.sh (`npm run e2e:nni`).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from bttackler import BTTacklerClient, LocalService
from nni_run import REPO, Experiment, dispatcher_log, free_port, nni_env, nnictl, pid_alive, render, started_experiments

HERE = Path(__file__).resolve().parent
MAIN_JS = REPO / "dist" / "cli" / "main.js"
NODE = shutil.which("node")
EPOCHS = json.loads((HERE / "mnist" / "search_space.json").read_text())["epochs"]["_value"][0]
STOPPED = {"USER_CANCELED", "EARLY_STOPPED"}  # NNI 3.0 local: a trial killed by the assessor is USER_CANCELED (see docs/nni.md)
STOP_LINE = re.compile(
    r"bttackler stops trial (?P<trial>\S+) at step (?P<step>\d+) \(study (?P<study>[^)]+)\): "
    r"symptom (?P<symptoms>[A-Z,]+); reason: (?P<reason>.+?); evidence: (?P<evidence>.+)$",
    re.MULTILINE,
)

pytestmark = pytest.mark.skipif(NODE is None or not MAIN_JS.is_file(), reason="needs node and a built service (npm run build)")


@pytest.fixture
def experiments() -> Iterator[List[Experiment]]:
    yield from started_experiments()


def stop_lines(log: str) -> dict:
    return {m["trial"]: m for m in STOP_LINE.finditer(log)}


def wait_for_trial_ends(url: str, study: str, count: int, limit: float = 20.0) -> None:
    """Waits until the assessor has passed every trial's end to the service.

    NNI's dispatcher drops what its assessor thread has not done yet when the experiment
    stops, and `nnictl --foreground` stops it right after DONE: let the last trial_end through first.
    """
    client = BTTacklerClient(url, timeout=5)
    end = time.monotonic() + limit
    try:
        while True:
            trials = (client.study_trials(study) or {}).get("trials", [])
            if len([t for t in trials if t.get("ended")]) >= count or time.monotonic() > end:
                return
            time.sleep(0.2)
    finally:
        client.close()


def test_mnist_js_trials_with_the_registered_assessor(tmp_path: Path, experiments: List[Experiment]) -> None:
    env = nni_env(tmp_path, BTTACKLER_CLI=str(MAIN_JS))  # how the assessor finds `bttackler serve` here
    meta = subprocess.run([sys.executable, "-m", "bttackler.nni"], capture_output=True, text=True, check=True).stdout.strip()
    registered = nnictl(["algo", "register", "--meta", meta], env)
    assert registered.returncode == 0 and "registered sucessfully" in registered.stdout, registered.stdout + registered.stderr
    assert "BTTackler" in nnictl(["algo", "list"], env).stdout
    try:
        workdir = tmp_path / "experiments"
        config = render(HERE / "mnist" / "config.yml", tmp_path / "mnist.yml", HERE=HERE / "mnist", REPO=REPO, WORKDIR=workdir)
        assert "assessor:\n  name: BTTackler\ntrainingService" in config.read_text()  # the two lines a user writes
        exp = Experiment(config, env, workdir).start()
        experiments.append(exp)
        exp.wait_for_api()
        snap = exp.wait_done(limit=240)
        live = re.search(r"study (\S+) created on the service at (ws://\S+)", dispatcher_log(exp.directory))
        assert live, dispatcher_log(exp.directory)
        wait_for_trial_ends(live[2], live[1], len(snap.trials))  # the local service runs as long as the experiment
        assert exp.finish() == 0
    finally:
        unregistered = nnictl(["algo", "unregister", "BTTackler"], env)
        assert unregistered.returncode == 0, unregistered.stdout + unregistered.stderr
    report = snap.describe()

    # NNI: the experiment is DONE, all four trials ran and ended
    assert snap.status["status"] == "DONE", report
    assert len(snap.trials) == 4 and all(t["status"] in {"SUCCEEDED"} | STOPPED for t in snap.trials), report
    assert len(snap.params) == 4, report  # every trial reported, so its real parameters are known
    for t in snap.trials:  # no intermediate result went missing (NNI shows the assessor only an unbroken prefix)
        assert [m["sequence"] for m in snap.periodical(t["trialJobId"])] == list(range(len(snap.periodical(t["trialJobId"])))), report
    [bad] = snap.find(lr=50, loss="mse")
    [good] = snap.find(lr=0.05, loss="crossentropy")
    assert snap.trial(bad)["status"] in STOPPED, report
    assert len(snap.periodical(bad)) < EPOCHS, report  # cut short: fewer epochs reported than planned
    assert snap.trial(good)["status"] == "SUCCEEDED", report
    assert len(snap.periodical(good)) == EPOCHS and len(snap.final(good)) == 1, report

    # the dispatcher log: one stop line per stopped trial, with trial, step, symptom, reason and evidence
    log = dispatcher_log(exp.directory)
    lines = stop_lines(log)
    assert bad in lines and good not in lines, log
    study = f"nni-{exp.id}"
    assert lines[bad]["study"] == study and int(lines[bad]["step"]) < EPOCHS and lines[bad]["evidence"].startswith(lines[bad]["symptoms"].split(",")[0])
    for tid, t in ((t["trialJobId"], t) for t in snap.trials):  # only the trials the assessor stopped are cut short
        assert (tid in lines) == (t["status"] in STOPPED), report + "\n" + log

    # the local service ran beside the dispatcher and was stopped with the experiment
    started = re.search(r"started a local bttackler service \(pid (\d+)\): (.+)$", log, re.MULTILINE)
    assert started and str(MAIN_JS) in started[2] and "--exit-with-parent" in started[2], log
    deadline = time.monotonic() + 10
    while pid_alive(int(started[1])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(int(started[1])), "the local bttackler service outlived its experiment"

    # its database stayed in the experiment directory: the stop and its reason are recorded there
    db = exp.directory / "bttackler" / "bttackler.db"
    assert db.is_file()
    with LocalService(db=db, command=[NODE, str(MAIN_JS)]) as reopened:
        client = BTTacklerClient(service=reopened, timeout=20)
        trials = {t["trial"]: t for t in client.study_trials(study)["trials"]}
        history = client.history(study, bad)["verdicts"]
        client.close()
    assert trials[bad]["stopped_at"] == int(lines[bad]["step"]) and trials[bad]["reason"] == lines[bad]["reason"]
    assert trials[bad]["ended"] == "pruned"
    assert "stopped_at" not in trials[good] and trials[good]["ended"] == "complete"
    for t in snap.trials:  # the assessor saw every result of every trial it did not stop
        if t["status"] == "SUCCEEDED":
            tid = t["trialJobId"]
            assert trials[tid]["last_step"] == len(snap.periodical(tid)) - 1 and trials[tid]["ended"] == "complete", (tid, trials)
    assert history[-1]["stop"] is True and history[-1]["reason"] == lines[bad]["reason"]


def test_python_trial_reporting_payload_dicts(tmp_path: Path, experiments: List[Experiment]) -> None:
    env = nni_env(tmp_path)
    study = "e2e-python"
    with LocalService(db=tmp_path / "service.db", command=[NODE, str(MAIN_JS)]) as service:
        url = service.url(timeout=20)
        assert url is not None, service.error
        workdir = tmp_path / "experiments"
        config = render(
            HERE / "python_trial" / "config.yml", tmp_path / "python.yml",
            HERE=HERE / "python_trial", REPO=REPO, WORKDIR=workdir, PYTHON=sys.executable, URL=url, STUDY=study,
        )
        exp = Experiment(config, env, workdir).start()
        experiments.append(exp)
        exp.wait_for_api()
        snap = exp.wait_done(limit=180)
        wait_for_trial_ends(url, study, len(snap.trials))
        assert exp.finish() == 0
        client = BTTacklerClient(url, timeout=10)
        trials = {t["trial"]: t for t in client.study_trials(study)["trials"]}
        histories = {tid: client.history(study, tid)["verdicts"] for tid in trials}
        client.close()
    report = snap.describe()
    log = dispatcher_log(exp.directory)
    lines = stop_lines(log)

    assert snap.status["status"] == "DONE", report
    assert len(snap.trials) == 4 and len(snap.params) == 4, report
    [bad_payload] = snap.find(lr=10, report="payload")
    [bad_number] = snap.find(lr=10, report="number")
    healthy = snap.find(lr=0.05)
    assert len(healthy) == 2, report

    for bad in (bad_payload, bad_number):  # NaN from the first epoch: stopped at once
        assert snap.trial(bad)["status"] in STOPPED, report
        assert len(snap.periodical(bad)) < 8, report
        assert bad in lines and lines[bad]["study"] == study and lines[bad]["symptoms"] == "NF", log
        assert trials[bad]["ended"] == "pruned" and trials[bad]["reason"] == lines[bad]["reason"], trials
    for good in healthy:
        assert snap.trial(good)["status"] == "SUCCEEDED", report
        assert len(snap.periodical(good)) == 8 and good not in lines, report
        assert "stopped_at" not in trials[good] and trials[good]["ended"] == "complete" and trials[good]["last_step"] == 7

    # a payload dict reaches the service whole: its flag and layer statistics are diagnosed too;
    # a plain number is one metric (classArgs metric: val_loss) and only the metric rules see it
    rules_payload = {s["rule"] for s in histories[bad_payload][-1]["symptoms"]}
    rules_number = {s["rule"] for s in histories[bad_number][-1]["symptoms"]}
    assert {"non_finite_flag", "non_finite_layer"} <= rules_payload, histories[bad_payload]
    assert rules_number == {"non_finite_metric"}, histories[bad_number]
    assert "val_loss" in histories[bad_number][-1]["reason"]
    # the study was opened with the config from classArgs
    assert "bttackler assessor: study e2e-python created" in log, log


def test_an_unreachable_service_never_harms_the_experiment(tmp_path: Path, experiments: List[Experiment]) -> None:
    port = free_port()  # nothing listens there
    workdir = tmp_path / "experiments"
    config = render(
        HERE / "python_trial" / "config.yml", tmp_path / "python.yml",
        HERE=HERE / "python_trial", REPO=REPO, WORKDIR=workdir, PYTHON=sys.executable, URL=f"ws://127.0.0.1:{port}", STUDY="unreachable",
    )
    exp = Experiment(config, nni_env(tmp_path), workdir).start()
    experiments.append(exp)
    exp.wait_for_api()
    snap = exp.wait_done(limit=180)
    assert exp.finish() == 0
    report = snap.describe()
    log = dispatcher_log(exp.directory)

    # every trial ran to its end, the exploding ones included: no assessor verdict, no harm
    assert snap.status["status"] == "DONE", report
    assert len(snap.trials) == 4 and all(t["status"] == "SUCCEEDED" for t in snap.trials), report
    assert all(len(snap.periodical(t["trialJobId"])) == 8 for t in snap.trials), report
    assert not stop_lines(log), log
    assert re.search(rf"WARNING \(bttackler/.*service at ws://127\.0\.0\.1:{port}: .*fail open", log), log
    assert "Traceback" not in log and "Assessor error" not in log, log

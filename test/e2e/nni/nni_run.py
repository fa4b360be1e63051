"""Runs a real NNI 3.0 experiment (`nnictl create --foreground`) and reads it through NNI's REST API.

``nnictl create --foreground`` polls the experiment every 10 s and, once it is DONE, stops the
NNI manager, taking the REST API with it; its exit code is 0 even when the experiment ended
in ERROR. To read the final state through the REST API, the driver pauses the nnictl process
(SIGSTOP) once the API answers: the manager is a separate process (its own process group) and
runs on; nnictl is resumed (SIGCONT) after the driver has read what it needs, then sees DONE
and stops the experiment by itself as it would without us.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import string
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = REPO / ".venv" / "bin"
TERMINAL = {"SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template: Path, out: Path, **values: Any) -> Path:
    """Writes the template with ${NAME} filled in (every placeholder must be given)."""
    text = string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()})
    out.write_text(text)
    return out


def nni_env(tmp: Path, **extra: str) -> Dict[str, str]:
    """The environment of nnictl: the venv first on PATH, NNI's config (registered algorithms) and home in tmp."""
    # npm_*: NNI's manager (nni_node/common/globals/unittest.js) takes itself for its own unit tests
    # when npm_lifecycle_event starts with "test" (as under `npm test`) and exits at once, silently.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NNI_", "BTTACKLER_", "npm_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NNI_CONFIG_DIR"] = str(tmp / "nni-config")  # registered_algorithms.yml lives here, not in .venv
    env["HOME"] = str(tmp / "home")  # NNI keeps its experiment list in ~/nni-experiments/.experiment
    env["PYTHONUNBUFFERED"] = "1"
    (tmp / "nni-config").mkdir(exist_ok=True)
    (tmp / "home").mkdir(exist_ok=True)
    env.update(extra)
    return env


def nnictl(args: List[str], env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "nnictl"), *args], env=dict(env), capture_output=True, text=True, timeout=timeout)


@dataclass
class Snapshot:
    """What the REST API said once the experiment was DONE."""

    status: Dict[str, Any]
    experiment: Dict[str, Any]
    trials: List[Dict[str, Any]]
    metrics: Dict[str, List[Dict[str, Any]]]  # trial id -> its metric records
    params: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # trial id -> the parameters it really got

    def periodical(self, trial_id: str) -> List[Dict[str, Any]]:
        return [m for m in self.metrics.get(trial_id, []) if m.get("type") == "PERIODICAL"]

    def final(self, trial_id: str) -> List[Dict[str, Any]]:
        return [m for m in self.metrics.get(trial_id, []) if m.get("type") == "FINAL"]

    def trial(self, trial_id: str) -> Dict[str, Any]:
        return next(t for t in self.trials if t["trialJobId"] == trial_id)

    def find(self, **params: Any) -> List[str]:
        """The ids of the trials that ran with these parameter values."""
        return [tid for tid, p in self.params.items() if all(p.get(k) == v for k, v in params.items())]

    def describe(self) -> str:
        rows = [
            f"{t['trialJobId']} {t['status']:<13} params={self.params.get(t['trialJobId'])} "
            f"periodical={len(self.periodical(t['trialJobId']))} final={len(self.final(t['trialJobId']))}"
            for t in self.trials
        ]
        return f"experiment {self.status}\n" + "\n".join(rows)


#: `nnictl` with a longer start-up wait for its manager, and a line when the manager exits (see the file).
NNICTL_PATIENT = Path(__file__).resolve().with_name("nnictl_patient.py")


class Experiment:
    """One `nnictl create --config CONFIG --port PORT --foreground` run."""

    def __init__(self, config: Path, env: Mapping[str, str], workdir: Path) -> None:
        self.config = config
        self.env = dict(env)
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir.parent / f"nnictl-{config.stem}.log"  # what nnictl and the NNI manager print
        self.proc: Optional[subprocess.Popen] = None
        self.paused = False
        self.id: Optional[str] = None

    @property
    def directory(self) -> Path:
        assert self.id is not None
        return self.workdir / self.id

    def start(self) -> "Experiment":
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), str(NNICTL_PATIENT), "create", "--config", str(self.config), "--port", str(self.port), "--foreground"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def rest(self, path: str, timeout: float = 5.0) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/nni{path}", timeout=timeout) as res:
            return json.loads(res.read().decode("utf-8"))

    def wait_for_api(self, limit: float = 90.0) -> None:
        """Waits until the REST API answers, then pauses nnictl so that it cannot stop the experiment before we read it.

        While it does not answer, the state of nnictl's processes is sampled every 3 s for the failure message.
        """
        assert self.proc is not None
        end = time.monotonic() + limit
        seen: List[str] = []
        next_look = time.monotonic() + 3.0
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"nnictl exited with {self.proc.returncode} before its REST API answered:\n{self.output()}\n"
                    + "\n".join(seen[-6:]) + "\n" + self.manager_logs()
                )
            if time.monotonic() >= next_look:
                seen.append(self.process_states())
                next_look = time.monotonic() + 3.0
            try:
                profile = self.rest("/experiment", timeout=2.0)  # empty until the manager has the experiment
                if isinstance(profile, dict) and profile.get("id"):
                    self.id = profile["id"]
                    break
                raise ValueError("no experiment yet")
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                if time.monotonic() > end:
                    raise AssertionError(
                        f"NNI's REST API did not answer within {limit:g} s:\n{self.output()}\n" + "\n".join(seen[-6:]) + "\n" + self.manager_logs()
                    ) from None
                time.sleep(0.2)
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def wait_done(self, limit: float) -> Snapshot:
        """Polls until the experiment is DONE (fails on ERROR or after `limit` s) and reads trials and metrics."""
        end = time.monotonic() + limit
        while True:
            status = self.rest("/check-status")
            if status.get("status") == "DONE":
                break
            if status.get("status") == "ERROR":
                raise AssertionError(f"the experiment is in ERROR: {status}\n{self.output()}")
            if time.monotonic() > end:
                raise AssertionError(f"the experiment is not DONE after {limit:g} s: {status}\n{self.output()}")
            time.sleep(0.5)
        trials = self.rest("/trial-jobs")
        metrics = {t["trialJobId"]: self.rest(f"/metric-data/{t['trialJobId']}") for t in trials}
        snapshot = Snapshot(status=status, experiment=self.rest("/experiment"), trials=trials, metrics=metrics)
        snapshot.params = _actual_parameters(trials, metrics)
        return snapshot

    def finish(self, limit: float = 60.0) -> int:
        """Lets nnictl go on: it sees DONE, stops the experiment and exits. Returns its exit code."""
        assert self.proc is not None
        if self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.paused = False
        try:
            return self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"nnictl did not exit within {limit:g} s after the experiment was DONE:\n{self.output()}") from None

    def kill(self) -> None:
        """Cleanup after a failure: nnictl stops its experiment on SIGINT; failing that, kill it and its manager."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        children = _children(proc.pid)
        if self.paused:
            os.kill(proc.pid, signal.SIGCONT)
            self.paused = False
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pid in children:  # the NNI manager, if it is still there
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def process_states(self) -> str:
        """One line per descendant of nnictl: pid, state, CPU ticks, kernel wait channel, command; plus the load."""
        assert self.proc is not None
        lines = [f"t={time.monotonic():.1f} load={_read('/proc/loadavg').strip()} port {self.port} listening={_listening(self.port)}"]
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            stat = _read(f"/proc/{pid}/stat")
            fields = stat.rsplit(")", 1)[1].split() if ")" in stat else []
            state, ticks = (fields[0], int(fields[11]) + int(fields[12])) if len(fields) > 12 else ("?", -1)
            cmd = _read(f"/proc/{pid}/cmdline").replace("\0", " ")[:120]
            # a zombie's wait status is field 52 of /proc/PID/stat (Linux >= 3.5)
            exit_status = f" wait_status {fields[49]}" if state == "Z" and len(fields) > 49 else ""
            lines.append(f"  pid {pid} state {state} cpu_ticks {ticks}{exit_status} wchan {_read(f'/proc/{pid}/wchan') or '-'} {cmd}")
            todo.extend(_children(pid))
        return "\n".join(lines)

    def manager_logs(self) -> str:
        """The tails of the NNI manager's own log files under the experiment directory."""
        parts = []
        for path in sorted(self.workdir.glob("*/log/*.log")):
            parts.append(f"--- {path} ---\n{_read(str(path))[-2000:]}")
        return "\n".join(parts) or f"(no log files under {self.workdir})"

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no nnictl output)"


def started_experiments() -> Iterator[List[Experiment]]:
    """The body of a test's ``experiments`` fixture: yields the list the test appends every experiment it starts to,
    then kills each of them (which only does something when the test failed half-way)."""
    started: List[Experiment] = []
    yield started
    for exp in started:
        exp.kill()


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> List[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _actual_parameters(trials: List[Dict[str, Any]], metrics: Mapping[str, List[Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """Trial id -> the parameters the trial really ran with.

    NNI 3.0's local training service hands the queued parameters to trials in the order the
    trials ask for them, so a trial's ``hyperParameters`` in /trial-jobs can belong to another
    trial started at the same time. What a trial got shows in the ``parameterId`` of the
    metrics it reported; the parameters of that id are in some trial's ``hyperParameters``.
    """
    by_id: Dict[str, Dict[str, Any]] = {}
    for t in trials:
        for text in t.get("hyperParameters") or []:
            record = json.loads(text)
            by_id[str(record["parameter_id"])] = record["parameters"]
    result: Dict[str, Dict[str, Any]] = {}
    for t in trials:
        ids = {str(m.get("parameterId")) for m in metrics.get(t["trialJobId"], [])}
        if len(ids) == 1 and next(iter(ids)) in by_id:
            result[t["trialJobId"]] = by_id[next(iter(ids))]
    return result


def dispatcher_log(experiment_dir: Path) -> str:
    path = experiment_dir / "log" / "dispatcher.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

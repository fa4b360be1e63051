"""run_node_trial(): a JavaScript trial (the bttackler trial SDK) as the body of an Optuna objective.

The parent side of the "Optuna relay (JSON lines)" of docs/protocol.md: the child gets one
end of a socket pair as ``BTTACKLER_RELAY_FD``, writes one ``report`` line per epoch and
waits for one ``verdict`` line; at the end it writes a ``final`` line and closes its end.
"""
from __future__ import annotations

import collections
import json
import logging
import math
import os
import selectors
import shlex
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence

import optuna

from ._pruner import find_pruner
from ._report import report as report_payload

logger = logging.getLogger("bttackler")
_child_log = logging.getLogger("bttackler.trial")

DEFAULT_GRACE = 10.0
_KILL_WAIT = 5.0
_MAX_LINE = 1024 * 1024
_TAIL_LINES = 40
_TAIL_CHARS = 4000


class NodeTrialError(RuntimeError):
    """The trial's process failed: it crashed, exited without a final value, or ran out of time.

    Optuna records the trial as FAIL. ``study.optimize(..., catch=(NodeTrialError,))`` keeps the
    study going. ``returncode`` and ``stderr_tail`` (the last lines the process wrote) are kept.
    """

    def __init__(self, message: str, returncode: Optional[int] = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class _Tail:
    """Drains one pipe of the child in a thread (so it never fills) and keeps its last lines."""

    def __init__(self, stream: Any, name: str) -> None:
        self.lines: Deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._thread = threading.Thread(target=self._run, args=(stream, name), name=f"bttackler-trial-{name}", daemon=True)
        self._thread.start()

    def _run(self, stream: Any, name: str) -> None:
        try:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.lines.append(line)
                _child_log.debug("%s: %s", name, line)
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def text(self) -> str:
        text = "\n".join(self.lines).strip()
        return text if len(text) <= _TAIL_CHARS else "…" + text[-_TAIL_CHARS:]


def _describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _final_number(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value.get("default")
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def run_node_trial(
    trial: "optuna.trial.Trial",
    command: Sequence[str],
    params: Optional[Mapping[str, Any]] = None,
    *,
    metric: Optional[str] = None,
    grace: float = DEFAULT_GRACE,
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> float:
    """Runs a JavaScript trial (bttackler's trial SDK) as a child process and returns its final value.

    The child is started with ``BTTACKLER_RELAY_FD`` (one end of a socket pair),
    ``BTTACKLER_PARAMS`` (``params`` as JSON; default ``trial.params``) and
    ``BTTACKLER_TRIAL``. Each payload it reports goes through :func:`bttackler.optuna.report`
    (to the service and to ``trial.report``, the value chosen by ``metric`` or by the study's
    direction), then ``trial.should_prune()`` decides and the answer goes back as the child's
    verdict. On a prune the child is told to stop (a stop verdict, with the reason): it has
    ``grace`` seconds to exit by itself, then gets SIGTERM and, ``5`` s later, SIGKILL; then
    ``optuna.TrialPruned`` is raised. A child that exits with a code other than 0, without a
    final value, or outlives ``timeout`` seconds (``None``: no limit) raises
    :class:`NodeTrialError` with the tail of its standard error: Optuna records a failed trial.
    A child that closed its relay (after its final value) but does not exit is stopped the same
    way after ``grace`` seconds; its value counts. The child's standard output and error are
    drained into the ``bttackler.trial`` logger (debug level), so they never block it.

    Example:

        .. code-block:: python

            import optuna
            from bttackler.optuna import BTTacklerPruner, run_node_trial


            def objective(trial):
                params = {"lr": trial.suggest_float("lr", 1e-4, 10.0, log=True), "epochs": 4, "samples": 600}
                return run_node_trial(trial, ["node", "docs/examples/mnist/train.js"], params)


            study = optuna.create_study(direction="maximize", pruner=BTTacklerPruner())
            study.optimize(objective, n_trials=4)
    """
    if isinstance(command, (str, bytes)) or not isinstance(command, Sequence) or not command or not all(isinstance(c, str) and c for c in command):
        raise TypeError(f"command must be a non-empty list of strings such as ['node', 'train.js'], got {command!r}")
    if params is None:
        params = dict(trial.params)
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping (the trial's hyperparameters), got {params!r} ({type(params).__name__})")
    try:
        params_json = json.dumps(dict(params), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"params must be plain JSON ({exc}), got {params!r}") from None
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not math.isfinite(grace) or grace < 0:
        raise ValueError(f"grace must be a number of seconds >= 0, got {grace!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    return _Relay(trial, list(command), params_json, metric, float(grace), timeout, cwd, env).run()


class _Relay:
    def __init__(self, trial: Any, command: List[str], params_json: str, metric: Optional[str], grace: float,
                 timeout: Optional[float], cwd: Optional[str], env: Optional[Mapping[str, str]]) -> None:
        self.trial = trial
        self.command = command
        self.params_json = params_json
        self.metric = metric
        self.grace = grace
        self.timeout = timeout
        self.cwd = cwd
        self.env = env
        self.final: Any = None
        self.has_final = False
        self.pruned_reason: Optional[str] = None
        self.pruned_step: Optional[int] = None
        self.relay_ok = True
        self.skipping = False
        self.stopped_after_eof = False
        self.buffer = b""

    # ------------------------------------------------------------------ the child

    def _environment(self, fd: int) -> Dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        env.pop("NNI_TRIAL_COMMAND_CHANNEL", None)  # NNI would win over the relay in the child's detection
        env["BTTACKLER_RELAY_FD"] = str(fd)
        env["BTTACKLER_PARAMS"] = self.params_json
        env["BTTACKLER_TRIAL"] = f"optuna-trial-{self.trial.number}"
        return env

    def run(self) -> float:
        ours, theirs = socket.socketpair()
        try:
            fd = theirs.fileno()
            try:
                proc = subprocess.Popen(
                    self.command, pass_fds=[fd], env=self._environment(fd), cwd=self.cwd,
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )
            except OSError as exc:
                raise NodeTrialError(f"cannot start the trial process `{shlex.join(self.command)}`: {exc}") from None
        finally:
            theirs.close()  # the child has its copy: end-of-file comes when it exits
        out, err = _Tail(proc.stdout, "stdout"), _Tail(proc.stderr, "stderr")
        try:
            self._converse(ours, proc)
        finally:
            ours.close()
            if proc.poll() is None:
                self._stop(proc)
            out.join(2.0)
            err.join(2.0)
        return self._outcome(proc, err)

    def _stop(self, proc: subprocess.Popen) -> None:
        try:
            proc.terminate()
            try:
                proc.wait(_KILL_WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        except OSError:
            pass

    # ------------------------------------------------------------------ the conversation

    def _converse(self, sock: socket.socket, proc: subprocess.Popen) -> None:
        started = time.monotonic()
        stop_by: Optional[float] = None  # after a prune: the child must be gone by then
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ)
        eof = False
        eof_at: Optional[float] = None
        exited_at: Optional[float] = None
        try:
            while True:
                now = time.monotonic()
                if proc.poll() is not None:
                    if eof or (exited_at is not None and now - exited_at > 1.0):
                        return  # its end is closed (or held by a grandchild: stop waiting for it)
                    exited_at = exited_at or now
                if stop_by is None and self.pruned_reason is not None:
                    stop_by = now + self.grace
                if stop_by is not None and now >= stop_by:
                    logger.warning("bttackler: trial %s was pruned but its process is still running after %g s; stopping it",
                                   self.trial.number, self.grace)
                    self._stop(proc)
                    return
                if self.timeout is not None and now - started >= self.timeout:
                    self._stop(proc)
                    raise NodeTrialError(f"the trial process `{shlex.join(self.command)}` ran longer than {self.timeout:g} s and was stopped")
                if eof:  # the child closed its end: it should exit now
                    eof_at = eof_at or now
                    if now - eof_at >= self.grace:
                        logger.warning("bttackler: trial %s closed its relay but its process is still running after %g s; stopping it",
                                       self.trial.number, self.grace)
                        self.stopped_after_eof = True
                        self._stop(proc)
                        return
                    try:
                        proc.wait(0.1)
                    except subprocess.TimeoutExpired:
                        pass
                    continue
                if not sel.select(0.1):
                    continue
                try:
                    chunk = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    eof = True
                    sel.unregister(sock)
                    continue
                self._receive(sock, chunk)
        finally:
            sel.close()

    def _receive(self, sock: socket.socket, chunk: bytes) -> None:
        self.buffer += chunk
        while True:
            newline = self.buffer.find(b"\n")
            if newline < 0:
                if len(self.buffer) > _MAX_LINE:
                    if not self.skipping:
                        self._break(sock, f"a line longer than {_MAX_LINE} bytes")
                    self.skipping, self.buffer = True, b""  # the rest of that line is dropped too
                return
            line, self.buffer = self.buffer[:newline], self.buffer[newline + 1:]
            if self.skipping:
                self.skipping = False
            elif len(line) > _MAX_LINE:
                self._break(sock, f"a line longer than {_MAX_LINE} bytes")
            elif line.strip():
                self._handle(sock, line)

    def _break(self, sock: socket.socket, why: str) -> None:
        """No more verdicts: the child sees its relay closed and trains on unmonitored (its final still counts)."""
        if not self.relay_ok:
            return
        logger.warning("bttackler: trial %s sent %s; the relay is closed, the trial runs on without verdicts", self.trial.number, why)
        self.relay_ok = False
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _handle(self, sock: socket.socket, line: bytes) -> None:
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError as exc:
            logger.warning("bttackler: trial %s sent a line that is not JSON (%s); ignored", self.trial.number, exc)
            return
        if not isinstance(message, dict):
            logger.warning("bttackler: trial %s sent a line that is not a JSON object; ignored", self.trial.number)
            return
        kind = message.get("type")
        if kind == "report" and self.relay_ok:
            self._answer(sock, self._verdict(message.get("payload")))
        elif kind == "final":
            self.final, self.has_final = message.get("value"), True
        else:
            logger.debug("bttackler: trial %s sent a line of unknown type %r; ignored", self.trial.number, kind)

    def _verdict(self, payload: Any) -> Dict[str, Any]:
        if self.pruned_reason is not None:
            return {"type": "verdict", "stop": True, "reason": self.pruned_reason}
        step = payload.get("step") if isinstance(payload, Mapping) else None
        try:
            report_payload(self.trial, payload, metric=self.metric)
        except (TypeError, ValueError) as exc:
            logger.warning("bttackler: trial %s step %r not reported to Optuna: %s", self.trial.number, step, exc)
            return {"type": "verdict", "stop": False}
        if not self.trial.should_prune():
            return {"type": "verdict", "stop": False}
        study = self.trial.study
        pruner = find_pruner(study.pruner)
        record = pruner.stop_record(study, self.trial.number) if pruner is not None else None
        if record is not None and record.get("reason"):
            reason = str(record["reason"])
        else:
            reason = f"{type(study.pruner).__name__} pruned the trial at step {step}"
        self.pruned_reason, self.pruned_step = reason, step if isinstance(step, int) else None
        return {"type": "verdict", "stop": True, "reason": reason}

    def _answer(self, sock: socket.socket, verdict: Mapping[str, Any]) -> None:
        data = (json.dumps(verdict, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            sock.settimeout(5.0)  # a verdict is tiny; a child that does not read it has failed open already
            sock.sendall(data)
        except OSError as exc:
            logger.debug("bttackler: verdict for trial %s not delivered (%s)", self.trial.number, exc)
        finally:
            sock.settimeout(None)

    # ------------------------------------------------------------------ the outcome

    def _end(self, state: str) -> None:
        pruner = find_pruner(self.trial.study.pruner)
        if pruner is not None:
            pruner._end(self.trial.study, self.trial.number, state)

    def _outcome(self, proc: subprocess.Popen, err: _Tail) -> float:
        code = proc.poll()
        if self.pruned_reason is not None:
            self._end("pruned")
            at = f" at step {self.pruned_step}" if self.pruned_step is not None else ""
            raise optuna.TrialPruned(f"pruned{at}: {self.pruned_reason}")
        tail = err.text()
        where = f"the trial process `{shlex.join(self.command)}`"
        if self.stopped_after_eof and self.has_final:  # it had delivered its value and then would not exit
            self._end("complete")
            return _final_number(self.final)
        if code != 0 or not self.has_final:
            self._end("failed")
            what = _describe_exit(code) if code != 0 else "exited without a final value (trial.final was never called)"
            raise NodeTrialError(f"{where} {what}; its standard error ended with:\n{tail or '(nothing)'}", code, tail)
        self._end("complete")
        return _final_number(self.final)

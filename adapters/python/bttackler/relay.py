"""The parent side of the relay (JSON lines, docs/protocol.md), for any host: runs a JavaScript trial (bttackler's
trial SDK) as a child process and answers each of its reports with a verdict.

The child gets one end of a socket pair as ``BTTACKLER_RELAY_FD``, its hyperparameters as ``BTTACKLER_PARAMS``
and a name as ``BTTACKLER_TRIAL``; it writes one ``report`` line per epoch and waits for one ``verdict`` line; at
the end it writes a ``final`` line and closes its end. The host decides each verdict (``decide``);
:func:`bttackler.optuna.run_node_trial` and :func:`bttackler.ray.run_node_trial` are the hosts.
"""
from __future__ import annotations

import collections
import ctypes
import json
import logging
import math
import os
import selectors
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

logger = logging.getLogger("bttackler")
_child_log = logging.getLogger("bttackler.trial")

DEFAULT_GRACE = 10.0
_KILL_WAIT = 5.0
_MAX_LINE = 1024 * 1024
_TAIL_LINES = 40
_TAIL_CHARS = 4000
_PR_SET_PDEATHSIG = 1


class NodeTrialError(RuntimeError):
    """The trial's process failed: it crashed, exited without a final value, or ran out of time.

    The host records a failed trial (Optuna: FAIL; Ray Tune: ERROR). ``returncode`` and
    ``stderr_tail`` (the last lines the process wrote) are kept.
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


def describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def final_number(value: Any) -> float:
    if isinstance(value, Mapping):
        value = value.get("default")
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def checked_arguments(command: Any, params: Any, grace: Any, timeout: Any) -> Tuple[List[str], str]:
    """The command as a list and the params as JSON, after the checks every host makes (TypeError/ValueError naming the value)."""
    if isinstance(command, (str, bytes)) or not isinstance(command, Sequence) or not command or not all(isinstance(c, str) and c for c in command):
        raise TypeError(f"command must be a non-empty list of strings such as ['node', 'train.js'], got {command!r}")
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
    return list(command), params_json


def _terminate_with_parent_thread() -> None:
    """In the child before exec (Linux): SIGTERM when the thread that started it ends, the process killed included."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass(frozen=True)
class RelayOutcome:
    """How a relayed child ended: its exit code, its final value (if it sent one), the stop it was told (if any)."""

    returncode: Optional[int]
    final: Any
    has_final: bool
    stop_reason: Optional[str]
    stop_step: Optional[int]
    stopped_after_eof: bool
    stderr_tail: str

    def failure(self, command: Sequence[str]) -> Optional[NodeTrialError]:
        """The error a host raises for a child that exited with a code other than 0 or without a final value; else None."""
        code = self.returncode
        if code == 0 and self.has_final:
            return None
        what = describe_exit(code) if code != 0 else "exited without a final value (trial.final was never called)"
        return NodeTrialError(f"the trial process `{shlex.join(command)}` {what}; its standard error ended with:\n"
                              f"{self.stderr_tail or '(nothing)'}", code, self.stderr_tail)


class RelayedTrial:
    """One child process and its relay. ``decide(payload)`` answers each report: a stop reason, or None to go on.

    After a stop the child has ``grace`` seconds to exit by itself, then gets SIGTERM and, 5 s later, SIGKILL;
    reports that arrive meanwhile are answered "stop" again without asking ``decide``. ``timeout`` (None: no
    limit) bounds the whole run. ``label`` names the trial in log messages. With ``die_with_parent`` (Linux) the
    child also gets SIGTERM when the thread that started it ends, so that a host that kills the process that runs
    the trial (Ray ends a stopped trial's worker) leaves no training behind.
    """

    def __init__(self, command: List[str], params_json: str, name: str, decide: Callable[[Any], Optional[str]], *,
                 label: str, grace: float = DEFAULT_GRACE, timeout: Optional[float] = None, cwd: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None, die_with_parent: bool = False) -> None:
        self.command = command
        self.params_json = params_json
        self.name = name
        self.decide = decide
        self.label = label
        self.grace = grace
        self.timeout = timeout
        self.cwd = cwd
        self.env = env
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.final: Any = None
        self.has_final = False
        self.stop_reason: Optional[str] = None
        self.stop_step: Optional[int] = None
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
        env["BTTACKLER_TRIAL"] = self.name
        return env

    def run(self) -> RelayOutcome:
        """Runs the child to its end (or stops it); what happened. Raises NodeTrialError when it cannot start or
        outlives ``timeout``."""
        ours, theirs = socket.socketpair()
        try:
            fd = theirs.fileno()
            try:
                proc = subprocess.Popen(
                    self.command, pass_fds=[fd], env=self._environment(fd), cwd=self.cwd,
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    preexec_fn=_terminate_with_parent_thread if self.die_with_parent else None,
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
        return RelayOutcome(proc.poll(), self.final, self.has_final, self.stop_reason, self.stop_step, self.stopped_after_eof, err.text())

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
                if stop_by is None and self.stop_reason is not None:
                    stop_by = now + self.grace
                if stop_by is not None and now >= stop_by:
                    logger.warning("bttackler: trial %s was stopped but its process is still running after %g s; stopping it",
                                   self.label, self.grace)
                    self._stop(proc)
                    return
                if self.timeout is not None and now - started >= self.timeout:
                    self._stop(proc)
                    raise NodeTrialError(f"the trial process `{shlex.join(self.command)}` ran longer than {self.timeout:g} s and was stopped")
                if eof:  # the child closed its end: it should exit now
                    eof_at = eof_at or now
                    if now - eof_at >= self.grace:
                        logger.warning("bttackler: trial %s closed its relay but its process is still running after %g s; stopping it",
                                       self.label, self.grace)
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
        logger.warning("bttackler: trial %s sent %s; the relay is closed, the trial runs on without verdicts", self.label, why)
        self.relay_ok = False
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _handle(self, sock: socket.socket, line: bytes) -> None:
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError as exc:
            logger.warning("bttackler: trial %s sent a line that is not JSON (%s); ignored", self.label, exc)
            return
        if not isinstance(message, dict):
            logger.warning("bttackler: trial %s sent a line that is not a JSON object; ignored", self.label)
            return
        kind = message.get("type")
        if kind == "report" and self.relay_ok:
            self._answer(sock, self._verdict(message.get("payload")))
        elif kind == "final":
            self.final, self.has_final = message.get("value"), True
        else:
            logger.debug("bttackler: trial %s sent a line of unknown type %r; ignored", self.label, kind)

    def _verdict(self, payload: Any) -> Dict[str, Any]:
        if self.stop_reason is None:
            reason = self.decide(payload)
            if reason is None:
                return {"type": "verdict", "stop": False}
            step = payload.get("step") if isinstance(payload, Mapping) else None
            self.stop_reason, self.stop_step = reason, step if isinstance(step, int) else None
        return {"type": "verdict", "stop": True, "reason": self.stop_reason}

    def _answer(self, sock: socket.socket, verdict: Mapping[str, Any]) -> None:
        data = (json.dumps(verdict, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            sock.settimeout(5.0)  # a verdict is tiny; a child that does not read it has failed open already
            sock.sendall(data)
        except OSError as exc:
            logger.debug("bttackler: verdict for trial %s not delivered (%s)", self.label, exc)
        finally:
            sock.settimeout(None)

"""``BTTacklerAssessor``: an NNI 3.0 assessor that diagnoses trials through `bttackler serve`.

NNI calls ``assess_trial(trial_job_id, trial_history)`` on its dispatcher's assessor thread,
one call at a time and without a timeout, each time a trial reports an intermediate result;
an exception there stalls the experiment. So every hook here is wrapped: whatever goes wrong
(the service is unreachable or slow, a value makes no sense, a bug) answers
``AssessResult.Good`` and logs a warning. An assessment takes at most ``timeout`` seconds in
all: each of its calls to the service gets what is left of that budget. Only the very first
one may wait up to ``STARTUP_WAIT`` seconds for a local service to start.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from nni.assessor import AssessResult, Assessor

from ..client import BTTacklerClient, should_stop
from ..local_service import STARTUP_WAIT, LocalService
from ..objective import with_objective
from .class_args import AssessorSettings, check_class_args
from .experiment import ExperimentContext, experiment_context
from .payloads import to_payload

logger = logging.getLogger("bttackler.nni")
_service_log = logging.getLogger("bttackler.service")

_EVIDENCE_CHARS = 400
_WARN_INTERVAL = 60.0


@dataclass
class _TrialState:
    sent: int = 0  # how many history values the service has acknowledged (or refused for good)
    stopped: Optional[Dict[str, Any]] = None  # the verdict that stopped the trial


class BTTacklerAssessor(Assessor):
    """Stops NNI trials that bttackler diagnoses as broken (NaN, exploding or vanishing gradients, ...).

    Register it once with ``nnictl algo register --meta "$(python -m bttackler.nni)"``; then
    two lines of the experiment's YAML are enough::

        assessor:
          name: BTTackler

    Without ``url`` it starts its own ``bttackler serve`` on the first intermediate result
    (its SQLite file is ``<experiment dir>/bttackler/bttackler.db``) and stops it when the
    experiment ends. A stop verdict is answered ``Bad`` once (NNI then kills the trial, and
    the stop is logged with trial, step, symptoms and evidence); everything else, faults
    included, is ``Good``. The classArgs (all optional) are checked here, naming any bad value:

    - ``url``: the ``ws://host:port`` of a running service (then no local service is started);
    - ``token``: the service's token (default: the ``BTTACKLER_TOKEN`` environment variable);
    - ``timeout``: seconds one assessment may wait for the service (default 5);
    - ``study``: the service's study (default ``nni-<experiment id>``);
    - ``config``: the study configuration (config.v1, checked by the service);
    - ``optimize_mode``: ``maximize`` (default) or ``minimize``, how to read plain numbers;
    - ``metric``: the payload metric a plain number stands for (default ``val_acc`` when
      maximizing, ``train_loss`` when minimizing);
    - ``command``: how to run the local service (default: ``BTTACKLER_CLI``, else ``bttackler`` on PATH);
    - ``db``: the local service's SQLite file (default in the experiment directory).

    Example (outside NNI, with the built service of this repository, from its root; run as a
    doctest by ``npm run test:python``):

        >>> from nni.assessor import AssessResult
        >>> from bttackler.nni import BTTacklerAssessor
        >>> assessor = BTTacklerAssessor(command=["node", "dist/cli/main.js"], db=":memory:", study="demo")
        >>> history = [{"default": 0.1, "step": 0, "metrics": {"train_loss": 2.3}}]
        >>> assessor.assess_trial("trial-1", history)
        <AssessResult.Good: True>
        >>> history.append({"default": 0.1, "step": 1, "metrics": {"train_loss": float("nan")}})
        >>> assessor.assess_trial("trial-1", history)  # NF: logged with its evidence
        <AssessResult.Bad: False>
        >>> assessor.trial_end("trial-1", False)
        >>> assessor._on_exit()  # NNI calls this when the experiment ends: the local service stops
    """

    def __init__(self, **class_args: Any) -> None:
        self._settings: AssessorSettings = check_class_args(**class_args)
        self._experiment: ExperimentContext = experiment_context()
        self._study = self._settings.study or f"nni-{self._experiment.id or 'standalone'}"
        self._lock = threading.Lock()
        self._client: Optional[BTTacklerClient] = None
        self._service: Optional[LocalService] = None
        self._opened = False
        self._waited_for_start = False
        self._disabled: Optional[str] = None
        self._closed = False
        self._trials: Dict[str, _TrialState] = {}
        self._last_warned: Dict[str, float] = {}
        logger.info("bttackler assessor: %s; connects on the first intermediate result", self._settings.describe(self._study))

    # ------------------------------------------------------------------ NNI hooks

    def assess_trial(self, trial_job_id: str, trial_history: List[Any]) -> AssessResult:
        """Reports the history values the service has not seen yet; Bad when a verdict says stop (once per trial)."""
        try:
            with self._lock:
                return self._assess(str(trial_job_id), trial_history)
        except Exception as exc:  # noqa: BLE001 - never raise into NNI
            self._warn("internal", f"assess_trial({trial_job_id!r}) failed ({type(exc).__name__}: {exc}); answering Good", exc)
            return AssessResult.Good

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Tells the service how the trial ended: pruned (stopped here), complete or failed."""
        try:
            with self._lock:
                self._end(str(trial_job_id), bool(success))
        except Exception as exc:  # noqa: BLE001
            self._warn("internal", f"trial_end({trial_job_id!r}) failed ({type(exc).__name__}: {exc})", exc)

    def _on_exit(self) -> None:
        """Called by NNI's dispatcher when the experiment ends: close the connection, stop the local service."""
        self.close()

    def _on_error(self) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection and stops the local service, if any. Never raises; safe to repeat."""
        try:
            acquired = self._lock.acquire(timeout=self._settings.timeout + 1.0)
            try:
                self._closed = True
                client, service = self._client, self._service
                self._client = self._service = None
                if client is not None:
                    client.close()
                if service is not None:
                    service.stop()
                    logger.info("bttackler assessor: the local bttackler service was stopped")
            finally:
                if acquired:
                    self._lock.release()
        except Exception as exc:  # noqa: BLE001
            self._warn("internal", f"closing failed ({type(exc).__name__}: {exc})", exc)

    # ------------------------------------------------------------------ the work

    @property
    def study(self) -> str:
        """The service's study this assessor reports to."""
        return self._study

    @property
    def service(self) -> Optional[LocalService]:
        """The local service once started (None with ``url``, or before the first assessment)."""
        return self._service

    def _assess(self, trial: str, history: Sequence[Any]) -> AssessResult:
        state = self._trials.setdefault(trial, _TrialState())
        if state.stopped is not None:
            # NNI is killing it already (SIGINT, SIGKILL 5 s later). Another Bad would send another
            # SIGINT, which cuts a script short before it can send its final metric.
            return AssessResult.Good
        if self._closed or self._disabled is not None:
            return AssessResult.Good
        client = self._connect()
        if client is None:
            return AssessResult.Good
        if self._service is not None and not self._waited_for_start:
            self._waited_for_start = True
            self._service.url(timeout=max(self._settings.timeout, STARTUP_WAIT))
        deadline = time.monotonic() + self._settings.timeout
        if not self._open_study(client, deadline):
            return AssessResult.Good
        while state.sent < len(history) and time.monotonic() < deadline:
            position = state.sent
            payload = to_payload(history[position], position, self._settings.metric)
            verdict = client.report_and_assess(self._study, trial, payload, timeout=_left(deadline))
            if verdict is None:
                if time.monotonic() < deadline and client.health(timeout=_left(deadline)) is not None:
                    # The service is up but refused this value (not payload v1, a step out of order):
                    # skip it rather than stall the trial's diagnosis on it.
                    self._warn(
                        f"refused:{trial}",
                        f"the service refused result {position} of trial {trial} (see the warning above); skipping it",
                    )
                    state.sent = position + 1
                    continue
                return AssessResult.Good  # unreachable or slow: try these values again next time
            state.sent = position + 1
            if should_stop(verdict):
                state.stopped = verdict
                self._log_stop(trial, verdict)
                return AssessResult.Bad
        return AssessResult.Good

    def _end(self, trial: str, success: bool) -> None:
        state = self._trials.pop(trial, None)
        if state is None or state.sent == 0 or self._closed or self._disabled is not None:
            return  # the service never heard of this trial
        client = self._connect()
        if client is None:
            return
        outcome = "pruned" if state.stopped is not None else ("complete" if success else "failed")
        client.end_trial(self._study, trial, outcome)

    def _connect(self) -> Optional[BTTacklerClient]:
        if self._client is not None:
            return self._client
        settings = self._settings
        try:
            if settings.url is not None:
                self._client = BTTacklerClient(settings.url, token=settings.token, timeout=settings.timeout)
                return self._client
            db = settings.db or self._default_db()
            if db != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(db)), exist_ok=True)
            if self._experiment.directory is not None:  # in NNI's dispatcher: its process, its logging
                self._log_service_to(os.path.join(self._experiment.directory, "bttackler", "service.log"))
            service = LocalService(
                db=db,
                command=None if settings.command is None else list(settings.command),
                token=settings.token,
            )
            self._service = service
            self._client = BTTacklerClient(service=service, timeout=settings.timeout)  # starts it, without waiting
            pid = service.process.pid if service.process is not None else None
            logger.info("bttackler assessor: started a local bttackler service (pid %s): %s", pid, service.command_text)
            return self._client
        except Exception as exc:  # noqa: BLE001 - e.g. a bad BTTACKLER_TOKEN in the environment
            self._disabled = f"cannot set up the bttackler client: {type(exc).__name__}: {exc}"
            logger.error("bttackler assessor: %s; every trial is answered Good (no early stopping)", self._disabled)
            return None

    def _default_db(self) -> str:
        if self._experiment.directory is None:
            return ":memory:"  # not under an NNI dispatcher: nothing to keep
        return os.path.join(self._experiment.directory, "bttackler", "bttackler.db")

    def _log_service_to(self, path: str) -> None:
        """The local service's own log (JSON lines, one per stop among them) goes to a file beside its database."""
        if any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in _service_log.handlers):
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        _service_log.addHandler(handler)
        _service_log.setLevel(logging.DEBUG)
        _service_log.propagate = False  # not into NNI's dispatcher.log, which gets the stop lines already

    def _open_study(self, client: BTTacklerClient, deadline: float) -> bool:
        if self._opened:
            return True
        config = with_objective(self._settings.config, self._settings.optimize_mode)
        opened = client.open_study(self._study, config, timeout=_left(deadline))
        if opened is not None:
            self._opened = True
            config = opened.get("config") if isinstance(opened, Mapping) else None
            max_steps = config.get("max_steps") if isinstance(config, Mapping) else None
            where = self._service.address if self._service is not None else self._settings.url
            logger.info(
                "bttackler assessor: study %s %s on the service at %s (max_steps %s)",
                self._study, "created" if opened.get("created") else "reopened", where, max_steps,
            )
            return True
        if time.monotonic() < deadline and client.health(timeout=_left(deadline)) is not None:
            # The service answers but refused the study: an invalid config, or a different one
            # than the study's events were diagnosed with. Diagnosing with another config would
            # be wrong, so this assessor stops assessing.
            self._disabled = f"the service refused to open study {self._study!r} with the given config (see the warning above)"
            logger.error("bttackler assessor: %s; every trial is answered Good (no early stopping)", self._disabled)
        return False

    # ------------------------------------------------------------------ logging

    def _log_stop(self, trial: str, verdict: Mapping[str, Any]) -> None:
        step = verdict.get("stopped_at", verdict.get("step"))
        symptoms = [s for s in verdict.get("symptoms") or [] if isinstance(s, Mapping) and s.get("action") == "stop"]
        codes = list(dict.fromkeys(str(s.get("code")) for s in symptoms)) or ["?"]  # in the engine's order
        evidence = "; ".join(
            f"{s.get('code')}/{s.get('rule')} {_compact(s.get('evidence'))}" for s in symptoms
        ) or "(none given)"
        logger.info(
            "bttackler stops trial %s at step %s (study %s): symptom %s; reason: %s; evidence: %s",
            trial, step, self._study, ",".join(codes), verdict.get("reason"), evidence,
        )

    def _warn(self, key: str, message: str, exc: Optional[BaseException] = None) -> None:
        now = time.monotonic()
        last = self._last_warned.get(key)
        if last is not None and now - last < _WARN_INTERVAL:
            return
        self._last_warned[key] = now
        logger.warning("bttackler assessor: %s", message, exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None)


def _left(deadline: float) -> float:
    """What is left of an assessment's budget, for its next call to the service."""
    return deadline - time.monotonic()


def _compact(value: Any) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _EVIDENCE_CHARS else text[: _EVIDENCE_CHARS - 1] + "…"

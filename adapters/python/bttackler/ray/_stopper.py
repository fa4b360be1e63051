"""BTTacklerStopper: a Ray Tune stopper that asks the bttackler service for each trial's verdict."""
from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
import uuid
from typing import Any, Dict, Mapping, Optional, Set, Tuple

from ray.tune import Stopper

from .._checks import check_url, positive_number
from .._token import redact
from ..client import BTTacklerClient
from ..private_service import PrivateService, ServiceEndpoint, plain_config
from ..verdicts import should_stop, stop_record

logger = logging.getLogger("bttackler")

DEFAULT_TIMEOUT = 2.0
#: The key of ``tune.report``'s metrics that holds the step's indicator payload (docs/payload.md).
PAYLOAD_KEY = "bttackler"
#: The key the stopper adds to the result it stops a trial on: ``{"by", "step", "symptoms", "reason"}``.
STOP_KEY = "bttackler_stop"
#: How long pickling waits for a private service to print its address (it starts in the background).
START_TIMEOUT = 30.0
_STUDY_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


class BTTacklerStopper(ServiceEndpoint, Stopper):
    """Stops a Ray Tune trial when the bttackler service diagnoses its training as broken.

    Ray calls the stopper on the driver with every result of every trial, before the scheduler
    sees it. The stopper takes the indicator payload out of ``result["bttackler"]``
    (:data:`PAYLOAD_KEY`) to the service (``trial.reportAndAssess``, keyed by study, Ray's trial
    id and the payload's step) and returns the verdict. A payload without ``step`` gets
    ``training_iteration - 1``. A result without the key is let through.

    On a stop, the record ``{"by": "bttackler", "step": 3, "symptoms": ["NF"], "reason": "..."}``
    is added to that result as ``result["bttackler_stop"]`` (:data:`STOP_KEY`): it is the trial's
    last result, so it shows in ``ResultGrid``, ``result.json`` and ``progress.csv``
    (:func:`bttackler.ray.stopped_trials` lists them); the service marks the trial ``pruned``
    (``bttackler report``). A trial whose final result says ``done`` is marked ``complete``.

    Args:
        url: The service, ``ws://host:port`` (``?token=`` allowed; else ``BTTACKLER_TOKEN``).
            ``None`` starts a private service on the driver (an SQLite file in a temporary
            directory, removed at exit), found through ``BTTACKLER_CLI``, then ``bttackler`` on
            ``PATH``, then the ``dist/`` of the checkout this package is in.
        config: The study configuration (config.v1, docs/configuration.md), sent once with
            ``study.open`` before the first report. ``None``: the service's defaults.
        timeout: Seconds one call of the stopper may take in all. The stopper runs in the
            driver's event loop: a service that is down, slow or failing makes it answer
            ``False`` (continue) within this time, after a warning on the ``bttackler``
            logger; it never raises into Ray.
        study: The service study the trials report to; default ``ray-<random>``, made once
            per stopper (a restored experiment unpickles the same name).
        keep_payload: By default the payload is removed from the result once the stopper has
            read it (the scheduler has seen the result already), so that Ray's loggers, the
            ``ResultGrid`` and ``progress.csv`` do not carry per-layer lists every epoch.
            ``True`` leaves it in.

    Example:

        .. code-block:: python

            from ray import tune
            from bttackler.ray import BTTacklerStopper


            def trainable(config):
                loss = 1.0
                for epoch in range(10):
                    loss = loss * (1 - config["lr"]) if config["lr"] < 1 else float("nan")
                    tune.report({"loss": loss, "bttackler": {"step": epoch, "metrics": {"train_loss": loss}}})


            tuner = tune.Tuner(trainable, param_space={"lr": tune.grid_search([0.1, 5.0])},
                               run_config=tune.RunConfig(stop=BTTacklerStopper()))
            for trial in bttackler.ray.stopped_trials(tuner.fit()):
                print(trial.trial_id, trial.step, trial.symptoms, trial.reason)
    """

    def __init__(
        self,
        url: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        study: Optional[str] = None,
        keep_payload: bool = False,
    ) -> None:
        if url is not None:
            check_url(url)
        config = plain_config(config)
        if study is not None and (not isinstance(study, str) or not _STUDY_NAME.fullmatch(study)):
            raise ValueError(f"study must be a string of 1 to 200 characters without control characters, got {study!r}")
        if not isinstance(keep_payload, bool):
            raise TypeError(f"keep_payload must be True or False, got {keep_payload!r}")
        self._timeout = positive_number("timeout", timeout)
        self._keep_payload = keep_payload
        self._url = url
        self._config = config
        self._study = study or f"ray-{uuid.uuid4().hex[:12]}"
        self._private: Optional[PrivateService] = None
        if url is None:
            self._private = PrivateService("bttackler-ray-")  # the first calls wait for it within their budget
            atexit.register(self.close)  # registered after the service's own stop: runs first
        self._init_state()

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._client: Optional[BTTacklerClient] = None
        self._opened = False
        self._stops: Dict[str, Dict[str, Any]] = {}
        self._reported: Set[str] = set()  # trials the service has a verdict for (from this object)
        self._ended: Set[str] = set()
        self._progress: Dict[str, Tuple[int, Optional[int]]] = {}  # trial -> (last step, max_steps) of its payloads
        self._warned: Set[str] = set()

    # ------------------------------------------------------------------ properties

    @property
    def study(self) -> str:
        """The service study the trials report to (``bttackler report <db> --study`` takes it)."""
        return self._study

    @property
    def stops(self) -> Dict[str, Dict[str, Any]]:
        """Ray trial id → stop record, for the trials this stopper object stopped."""
        with self._lock:
            return {trial: dict(record) for trial, record in self._stops.items()}

    @property
    def client(self) -> Optional[BTTacklerClient]:
        """This process's client of the service (made on first use), or None when no address is known."""
        if os.getpid() != self._pid:  # a forked copy: the parent's lock, connection and service are not ours
            self._leave_private_service()
            self._init_state()
        if self._client is None:
            if self._service is not None:
                self._client = BTTacklerClient(service=self._service, timeout=self._timeout)
            elif self._url is not None:
                self._client = BTTacklerClient(self._url, timeout=self._timeout)
        return self._client

    # ------------------------------------------------------------------ Ray's Stopper

    def __call__(self, trial_id: str, result: Dict[str, Any]) -> bool:
        try:
            return self._decide(trial_id, result)
        except Exception as exc:  # noqa: BLE001 - never into Ray: continue
            self._warn_once(f"internal:{type(exc).__name__}", f"bttackler stopper: no verdict for trial {trial_id} ({type(exc).__name__}: {exc}); letting it continue")
            return False

    def stop_all(self) -> bool:
        return False

    def _decide(self, trial_id: str, result: Dict[str, Any]) -> bool:
        deadline = time.monotonic() + self._timeout
        trial = str(trial_id)
        with self._lock:
            if trial in self._stops:
                return True
        payload = result.get(PAYLOAD_KEY) if isinstance(result, Mapping) else None
        done = isinstance(result, Mapping) and result.get("done") is True
        if payload is not None and not self._keep_payload:
            del result[PAYLOAD_KEY]  # diagnosed here: Ray's loggers and the ResultGrid get the metrics without it
        if payload is None:
            if done:  # Ray's final copy of a finished trial's last result (already diagnosed, payload removed)
                self._end(trial, "complete", deadline)
            else:
                self._warn_once("no-payload", f"bttackler stopper: a result of trial {trial} has no {PAYLOAD_KEY!r} key (the indicator payload): not diagnosed, the trial continues")
            return False
        if not isinstance(payload, Mapping):
            self._warn_once("bad-payload", f"bttackler stopper: result[{PAYLOAD_KEY!r}] of trial {trial} must be a mapping (indicator payload v1), got {type(payload).__name__}: not diagnosed")
            return False
        payload = dict(payload)
        if "step" not in payload:
            iteration = result.get("training_iteration")
            if isinstance(iteration, int) and not isinstance(iteration, bool) and iteration >= 1:
                payload["step"] = iteration - 1
        self._note_progress(trial, payload)
        client = self.client
        if client is None:
            self._warn_once("no-url", "bttackler stopper: the service's address is unknown (a copy pickled before the private service listened): every trial continues")
            return False
        if self._config is not None and not self._opened:
            if client.open_study(self._study, self._config, timeout=deadline - time.monotonic()) is not None:
                self._opened = True
        verdict = client.report_and_assess(self._study, trial, payload, timeout=deadline - time.monotonic())
        if verdict is not None:
            self._reported.add(trial)
        if not should_stop(verdict):
            if done and verdict is not None:
                self._end(trial, "complete", deadline)
            return False
        assert verdict is not None
        record = stop_record(verdict, payload.get("step"))
        with self._lock:
            self._stops[trial] = record
        result[STOP_KEY] = dict(record)
        self._end(trial, "pruned", deadline)
        return True

    def _note_progress(self, trial: str, payload: Mapping[str, Any]) -> None:
        step, max_steps = payload.get("step"), payload.get("max_steps")
        if isinstance(step, int) and not isinstance(step, bool):
            known = self._progress.get(trial, (None, None))[1]
            self._progress[trial] = (step, max_steps if isinstance(max_steps, int) and not isinstance(max_steps, bool) else known)

    def trial_ended(self, trial_id: str, failed: bool = False) -> None:
        """Tells the service how a trial ended (``trial.end``), once: ``failed``; ``pruned`` when it stopped before
        the ``max_steps`` its payloads announced (a scheduler such as ASHA cut it); else ``complete``. A trial this
        stopper stopped is already ``pruned``. Called by :class:`BTTacklerCallback`; never raises, at most ``timeout``."""
        try:
            trial = str(trial_id)
            with self._lock:
                if trial in self._stops:
                    return
            step, max_steps = self._progress.get(trial, (None, None))
            if failed:
                state = "failed"
            elif step is not None and max_steps is not None and step + 1 < max_steps:
                state = "pruned"
            else:
                state = "complete"
            self._end(trial, state, time.monotonic() + self._timeout)
        except Exception as exc:  # noqa: BLE001 - never into Ray
            self._warn_once(f"end:{type(exc).__name__}", f"bttackler stopper: could not end trial {trial_id} on the service ({type(exc).__name__}: {exc})")

    def callback(self) -> "Any":
        """A ``tune.Callback`` that reports how every trial ended to the service: ``RunConfig(callbacks=[stopper.callback()])``."""
        from ._callback import BTTacklerCallback

        return BTTacklerCallback(self)

    def _end(self, trial: str, state: str, deadline: float) -> None:
        """trial.end on the service with what is left of the call's budget (the stop stands if it fails)."""
        client = self.client
        if client is None or trial in self._ended or trial not in self._reported:
            return
        if client.end_trial(self._study, trial, state, timeout=deadline - time.monotonic()) is not None:
            self._ended.add(trial)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("%s", message)

    # ------------------------------------------------------------------ life cycle, pickling

    def close(self) -> None:
        """Closes the client and stops the private service (if any); also run at exit. Never raises."""
        try:
            if self._client is not None and os.getpid() == self._pid:
                self._client.close()
            self._stop_private_service()
        except Exception:  # noqa: BLE001
            pass

    def __getstate__(self) -> Dict[str, Any]:
        # Ray pickles the stopper with the run config: settings only, no socket, lock or process.
        url = self._address_for_copy(START_TIMEOUT)
        if url is None and self._service is not None:
            logger.warning("bttackler stopper: pickled before its private service listened (%s): the copy lets every trial continue", self._service.error or "not started in time")
        return {"url": url, "config": self._config, "timeout": self._timeout, "study": self._study, "keep_payload": self._keep_payload}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # The copy talks to the same service; the original process keeps owning a private one.
        self._url = state["url"]
        self._config = state["config"]
        self._timeout = state["timeout"]
        self._study = state["study"]
        self._keep_payload = state["keep_payload"]
        self._private = None
        self._init_state()

    def __repr__(self) -> str:
        where = redact(self._url) if self._url else (self._service.address if self._service else None) or "private service"
        return f"BTTacklerStopper({where}, study={self._study!r}, timeout={self._timeout:g})"

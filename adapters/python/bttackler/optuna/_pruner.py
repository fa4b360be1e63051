"""BTTacklerPruner: an Optuna pruner that asks the bttackler service for each trial's verdict."""
from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from typing import Any, Dict, Mapping, Optional, Tuple

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection

from .._checks import check_url, positive_number
from ..client import BTTacklerClient
from ..local_service import STARTUP_WAIT, ServiceStartError
from ..objective import with_objective
from ..private_service import PrivateService, ServiceEndpoint, plain_config
from ..verdicts import should_stop, stop_record
from ._identity import service_study, storage_identity
from ._stop_record import STOP_ATTR, fit_record

logger = logging.getLogger("bttackler")

DEFAULT_TIMEOUT = 5.0
#: The metric a bare ``trial.report(value, step)`` becomes, by the study's direction.
SCALAR_METRIC = {StudyDirection.MINIMIZE: "train_loss", StudyDirection.MAXIMIZE: "val_acc"}
_CACHE_SIZE = 20_000


class BTTacklerPruner(ServiceEndpoint, BasePruner):
    """Prunes a trial when the bttackler service diagnoses its training as broken.

    Each call of ``trial.should_prune()`` asks the service for the verdict on the trial's
    last reported step, keyed by (study, trial number, step): asking again for the same step
    gives the same answer without a second diagnosis, from any worker. What the service
    diagnoses is either the indicator payload that :func:`bttackler.optuna.report` (or
    :func:`bttackler.optuna.run_node_trial`) sent for that step, or, for a trial that only
    calls ``trial.report(value, step)``, a payload holding that one value: as ``train_loss``
    when the study minimizes, as ``val_acc`` when it maximizes (see docs/optuna.md).

    On a stop, the reason is written to the trial's user attribute ``bttackler_stop`` while
    the trial is still running, e.g. ``{"by": "bttackler", "step": 3, "symptoms": ["EG"],
    "reason": "EG grad_ratio_high: ..."}`` (at most 1,024 characters as JSON).

    Args:
        url: The service, ``ws://host:port`` (``?token=`` allowed; else ``BTTACKLER_TOKEN``).
            Give it whenever several processes optimize one study, so that they share one
            cohort. ``None`` starts a private service for this process (an SQLite file in a
            temporary directory, removed at exit), found through ``BTTACKLER_CLI``, then
            ``bttackler`` on ``PATH``, then the ``dist/`` of the checkout this package is in;
            when none of them starts, the constructor raises ``ServiceStartError`` naming the fix
            (a pruner that could never prune is a configuration error, not a fault to fail open on).
        config: The study configuration (config.v1, docs/configuration.md), sent once per
            study with ``study.open``. ``None``: the service's defaults.
        wrapped: Another Optuna pruner. The trial is pruned if either says so; the record
            says which one did. Its exceptions propagate as they would without bttackler.
        timeout: Seconds each call to the service may take. After a good start, an unreachable,
            slow or failing service makes ``prune`` answer as if bttackler were absent (the wrapped pruner's
            answer, else ``False``) after a warning on the ``bttackler`` logger; it never
            raises into Optuna.

    Example (run as a doctest by ``npm run test:python``; the private service is this checkout's):

        >>> import optuna
        >>> from bttackler.optuna import BTTacklerPruner
        >>> def objective(trial):
        ...     lr = trial.suggest_float("lr", 1e-3, 10.0, log=True)
        ...     loss = 1.0
        ...     for step in range(10):
        ...         loss = loss * (1 - lr) if lr < 1 else float("nan")  # lr >= 1 "explodes"
        ...         trial.report(loss, step)
        ...         if trial.should_prune():
        ...             raise optuna.TrialPruned()
        ...     return loss
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(pruner=BTTacklerPruner())
        >>> study.enqueue_trial({"lr": 5.0})
        >>> study.optimize(objective, n_trials=5)
        >>> print(study.trials[0].state, study.trials[0].user_attrs["bttackler_stop"]["reason"])
        TrialState.PRUNED NF non_finite_metric: metric train_loss is not finite
        >>> study.pruner.close()
    """

    def __init__(
        self,
        url: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        wrapped: Optional[BasePruner] = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if url is not None:
            check_url(url)
        config = plain_config(config)
        if wrapped is not None:
            if not isinstance(wrapped, BasePruner):
                raise TypeError(f"wrapped must be an Optuna pruner (optuna.pruners.BasePruner) or None, got {wrapped!r} ({type(wrapped).__name__})")
            if isinstance(wrapped, BTTacklerPruner):
                raise ValueError(f"wrapped must not be another BTTacklerPruner, got {wrapped!r}")
        self._timeout = positive_number("timeout", timeout)
        self._url = url
        self._config: Optional[Dict[str, Any]] = config
        self._wrapped = wrapped
        self._private: Optional[PrivateService] = None
        if url is None:
            self._start_local_service()
        self._init_state()

    # ------------------------------------------------------------------ set-up

    def _start_local_service(self) -> None:
        """Starts the private service and waits for its address: a service that cannot start at all is a
        configuration error (raised, with the fix), not a fault to fail open on: the user would believe the
        study protected while nothing is pruned. A slow start is no error (calls fail open until it listens)."""
        private = PrivateService("bttackler-optuna-")
        private.service.url(timeout=STARTUP_WAIT)
        problem = private.service.error
        if problem is not None:
            private.stop()
            raise ServiceStartError(
                f"BTTacklerPruner() without url= could not start its private bttackler service: {problem}. "
                "Fix: give the url of a running service (BTTacklerPruner(url='ws://127.0.0.1:8765') after "
                "`bttackler serve`), or make the service findable: set BTTACKLER_CLI to dist/cli/main.js of a "
                "built checkout, or install it so that `bttackler` is on PATH (docs/quickstart.md, Install)"
            )
        self._private = private
        # registered after LocalService.start registered its own stop: atexit runs this one first
        atexit.register(self.close)

    def _init_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._verdicts: "collections.OrderedDict[Tuple[str, int, int], Dict[str, Any]]" = collections.OrderedDict()
        self._records: Dict[Tuple[str, int], Dict[str, Any]] = {}
        self._opened: set = set()
        self._reported: set = set()  # (study key, trial number) sent at least one report: only those are ended
        self._warned_private: set = set()
        if self._service is not None:
            self._client = BTTacklerClient(service=self._service, timeout=self._timeout)
        else:
            assert self._url is not None
            self._client = BTTacklerClient(self._url, timeout=self._timeout)

    @property
    def wrapped(self) -> Optional[BasePruner]:
        return self._wrapped

    @property
    def client(self) -> BTTacklerClient:
        """The client of this process (a forked child gets its own)."""
        if os.getpid() != self._pid:  # forked: the parent's connection, lock and service are not ours
            self._leave_private_service()  # the parent stops it and removes its directory
            if self._url is None:
                self._url = "ws://127.0.0.1:9"  # no address known: every call fails open
            self._init_state()
        return self._client

    def close(self) -> None:
        """Closes the client and stops the private service (if any); also run at exit. Never raises."""
        try:
            self.client.close()  # after a fork: the child's own client, never the parent's connection
            self._stop_private_service()
        except Exception:  # noqa: BLE001
            pass

    def __getstate__(self) -> Dict[str, Any]:
        url = self._address_for_copy(self._timeout)
        if url is None:
            raise TypeError("cannot pickle a BTTacklerPruner whose private service has no address (yet)")
        return {"url": url, "config": self._config, "wrapped": self._wrapped, "timeout": self._timeout}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # The copy talks to the same service; the original process keeps owning a private one.
        self._url = state["url"]
        self._config = state["config"]
        self._wrapped = state["wrapped"]
        self._timeout = state["timeout"]
        self._private = None
        self._init_state()

    def __repr__(self) -> str:
        where = self._url or (self._service.address if self._service else None) or "private service"
        extra = f", wrapped={self._wrapped!r}" if self._wrapped is not None else ""
        return f"BTTacklerPruner({where}{extra}, timeout={self._timeout:g})"

    # ------------------------------------------------------------------ the pruner

    def prune(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial") -> bool:
        wrapped_says = bool(self._wrapped.prune(study, trial)) if self._wrapped is not None else False
        step = trial.last_step
        self.client  # noqa: B018 - after a fork: a fresh client and lock before anything else
        verdict: Optional[Dict[str, Any]] = None
        try:
            if step is not None:
                verdict = self._verdict(study, trial, step)
        except Exception as exc:  # noqa: BLE001 - fail open
            logger.warning("bttackler pruner: no verdict for trial %s (%s: %s); not pruning on bttackler's account", trial.number, type(exc).__name__, exc)
            verdict = None
        ours = should_stop(verdict)
        if (ours or wrapped_says) and step is not None:
            try:
                self._record(study, trial, step, verdict if ours else None, wrapped_says)
            except Exception as exc:  # noqa: BLE001 - the stop stands even if the record fails
                logger.warning("bttackler pruner: could not record the stop of trial %s (%s: %s)", trial.number, type(exc).__name__, exc)
        return ours or wrapped_says

    def _verdict(self, study: "optuna.study.Study", trial: "optuna.trial.FrozenTrial", step: int) -> Optional[Dict[str, Any]]:
        key = service_study(study)
        self._warn_if_private(study, key)
        with self._lock:
            cached = self._verdicts.get((key, trial.number, step))
        if cached is not None:
            return cached
        value = trial.intermediate_values.get(step)
        metric = SCALAR_METRIC.get(study.direction, "train_loss")
        payload: Dict[str, Any] = {"step": int(step), "metrics": {metric: _json_float(value)}}
        return self._send(key, trial.number, payload, direction=study.direction.name.lower())

    def _warn_if_private(self, study: "optuna.study.Study", key: str) -> None:
        """A private service with a storage other processes can share: say once that they do not share a cohort."""
        if self._service is None or key in self._warned_private:
            return
        self._warned_private.add(key)
        if not storage_identity(study._storage).startswith("object:"):
            logger.warning(
                "bttackler pruner: study %r is on shared storage but this pruner runs a private service (no url): "
                "other worker processes do not see this process's trials (no shared cohort). Start `bttackler serve` "
                "once and give every worker BTTacklerPruner(url=...)", study.study_name,
            )

    # ------------------------------------------------------------------ used by report() and run_node_trial()

    def _send(self, key: str, number: int, payload: Mapping[str, Any], direction: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """reportAndAssess for (key, number, payload step); the verdict is kept for prune(). Fail open.

        The first time a study is seen, it is opened with the configuration, its objective's
        direction (the Optuna study's, ``direction``) declared unless the configuration declares one.
        At most ``timeout`` seconds in all: when the study is opened first, the report gets what is left.
        """
        client = self.client
        deadline = time.monotonic() + self._timeout
        if (self._config is not None or direction is not None) and key not in self._opened:
            config = self._config if direction is None else with_objective(self._config, direction)
            opened = client.open_study(key, config, timeout=deadline - time.monotonic())
            if opened is not None:
                self._opened.add(key)
        with self._lock:
            self._reported.add((key, number))
        verdict = client.report_and_assess(key, str(number), payload, timeout=deadline - time.monotonic())
        if isinstance(verdict, dict) and isinstance(verdict.get("stop"), bool):
            step = payload.get("step")
            if isinstance(step, int):
                with self._lock:
                    self._verdicts[(key, number, step)] = verdict
                    while len(self._verdicts) > _CACHE_SIZE:
                        self._verdicts.popitem(last=False)
            return verdict
        return None

    def _end(self, study: "optuna.study.Study", number: int, state: str) -> None:
        """trial.end for a trial this process reported (the service refuses to end a trial it never heard of)."""
        key = service_study(study)
        with self._lock:
            if (key, number) not in self._reported:
                return
        try:
            self.client.end_trial(key, str(number), state)
        except Exception as exc:  # noqa: BLE001
            logger.warning("bttackler pruner: could not end trial %s on the service (%s)", number, exc)

    def stop_record(self, study: "optuna.study.Study", number: int) -> Optional[Dict[str, Any]]:
        """The ``bttackler_stop`` record this process wrote for the trial, or None."""
        with self._lock:
            found = self._records.get((service_study(study), number))
        return None if found is None else dict(found)

    def _record(
        self,
        study: "optuna.study.Study",
        trial: "optuna.trial.FrozenTrial",
        step: int,
        verdict: Optional[Mapping[str, Any]],
        wrapped_says: bool,
    ) -> None:
        key = (service_study(study), trial.number)
        with self._lock:
            if key in self._records:
                return
        wrapped_name = type(self._wrapped).__name__ if self._wrapped is not None else None
        if verdict is not None:
            record = stop_record(verdict, step)
            reason = record.pop("reason")
            if wrapped_says:
                record["wrapped"] = wrapped_name  # it said stop as well
            record["reason"] = reason
        else:
            record = {"by": "wrapped", "pruner": wrapped_name, "step": step, "symptoms": [], "reason": f"{wrapped_name} pruned the trial at step {step}"}
        fit_record(record)
        study._storage.set_trial_user_attr(trial._trial_id, STOP_ATTR, record)
        with self._lock:
            self._records[key] = record


def _json_float(value: Any) -> Any:
    """A float for the payload; NaN/±Inf stay (sent as the bare tokens the service reads as non-finite)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def find_pruner(pruner: Any) -> Optional[BTTacklerPruner]:
    """The BTTacklerPruner that is ``pruner`` or that it wraps (``PatientPruner`` and the like), or None."""
    seen = 0
    while pruner is not None and seen < 8:
        if isinstance(pruner, BTTacklerPruner):
            return pruner
        pruner = getattr(pruner, "_wrapped_pruner", None)
        seen += 1
    return None

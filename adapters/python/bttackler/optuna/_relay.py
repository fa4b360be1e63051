"""run_node_trial(): a JavaScript trial (the bttackler trial SDK) as the body of an Optuna objective.

The Optuna side of the relay (bttackler/relay.py, "Optuna relay (JSON lines)" in docs/protocol.md): each report of
the child goes to the service and to Optuna, and ``trial.should_prune()`` is its verdict.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Sequence

import optuna

from ..relay import DEFAULT_GRACE, NodeTrialError, RelayedTrial, RelayOutcome, checked_arguments, final_number
from ._pruner import find_pruner
from ._report import report as report_payload

logger = logging.getLogger("bttackler")

__all__ = ["NodeTrialError", "run_node_trial"]


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
    command, params_json = checked_arguments(command, dict(trial.params) if params is None else params, grace, timeout)
    relay = RelayedTrial(command, params_json, f"optuna-trial-{trial.number}", lambda payload: _decide(trial, payload, metric),
                         label=str(trial.number), grace=float(grace), timeout=timeout, cwd=cwd, env=env)
    return _outcome(trial, command, relay.run())


def _decide(trial: "optuna.trial.Trial", payload: Any, metric: Optional[str]) -> Optional[str]:
    """The payload to the service and to Optuna; the reason of a prune, or None."""
    step = payload.get("step") if isinstance(payload, Mapping) else None
    try:
        report_payload(trial, payload, metric=metric)
    except (TypeError, ValueError) as exc:
        logger.warning("bttackler: trial %s step %r not reported to Optuna: %s", trial.number, step, exc)
        return None
    if not trial.should_prune():
        return None
    study = trial.study
    pruner = find_pruner(study.pruner)
    record = pruner.stop_record(study, trial.number) if pruner is not None else None
    if record is not None and record.get("reason"):
        return str(record["reason"])
    return f"{type(study.pruner).__name__} pruned the trial at step {step}"


def _end(trial: "optuna.trial.Trial", state: str) -> None:
    pruner = find_pruner(trial.study.pruner)
    if pruner is not None:
        pruner._end(trial.study, trial.number, state)


def _outcome(trial: "optuna.trial.Trial", command: Sequence[str], outcome: RelayOutcome) -> float:
    if outcome.stop_reason is not None:
        _end(trial, "pruned")
        at = f" at step {outcome.stop_step}" if outcome.stop_step is not None else ""
        raise optuna.TrialPruned(f"pruned{at}: {outcome.stop_reason}")
    if outcome.stopped_after_eof and outcome.has_final:  # it had delivered its value and then would not exit
        _end(trial, "complete")
        return final_number(outcome.final)
    failure = outcome.failure(command)
    if failure is not None:
        _end(trial, "failed")
        raise failure
    _end(trial, "complete")
    return final_number(outcome.final)

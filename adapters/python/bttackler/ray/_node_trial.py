"""run_node_trial(): a JavaScript trial (bttackler's trial SDK) as the body of a Ray Tune function trainable."""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, Mapping, Optional, Sequence

from ray import tune

from ..relay import RelayedTrial, checked_arguments, final_number
from ._stopper import PAYLOAD_KEY

logger = logging.getLogger("bttackler")

#: After Ray stopped the trial, how long the child may take to end by itself before SIGTERM (Ray ends the worker soon).
DEFAULT_GRACE = 3.0
#: The verdict the child gets when Ray stops the trial; the diagnosis' own reason is on the driver (``bttackler_stop``).
STOPPED_BY_RAY = "the trial was stopped by Ray Tune (BTTacklerStopper, the scheduler or another stopper)"


def _metrics(payload: Mapping[str, Any]) -> Dict[str, Any]:
    """The payload's numeric metrics as Tune metrics (``null``: NaN), for schedulers and search algorithms."""
    found = payload.get("metrics")
    if not isinstance(found, Mapping):
        return {}
    return {str(k): (math.nan if v is None else v) for k, v in found.items()
            if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))}


def run_node_trial(
    command: Sequence[str],
    config: Mapping[str, Any],
    *,
    grace: float = DEFAULT_GRACE,
    timeout: Optional[float] = None,
    cwd: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> float:
    """Runs a JavaScript trial (bttackler's trial SDK) inside a Ray Tune function trainable; its final value.

    The child gets the relay (``BTTACKLER_RELAY_FD``), ``config`` as its hyperparameters
    (``BTTACKLER_PARAMS``, plain JSON) and ``BTTACKLER_TRIAL=ray-<trial id>``. Each payload it
    reports becomes one ``tune.report``: the payload's metrics (``val_acc``, ``train_loss``, ...;
    ``null`` as NaN) for the scheduler, and the payload itself under ``"bttackler"`` for
    :class:`BTTacklerStopper`. ``tune.report`` returns once the driver has taken the result, so
    the child's verdict is exact: "continue", or, when Ray stopped the trial (the stopper, the
    scheduler or another stopper), "stop" with :data:`STOPPED_BY_RAY` as reason; the child then
    has ``grace`` seconds to exit, then SIGTERM, then SIGKILL, and the trainable ends as Ray
    expects. On Linux the child also gets SIGTERM if the worker process dies first.

    A child that exits with a code other than 0, without a final value, or outlives ``timeout``
    seconds raises :class:`NodeTrialError`: Ray records the trial as ``ERROR``. Returns the
    child's final value (``{"default": x}`` gives ``x``); do not return it from the trainable
    (Ray would report it as one more result).

    Example:

        .. code-block:: python

            from ray import tune
            from bttackler.ray import BTTacklerStopper, run_node_trial


            def trainable(config):
                run_node_trial(["node", "docs/examples/mnist/train.js"], config)


            tune.Tuner(trainable, param_space={"lr": tune.grid_search([0.05, 50]), "optimizer": "sgd"},
                       run_config=tune.RunConfig(stop=BTTacklerStopper())).fit()
    """
    command, params_json = checked_arguments(command, config, grace, timeout)
    trial_id = tune.get_context().get_trial_id() or "local"

    def decide(payload: Any) -> Optional[str]:
        if not isinstance(payload, Mapping):
            logger.warning("bttackler: trial %s reported a payload that is not an object; not reported to Ray", trial_id)
            return None
        try:
            tune.report({**_metrics(payload), PAYLOAD_KEY: dict(payload)})
        except SystemExit:  # Ray's session ends a stopped trial's thread this way
            return STOPPED_BY_RAY
        return None

    relay = RelayedTrial(command, params_json, f"ray-{trial_id}", decide, label=trial_id, grace=float(grace),
                         timeout=timeout, cwd=cwd, env=env, die_with_parent=True)
    outcome = relay.run()
    if outcome.stop_reason is not None:
        raise SystemExit(0)  # as Ray's own tune.report does for a stopped trial
    failure = outcome.failure(command)
    if failure is not None:
        raise failure
    return final_number(outcome.final)

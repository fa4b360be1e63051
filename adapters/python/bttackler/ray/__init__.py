"""bttackler for Ray Tune: a stopper that asks the bttackler diagnosis service, and where its reasons show up.

- :class:`BTTacklerStopper` — ``tune.RunConfig(stop=BTTacklerStopper())``: a private service on the
  driver; ``BTTacklerStopper(url="ws://host:port")`` for a service that outlives the driver.
- :class:`BTTacklerCallback` — ``stopper.callback()``: tells the service how every trial ended.
- :data:`PAYLOAD_KEY` — ``"bttackler"``: the key of ``tune.report``'s metrics that holds the step's
  indicator payload.
- :func:`run_node_trial` — a JavaScript trial (the trial SDK) as the body of a function trainable.
- :func:`stopped_trials` — the stopped trials, with step, symptoms and reason, from a ``ResultGrid`` or
  an experiment folder.

See docs/ray.md.
"""
from ..relay import NodeTrialError
from ._callback import BTTacklerCallback
from ._node_trial import STOPPED_BY_RAY, run_node_trial
from ._stopped import StoppedTrial, stopped_trials
from ._stopper import PAYLOAD_KEY, STOP_KEY, BTTacklerStopper

__all__ = [
    "BTTacklerCallback", "BTTacklerStopper", "NodeTrialError", "PAYLOAD_KEY", "STOPPED_BY_RAY", "STOP_KEY", "StoppedTrial",
    "run_node_trial", "stopped_trials",
]

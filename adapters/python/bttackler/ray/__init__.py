"""bttackler for Ray Tune: a stopper that asks the bttackler diagnosis service, and where its reasons show up.

- :class:`BTTacklerStopper` — ``tune.RunConfig(stop=BTTacklerStopper())``: a private service on the
  driver; ``BTTacklerStopper(url="ws://host:port")`` for a service that outlives the driver.
- :class:`BTTacklerCallback` — ``stopper.callback()``: tells the service how every trial ended.
- :data:`PAYLOAD_KEY` — ``"bttackler"``: the key of ``tune.report``'s metrics that holds the step's
  indicator payload.
- :func:`stopped_trials` — the stopped trials, with step, symptoms and reason, from a ``ResultGrid`` or
  an experiment folder.

See docs/ray.md.
"""
from ._callback import BTTacklerCallback
from ._stopped import StoppedTrial, stopped_trials
from ._stopper import PAYLOAD_KEY, STOP_KEY, BTTacklerStopper

__all__ = ["BTTacklerCallback", "BTTacklerStopper", "PAYLOAD_KEY", "STOP_KEY", "StoppedTrial", "stopped_trials"]

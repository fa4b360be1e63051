"""BTTacklerCallback: tells the bttackler service how each Ray Tune trial ended."""
from __future__ import annotations

from typing import Any, List, Protocol

from ray.tune import Callback


class TrialEnds(Protocol):
    """What the callback needs of the stopper (BTTacklerStopper.trial_ended): it imports no stopper, so that the
    stopper's ``callback()`` can import it."""

    def trial_ended(self, trial_id: str, failed: bool = False) -> None: ...


class BTTacklerCallback(Callback):
    """Ends every trial on the service when Ray ends it (``trial.end``), so that the service and ``bttackler report``
    tell a finished trial from one a scheduler cut: ``complete``, ``pruned`` (stopped before the ``max_steps`` its
    payloads announced, e.g. by ASHA) or ``failed``. Trials the stopper stopped are ``pruned`` already.

    A stopper alone cannot know this: Ray does not show it the results a scheduler stops a trial on as final.
    Runs on the driver; each call takes at most the stopper's timeout and never raises.

    Example:

        .. code-block:: python

            stopper = BTTacklerStopper()
            run_config = tune.RunConfig(stop=stopper, callbacks=[stopper.callback()])
    """

    def __init__(self, stopper: TrialEnds) -> None:
        if not callable(getattr(stopper, "trial_ended", None)):
            raise TypeError(f"stopper must be a BTTacklerStopper, got {stopper!r} ({type(stopper).__name__})")
        self._stopper = stopper

    @property
    def stopper(self) -> TrialEnds:
        return self._stopper

    def on_trial_complete(self, iteration: int, trials: List[Any], trial: Any, **info: Any) -> None:
        self._stopper.trial_ended(getattr(trial, "trial_id", ""))

    def on_trial_error(self, iteration: int, trials: List[Any], trial: Any, **info: Any) -> None:
        self._stopper.trial_ended(getattr(trial, "trial_id", ""), failed=True)

"""What every early-stopping method of the simulator is: one small interface."""
from __future__ import annotations

from traces import Trial


class Method:
    """Decides, epoch by epoch, whether a trial goes on. One instance per simulated run."""

    name = "none"

    def start(self, trial: Trial) -> None:
        """A worker starts the trial."""

    def stop(self, trial: Trial, epoch: int) -> bool:
        """Epoch ``epoch`` (0-based) of the trial has ended: True stops the trial."""
        return False

    def end(self, trial: Trial, completed: bool) -> None:
        """The trial ran all its epochs (completed) or was stopped."""

    def close(self) -> None:
        """The run is over."""


class NoStopping(Method):
    """Every trial runs to the end: the baseline every figure is relative to."""

    name = "none"

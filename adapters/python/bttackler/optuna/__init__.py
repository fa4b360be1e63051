"""bttackler for Optuna: a pruner that asks the bttackler diagnosis service, and the ways payloads reach it.

- :class:`BTTacklerPruner` — ``optuna.create_study(pruner=BTTacklerPruner())``: a private service
  for this process; ``BTTacklerPruner(url="ws://host:port")`` for a service shared by workers.
- :func:`report` — one epoch's indicator payload to the service, and its value to ``trial.report``.
- :func:`run_node_trial` — a JavaScript trial (bttackler's trial SDK) run through the Optuna relay.
- :func:`service_study` — the service study an Optuna study maps to.

See docs/optuna.md.
"""
from ._identity import service_study
from ._pruner import STOP_ATTR, BTTacklerPruner
from ._relay import NodeTrialError, run_node_trial
from ._report import report

__all__ = ["BTTacklerPruner", "NodeTrialError", "STOP_ATTR", "report", "run_node_trial", "service_study"]

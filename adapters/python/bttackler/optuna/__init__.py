"""bttackler for Optuna: a pruner that asks the bttackler diagnosis service, and the ways payloads reach it.

- :class:`BTTacklerPruner` — ``optuna.create_study(pruner=BTTacklerPruner())``: a private service
  for this process; ``BTTacklerPruner(url="ws://host:port")`` for a service shared by workers.
- :func:`report` — one epoch's indicator payload to the service, and its value to ``trial.report``.
- :func:`run_node_trial` — a JavaScript trial (bttackler's trial SDK) run through the Optuna relay.
- :func:`service_study` — the service study an Optuna study maps to.

See docs/optuna.md.
"""
try:
    import optuna  # noqa: F401 - fail here, with the fix, rather than deep inside
except ImportError as exc:
    if exc.name is None or exc.name.split(".")[0] != "optuna":
        raise
    raise ImportError(
        "bttackler.optuna needs Optuna (4.x or 5.x): pip install 'bttackler[optuna]' (from a checkout: "
        f"pip install -e 'adapters/python[optuna]'), or pip install optuna ({exc})"
    ) from exc

from ..local_service import ServiceStartError
from ._identity import service_study
from ._pruner import STOP_ATTR, BTTacklerPruner
from ._relay import NodeTrialError, run_node_trial
from ._report import report

__all__ = ["BTTacklerPruner", "NodeTrialError", "STOP_ATTR", "ServiceStartError", "report", "run_node_trial", "service_study"]

"""bttackler: the Python client of the bttackler diagnosis service (diagnosis-based early stopping for HPO).

``BTTacklerClient`` talks JSON-RPC 2.0 over WebSocket to ``bttackler serve``; ``LocalService``
runs that service as a child process. The NNI, Optuna and Ray Tune adapters build on both.
"""
from .client import BTTacklerClient, should_stop
from .local_service import LocalService, ServiceStartError

__version__ = "0.1.0"
__all__ = ["BTTacklerClient", "LocalService", "ServiceStartError", "should_stop", "__version__"]

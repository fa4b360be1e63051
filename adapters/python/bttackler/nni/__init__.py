"""bttackler for NNI 3.0: ``BTTacklerAssessor``, a custom assessor backed by `bttackler serve`.

Register it once (the meta file ships in this package; ``python -m bttackler.nni`` prints its path)::

    nnictl algo register --meta "$(python -m bttackler.nni)"

and add two lines to the experiment's YAML::

    assessor:
      name: BTTackler

See docs/nni.md for the classArgs and what happens when a trial is stopped. Needs the ``nni``
extra (``pip install "bttackler-<version>-py3-none-any.whl[nni]"``, or ``pip install -e "adapters/python[nni]"``
from a checkout; docs/quickstart.md, Install).
"""
from __future__ import annotations

import os

try:
    import nni.assessor  # noqa: F401 - fail here, with a message, rather than deep inside
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"bttackler.nni needs NNI 3.0: pip install 'bttackler[nni]' (from a checkout: pip install -e 'adapters/python[nni]'), or pip install nni==3.0 ({exc})") from exc

from .assessor import BTTacklerAssessor
from .class_args import AssessorSettings, check_class_args
from .experiment import ExperimentContext, experiment_context
from .payloads import is_payload, to_payload
from .validator import BTTacklerClassArgsValidator

META_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "meta.yml")
"""The file for ``nnictl algo register --meta``: registers ``BTTackler`` (this assessor and its validator)."""

__all__ = [
    "BTTacklerAssessor",
    "BTTacklerClassArgsValidator",
    "AssessorSettings",
    "check_class_args",
    "ExperimentContext",
    "experiment_context",
    "is_payload",
    "to_payload",
    "META_FILE",
]

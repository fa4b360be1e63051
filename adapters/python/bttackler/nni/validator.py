"""``BTTacklerClassArgsValidator``: NNI's hook for checking an algorithm's classArgs.

``nnictl`` runs a registered algorithm's validator on the classArgs of a legacy (v1) config;
NNI 3.0 does not run it for v2 configs, so the assessor's constructor runs the same checks
(``check_class_args``) as well.
"""
from __future__ import annotations

from typing import Any

from nni.utils import ClassArgsValidator

from .class_args import check_class_args


class BTTacklerClassArgsValidator(ClassArgsValidator):
    """Raises TypeError/ValueError naming the classArg and its bad value; returns None when all are valid.

    >>> BTTacklerClassArgsValidator().validate_class_args(url="ws://127.0.0.1:8765", timeout=2)
    >>> BTTacklerClassArgsValidator().validate_class_args(timeout=-1)
    Traceback (most recent call last):
    ...
    ValueError: BTTackler classArgs.timeout must be a number of seconds > 0 and <= 600, got -1
    """

    def validate_class_args(self, **kwargs: Any) -> None:
        check_class_args(**kwargs)

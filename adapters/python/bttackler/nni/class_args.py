"""The classArgs of the NNI assessor, checked in one place.

NNI passes ``classArgs`` from the experiment's YAML to the assessor's constructor as keyword
arguments and, for v2 configs, checks nothing itself. ``check_class_args`` is what the
constructor and the ``ClassArgsValidator`` both run: it raises ``TypeError``/``ValueError``
naming the argument and the bad value, and never touches the network.
"""
from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .._checks import check_token, check_url
from .._token import redact

DEFAULT_TIMEOUT = 5.0
OPTIMIZE_MODES = ("maximize", "minimize")
# A plain number in NNI's trial history is diagnosed as this metric of payload v1.
DEFAULT_METRIC = {"maximize": "val_acc", "minimize": "train_loss"}
CLASS_ARGS = ("url", "token", "timeout", "study", "config", "optimize_mode", "metric", "command", "db")


@dataclass(frozen=True)
class AssessorSettings:
    """The checked classArgs, with defaults filled in (``metric`` is resolved from ``optimize_mode``)."""

    url: Optional[str] = None
    token: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT
    study: Optional[str] = None
    config: Optional[Dict[str, Any]] = None
    optimize_mode: str = "maximize"
    metric: str = DEFAULT_METRIC["maximize"]
    command: Optional[Tuple[str, ...]] = None
    db: Optional[str] = None

    def describe(self, study: str) -> str:
        """The settings for a log line (the token is never shown)."""
        where = f"url={redact(self.url)}" if self.url else "a local service"
        return (
            f"{where}, study={study}, timeout={self.timeout:g} s, "
            f"optimize_mode={self.optimize_mode}, metric for plain numbers={self.metric}"
        )


def check_class_args(**class_args: Any) -> AssessorSettings:
    """Checks the assessor's classArgs; raises TypeError/ValueError naming the argument and the bad value.

    >>> check_class_args(url="ws://127.0.0.1:8765", timeout=3).timeout
    3.0
    >>> check_class_args(optimize_mode="minimize").metric
    'train_loss'
    """
    unknown = sorted(set(class_args) - set(CLASS_ARGS))
    if unknown:
        raise ValueError(
            f"BTTackler classArgs: unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the arguments are {', '.join(CLASS_ARGS)}"
        )
    args = {k: v for k, v in class_args.items() if v is not None}

    url = args.get("url")
    if url is not None:
        try:
            url = check_url(url)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"BTTackler classArgs.url: {exc}") from None
    token = args.get("token")
    if token is not None:
        check_token(token, "BTTackler classArgs.token")

    timeout = args.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"BTTackler classArgs.timeout must be a number of seconds, got {timeout!r} ({type(timeout).__name__})")
    if not math.isfinite(timeout) or not 0 < timeout <= 600:
        raise ValueError(f"BTTackler classArgs.timeout must be a number of seconds > 0 and <= 600, got {timeout!r}")

    study = args.get("study")
    if study is not None:
        if not isinstance(study, str):
            raise TypeError(f"BTTackler classArgs.study must be a string, got {study!r} ({type(study).__name__})")
        if not 1 <= len(study) <= 256:
            raise ValueError(f"BTTackler classArgs.study must have 1 to 256 characters, got {study!r}")

    config = args.get("config")
    if config is not None:
        if not isinstance(config, Mapping):
            raise TypeError(
                f"BTTackler classArgs.config must be a mapping (a study configuration, config.v1), got {config!r} ({type(config).__name__})"
            )
        try:
            config = json.loads(json.dumps(config, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"BTTackler classArgs.config must hold only JSON values ({exc}), got {config!r}") from None

    optimize_mode = args.get("optimize_mode", "maximize")
    if optimize_mode not in OPTIMIZE_MODES:
        raise ValueError(f"BTTackler classArgs.optimize_mode must be one of {', '.join(OPTIMIZE_MODES)}, got {optimize_mode!r}")

    metric = args.get("metric", DEFAULT_METRIC[optimize_mode])
    if not isinstance(metric, str) or not 1 <= len(metric) <= 128:
        raise ValueError(f"BTTackler classArgs.metric must be a metric name of 1 to 128 characters, got {metric!r}")

    command = args.get("command")
    if command is not None:
        command = _check_command(command)

    db = args.get("db")
    if db is not None and (not isinstance(db, (str, os.PathLike)) or os.fspath(db) == ""):
        raise ValueError(f"BTTackler classArgs.db must be a non-empty path (or ':memory:'), got {db!r}")

    if url is not None and (command is not None or db is not None):
        given = [name for name in ("command", "db") if args.get(name) is not None]
        raise ValueError(
            f"BTTackler classArgs: {' and '.join(given)} configure the local service, which is not used when url is given "
            f"(url={redact(url)!r}); remove one or the other"
        )

    return AssessorSettings(
        url=url,
        token=token,
        timeout=float(timeout),
        study=study,
        config=config,
        optimize_mode=optimize_mode,
        metric=metric,
        command=command,
        db=None if db is None else os.fspath(db),
    )


def _check_command(command: Any) -> Tuple[str, ...]:
    if isinstance(command, str):
        try:
            parts: List[str] = shlex.split(command)
        except ValueError as exc:
            raise ValueError(f"BTTackler classArgs.command cannot be split into words ({exc}), got {command!r}") from None
    elif isinstance(command, (list, tuple)):
        parts = list(command)
    else:
        raise TypeError(
            f"BTTackler classArgs.command must be a list of strings such as ['node', '/path/to/dist/cli/main.js'] "
            f"or one string, got {command!r} ({type(command).__name__})"
        )
    if not parts or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"BTTackler classArgs.command must be a non-empty list of non-empty strings, got {command!r}")
    return tuple(parts)

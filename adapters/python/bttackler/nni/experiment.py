"""Where the NNI dispatcher runs: its experiment's id and directory, from the environment.

NNI 3.0's manager starts the dispatcher (tuner + assessor) with ``NNI_LOG_DIRECTORY`` set to
``<experimentWorkingDirectory>/<experiment id>/log`` and ``NNI_CHECKPOINT_DIRECTORY`` to
``.../<experiment id>/checkpoint``; ``NNI_EXP_ID`` is set for trials only (so
``nni.get_experiment_id()`` answers ``STANDALONE`` in the dispatcher).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True)
class ExperimentContext:
    """The experiment's id and directory; both None when not running under an NNI dispatcher."""

    id: Optional[str] = None
    directory: Optional[str] = None


def experiment_context(environ: Optional[Mapping[str, str]] = None) -> ExperimentContext:
    """Reads the experiment's id and directory from the dispatcher's environment.

    >>> experiment_context({"NNI_LOG_DIRECTORY": "/tmp/exps/Ab12cd34/log"})
    ExperimentContext(id='Ab12cd34', directory='/tmp/exps/Ab12cd34')
    >>> experiment_context({})
    ExperimentContext(id=None, directory=None)
    """
    env = os.environ if environ is None else environ
    for var, leaf in (("NNI_LOG_DIRECTORY", "log"), ("NNI_CHECKPOINT_DIRECTORY", "checkpoint")):
        value = env.get(var)
        if not value:
            continue
        path = os.path.normpath(value)
        if os.path.basename(path) == leaf:
            directory = os.path.dirname(path)
            exp_id = os.path.basename(directory)
            if exp_id:
                return ExperimentContext(id=exp_id, directory=directory)
    exp_id = env.get("NNI_EXP_ID") or None
    return ExperimentContext(id=exp_id, directory=None)

"""bttackler.ray.run_node_trial: its arguments are checked before anything starts (the runs themselves, on a real
Ray cluster with docs/examples/mnist/train.js, are in test/e2e/ray)."""
from __future__ import annotations

from typing import Any, Dict

import pytest

pytest.importorskip("ray.tune")

from bttackler.ray import run_node_trial  # noqa: E402


@pytest.mark.parametrize("args, kwargs, error, words", [
    (("node train.js", {}), {}, TypeError, "command must be a non-empty list"),
    ((["node", ""], {}), {}, TypeError, "command must be a non-empty list"),
    ((["node", "train.js"], [("lr", 1)]), {}, TypeError, "params must be a mapping"),
    ((["node", "train.js"], {"lr": float("nan")}), {}, ValueError, "plain JSON"),
    ((["node", "train.js"], {}), {"grace": -1}, ValueError, "grace"),
    ((["node", "train.js"], {}), {"timeout": 0}, ValueError, "timeout"),
])
def test_bad_arguments_are_refused_naming_the_value(args: Any, kwargs: Dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        run_node_trial(*args, **kwargs)

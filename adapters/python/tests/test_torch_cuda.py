"""bttackler.torch.TorchReporter's CUDA-graph path (the sampled step as one graph replay): the same values as the
eager path, no synchronisation during the batches, faults fall back to eager. Skipped without a GPU; on the GPU
machine: `python3 -m pytest --noconftest adapters/python/tests/test_torch_cuda.py` (the conftest starts the
service, which needs node)."""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List

import pytest
import torch

from bttackler.torch import TorchReporter
from bttackler.torch import _graph

#: What torch.cuda.set_sync_debug_mode("warn") says of each synchronising operation.
SYNC = "called a synchronizing CUDA operation"

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def relu_net(device: str) -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(5, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 3)).to(device)


def epochs(model: torch.nn.Module, optimizer: torch.optim.Optimizer, reporters: List[TorchReporter], n: int = 3,
           batches: int = 7, poison_at: int = -1) -> List[List[Dict[str, Any]]]:
    device = next(model.parameters()).device
    out: List[List[Dict[str, Any]]] = [[] for _ in reporters]
    done = 0
    for _ in range(n):
        for _ in range(batches):
            optimizer.zero_grad(set_to_none=True)
            x, y = torch.randn(8, 5, device=device), torch.randint(0, 3, (8,), device=device)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if done == poison_at:
                model[2].weight.grad[0, 0] = math.inf
            done += 1
            optimizer.step()
        for k, reporter in enumerate(reporters):
            out[k].append(reporter.end_epoch({"train_loss": 1.0}))
    return out


@cuda
def test_the_graph_gives_the_eager_values_exactly() -> None:
    model = relu_net("cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    graph = TorchReporter(model, optimizer, sample_every=2)
    eager = TorchReporter(model, optimizer, sample_every=2, cuda_graph=False)
    by_graph, by_eager = epochs(model, optimizer, [graph, eager])
    assert graph._graph is not None and eager._graph is None
    for a, b in zip(by_graph, by_eager):
        a.pop("seconds"), b.pop("seconds")
        assert a == b
    assert 0 < by_graph[-1]["layers"][1]["grad_zero_frac"] < 1  # ReLU zeroes some inputs of the middle layer


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    x, y = torch.randn(8, 5, device="cuda"), torch.randint(0, 3, (8,), device="cuda")
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


@cuda
def test_no_synchronisation_during_the_batches_the_capture_included() -> None:
    model = relu_net("cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    step(model, optimizer)  # the libraries' lazy initialisations (not the reporter's) before the count
    reporter = TorchReporter(model, optimizer, sample_every=1)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(4):  # eager, capture + replay, replay, replay
                step(model, optimizer)
            in_batches = [str(w.message) for w in caught]
            reporter.end_epoch()
            at_end = [str(w.message) for w in caught][len(in_batches):]
        finally:
            torch.cuda.set_sync_debug_mode(0)
    assert reporter._graph is not None
    assert [m for m in in_batches if SYNC in m] == [], in_batches
    assert len([m for m in at_end if SYNC in m]) == 1, at_end


@cuda
def test_non_finite_gradients_by_the_graph_set_the_flag() -> None:
    model = relu_net("cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    reporter = TorchReporter(model, optimizer, sample_every=1)
    # the last step of epoch 1, well after the capture (its inf gradient makes the weight NaN: lr 0 x inf)
    payloads = epochs(model, optimizer, [reporter], n=2, poison_at=13)[0]
    assert payloads[0]["non_finite"] is False and reporter._graph is not None
    assert payloads[1]["non_finite"] is True
    assert payloads[1]["layers"][1]["grad_abs_mean"] is None and payloads[1]["layers"][0]["grad_abs_mean"] is not None


@cuda
def test_a_failing_capture_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no graphs today")

    monkeypatch.setattr(_graph, "SampleGraph", broken)
    model = relu_net("cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    reporter = TorchReporter(model, optimizer, sample_every=1)
    eager = TorchReporter(model, optimizer, sample_every=1, cuda_graph=False)
    a, b = epochs(model, optimizer, [reporter, eager], n=2)
    assert reporter._graph is None and not reporter._graph_ok
    for x, y in zip(a, b):
        x.pop("seconds"), y.pop("seconds")
        assert x == y


@cuda
def test_a_change_of_gradient_dtype_recaptures() -> None:
    model = relu_net("cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    graph = TorchReporter(model, optimizer, sample_every=1)
    eager = TorchReporter(model, optimizer, sample_every=1, cuda_graph=False)
    epochs(model, optimizer, [graph, eager], n=1)
    first = graph._graph
    model.half()  # the same Parameter objects, float16 gradients from now on
    for _ in range(3):
        optimizer.zero_grad(set_to_none=True)
        x = torch.randn(8, 5, device="cuda", dtype=torch.float16)
        torch.nn.functional.cross_entropy(model(x).float(), torch.zeros(8, dtype=torch.long, device="cuda")).backward()
        optimizer.step()
    a, b = graph.end_epoch(), eager.end_epoch()
    assert graph._graph is not None and graph._graph is not first and graph._graph.dtypes[0] == torch.float16
    a.pop("seconds"), b.pop("seconds")
    assert a == b and a["layers"][0]["grad_abs_mean"] > 0

"""bttackler.torch.TorchReporter on real PyTorch (CPU): values against hand-computed statistics,
one host read per epoch, sampling, faults, and payloads the real service accepts."""
from __future__ import annotations

import logging
import math
import uuid
from typing import Any, Dict, List

import pytest
import torch
from torch.overrides import TorchFunctionMode

from bttackler import BTTacklerClient
from bttackler.torch import TorchReporter

#: Tensor methods that bring data from the device to the host (each waits for the device).
HOST_READS = {"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "__len__"}


class HostReads(TorchFunctionMode):
    """Counts the calls of Tensor methods that read to the host, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: List[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def one_layer(weight: List[List[float]]) -> torch.nn.Module:
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight))
    return model


def sum_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: List[List[float]]) -> None:
    """loss = sum of the outputs, so dL/dW[i, j] = sum over the batch of x[:, j] (the same for every i)."""
    optimizer.zero_grad()
    model(torch.tensor(x)).sum().backward()
    optimizer.step()


def test_values_match_hand_computed_statistics() -> None:
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reporter = TorchReporter(model, optimizer, sample_every=1, max_steps=5)
    # dL/dW = [[4, 0], [4, 0]] at both steps: mean |g| = 2, half the entries exactly 0, max 4
    sum_step(model, optimizer, [[1.0, 0.0], [3.0, 0.0]])
    sum_step(model, optimizer, [[2.0, 0.0], [2.0, 0.0]])
    payload = reporter.end_epoch({"train_loss": 1.5, "val_loss": torch.tensor(2.5)})
    layer = payload["layers"][0]
    assert payload["step"] == 0 and payload["max_steps"] == 5 and payload["non_finite"] is False
    assert payload["metrics"] == {"train_loss": 1.5, "val_loss": 2.5}
    assert layer["name"] == "weight"
    assert layer["grad_abs_mean"] == pytest.approx(2.0)
    assert layer["grad_zero_frac"] == pytest.approx(0.5)
    assert layer["grad_abs_max"] == pytest.approx(4.0)
    # W_end = W0 - 2 * 0.1 * [[4, 0], [4, 0]] = [[0.2, 2], [2.2, 4]]
    assert layer["weight_abs_mean"] == pytest.approx((0.2 + 2 + 2.2 + 4) / 4)
    assert layer["update_ratio"] == pytest.approx(0.8 * math.sqrt(2) / math.sqrt(30))
    assert payload["seconds"] >= 0


def test_sampling_takes_every_kth_step_from_the_first() -> None:
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    reporter = TorchReporter(model, optimizer, sample_every=2)
    for col_sum in (4.0, 10.0, 6.0):  # steps 0 and 2 are sampled: mean |g| = col_sum / 2
        sum_step(model, optimizer, [[col_sum, 0.0]])
    layer = reporter.end_epoch()["layers"][0]
    assert layer["grad_abs_mean"] == pytest.approx((2.0 + 3.0) / 2)
    assert layer["grad_abs_max"] == pytest.approx(6.0)
    # the next epoch samples its own first step again
    sum_step(model, optimizer, [[10.0, 0.0]])
    assert reporter.end_epoch()["layers"][0]["grad_abs_mean"] == pytest.approx(5.0)


def reference_stats(grads: List[Dict[str, torch.Tensor]], name: str) -> Dict[str, float]:
    """The payload's gradient fields computed naively, one Python loop per number."""
    per_batch = [[abs(v) for v in g[name].flatten().tolist()] for g in grads]
    return {
        "grad_abs_mean": sum(sum(b) / len(b) for b in per_batch) / len(per_batch),
        "grad_zero_frac": sum(sum(1 for v in b if v == 0) / len(b) for b in per_batch) / len(per_batch),
        "grad_abs_max": max(max(b) for b in per_batch),
    }


def test_a_relu_network_matches_a_naive_reference() -> None:
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    reporter = TorchReporter(model, optimizer, sample_every=3)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen: List[Dict[str, torch.Tensor]] = []
    for batch in range(7):
        optimizer.zero_grad()
        x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if batch % 3 == 0:
            seen.append({n: p.grad.clone() for n, p in model.named_parameters()})
        optimizer.step()
    payload = reporter.end_epoch()
    assert [layer["name"] for layer in payload["layers"]] == ["0.weight", "2.weight", "4.weight"]
    params = dict(model.named_parameters())
    for layer in payload["layers"]:
        name = layer["name"]
        for field, value in reference_stats(seen, name).items():
            assert layer[field] == pytest.approx(value, rel=1e-5, abs=1e-9), (name, field)
        w = params[name].detach()
        assert layer["weight_abs_mean"] == pytest.approx(w.abs().mean().item(), rel=1e-6)
        assert layer["update_ratio"] == pytest.approx(((w - start[name]).norm() / start[name].norm()).item(), rel=1e-5)
    assert 0 < payload["layers"][1]["grad_zero_frac"] < 1  # ReLU zeroes some inputs of the middle layer


def test_buffers_are_reused_and_every_epoch_is_right() -> None:
    """The starting weights and (on the CPU) the gradients' signs live in buffers written in place from epoch to epoch
    (an epoch allocates nothing the size of the model); each epoch's weight fields still match a reference."""
    torch.manual_seed(5)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    reporter = TorchReporter(model, optimizer, sample_every=2)
    params = dict(model.named_parameters())
    pointers = []
    for epoch in range(3):
        start = {n: p.detach().clone() for n, p in params.items()}
        seen = []
        for batch in range(5):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(torch.randn(8, 5)), torch.randint(0, 3, (8,))).backward()
            if batch % 2 == 0:
                seen.append({n: p.grad.clone() for n, p in params.items()})
            optimizer.step()
        pointers.append(([b.data_ptr() for b in reporter._start_buffers], [t.data_ptr() for ts in reporter._scratch.values() for t in ts]))
        payload = reporter.end_epoch()
        for layer in payload["layers"]:
            name, w = layer["name"], params[layer["name"]].detach()
            assert layer["update_ratio"] == pytest.approx(((w - start[name]).norm() / start[name].norm()).item(), rel=1e-5), (epoch, name)
            assert layer["weight_abs_mean"] == pytest.approx(w.abs().mean().item(), rel=1e-6)
            for field, value in reference_stats(seen, name).items():
                assert layer[field] == pytest.approx(value, rel=1e-5, abs=1e-9), (epoch, name, field)
    assert pointers[0] == pointers[1] == pointers[2] and pointers[0][1]


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: int = 25) -> torch.Tensor:
    total = torch.zeros(())
    for _ in range(batches):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(torch.randn(16, 6)), torch.randn(16, 1))
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return total / batches


def test_exactly_one_host_read_per_epoch() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with HostReads() as bare:  # the training loop alone reads nothing to the host
        train_epoch(model, optimizer)
    assert bare.calls == []
    reporter = TorchReporter(model, optimizer, sample_every=1)
    for epoch in range(3):
        with HostReads() as reads:
            loss = train_epoch(model, optimizer)
            payload = reporter.end_epoch({"train_loss": loss})  # the loss tensor travels in the same read
        assert reads.calls == ["tolist"], f"epoch {epoch}: {reads.calls}"
        assert payload["step"] == epoch and len(payload["layers"]) == 3
        assert payload["metrics"]["train_loss"] == pytest.approx(loss.item())


def test_a_diverging_run_is_flagged_non_finite() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0)
    reporter = TorchReporter(model, optimizer)
    flags = []
    for _ in range(3):
        loss = train_epoch(model, optimizer)
        payload = reporter.end_epoch({"train_loss": loss})
        flags.append(payload["non_finite"])
    assert flags[-1] is True and payload["metrics"]["train_loss"] is None
    assert any(layer.get("weight_abs_mean", 0) is None for layer in payload["layers"])


def test_non_finite_gradients_set_the_flag_and_null_fields() -> None:
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    reporter = TorchReporter(model, optimizer, sample_every=1)
    sum_step(model, optimizer, [[math.inf, 0.0]])
    payload = reporter.end_epoch()
    assert payload["non_finite"] is True
    assert payload["layers"][0]["grad_abs_mean"] is None and payload["layers"][0]["grad_abs_max"] is None


def test_amp_scaler_skipped_steps_are_caught() -> None:
    """A GradScaler skips optimizer.step() (and its hooks) on inf/NaN gradients; observe() before it still sees them."""
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    reporter = TorchReporter(model, scaler=scaler, sample_every=1)
    hooked = TorchReporter(model, optimizer, sample_every=1)  # the plain hook, for comparison
    def amp_step(x: List[List[float]]) -> None:
        optimizer.zero_grad()
        scaler.scale(model(torch.tensor(x)).sum()).backward()
        scaler.unscale_(optimizer)
        reporter.observe()
        scaler.step(optimizer)
        scaler.update()

    for x in ([[1.0, 0.0]], [[math.nan, 0.0]], [[1.0, 0.0]]):
        amp_step(x)
    payload = reporter.end_epoch()
    # the NaN step was skipped by the scaler: left out of the statistics, scale 4 -> 2 (>= 1): not a symptom yet
    assert payload["non_finite"] is False
    assert payload["layers"][0]["grad_abs_mean"] == pytest.approx(0.5)
    assert hooked.end_epoch()["layers"][0]["grad_abs_mean"] == pytest.approx(0.5)  # the hook saw only the 2 steps taken
    # a run whose every step overflows drives the scale below 1: the gradients overflow even unscaled
    for _ in range(4):
        amp_step([[math.inf, 0.0]])
    payload = reporter.end_epoch()
    assert payload["non_finite"] is True
    assert "grad_abs_mean" not in payload["layers"][0]  # no finite sampled step: not measured


def test_frozen_and_unused_layers_report_what_they_have(caplog: pytest.LogCaptureFixture) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].weight.requires_grad_(False)
    unused = torch.nn.Linear(4, 4)
    model.add_module("unused", unused)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    reporter = TorchReporter(model, optimizer, sample_every=1)
    with caplog.at_level(logging.WARNING, logger="bttackler.torch"):
        for _ in range(2):
            optimizer.zero_grad()
            model[2](model[1](model[0](torch.randn(3, 4)))).sum().backward()
            optimizer.step()
        payload = reporter.end_epoch()
    layers = {layer["name"]: layer for layer in payload["layers"]}
    assert set(layers) == {"0.weight", "1.weight", "2.weight", "unused.weight"}
    for name in ("0.weight", "unused.weight"):
        assert "grad_abs_mean" not in layers[name] and layers[name]["update_ratio"] == 0.0
    assert layers["1.weight"]["grad_abs_mean"] > 0
    assert "0.weight" in caplog.text and "unused.weight" in caplog.text


def test_a_model_moved_between_devices_keeps_reporting(caplog: pytest.LogCaptureFixture) -> None:
    """Only one device here: the accumulators are put on the meta device, as if the model had left it."""
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reporter = TorchReporter(model, optimizer, sample_every=1)
    reporter.begin_epoch()
    reporter._device = torch.device("meta")
    reporter._acc = reporter._acc.to("meta")
    with caplog.at_level(logging.WARNING, logger="bttackler.torch"):
        sum_step(model, optimizer, [[1.0, 0.0], [3.0, 0.0]])
        payload = reporter.end_epoch()
    assert "moved from meta to cpu" in caplog.text
    assert payload["layers"][0]["grad_abs_mean"] == pytest.approx(2.0)


def test_an_internal_fault_never_raises_into_training(caplog: pytest.LogCaptureFixture) -> None:
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reporter = TorchReporter(model, optimizer, sample_every=1)
    sum_step(model, optimizer, [[1.0, 0.0]])
    reporter._acc = torch.zeros(1)  # a broken accumulator: end_epoch falls back to the metrics alone
    with caplog.at_level(logging.WARNING, logger="bttackler.torch"):
        payload = reporter.end_epoch({"train_loss": 0.5})
    assert payload["metrics"] == {"train_loss": 0.5} and "layers" not in payload
    assert "left out" in caplog.text
    sum_step(model, optimizer, [[1.0, 0.0]])  # and the next epoch is whole again
    assert reporter.end_epoch()["layers"][0]["grad_abs_mean"] == pytest.approx(0.5)


def test_bad_arguments_are_refused_up_front() -> None:
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="sample_every must be an integer >= 1, got 0"):
        TorchReporter(model, sample_every=0)
    with pytest.raises(ValueError, match=r"\['nope'\] are not parameters"):
        TorchReporter(model, layers=["nope"])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        TorchReporter("model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no parameter with at least 2 dimensions"):
        TorchReporter(torch.nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="one-element tensor"):
        TorchReporter(model).end_epoch({"train_loss": torch.ones(3)})


def test_cuda_graph_is_checked_and_the_cpu_stays_eager() -> None:
    model = one_layer([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="cuda_graph must be True, False or None"):
        TorchReporter(model, cuda_graph="yes")  # type: ignore[arg-type]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reporter = TorchReporter(model, optimizer, sample_every=1, cuda_graph=True)
    for _ in range(3):  # a graph would be captured at the second sampled step: not on the CPU
        sum_step(model, optimizer, [[1.0, 0.0], [3.0, 0.0]])
    assert reporter._graph is None
    assert reporter.end_epoch()["layers"][0]["grad_abs_mean"] == pytest.approx(2.0)


def test_payloads_are_accepted_by_the_real_service(client: BTTacklerClient) -> None:
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    model[0].weight.requires_grad_(False)
    sgd = torch.optim.SGD(model.parameters(), lr=50.0)  # diverges: null fields and non_finite
    reporter = TorchReporter(model, sgd, max_steps=4)
    study = f"torch-{uuid.uuid4().hex[:8]}"
    verdicts = []
    for _ in range(4):
        payload = reporter.end_epoch({"train_loss": train_epoch(model, sgd)})
        verdicts.append(client.report_and_assess(study, "t0", payload))
    assert all(v is not None for v in verdicts), "the service refused a payload (see the warning above)"
    assert any(v["stop"] and "NF" in v.get("reason", "") for v in verdicts)

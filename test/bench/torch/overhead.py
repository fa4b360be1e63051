"""`npm run bench:torch`: the epoch-time overhead of bttackler.torch.TorchReporter with its defaults.

Two models, a small VGG-style CNN (3x32x32 inputs) and a small Transformer encoder (4 layers,
d_model 256, sequences of 64 tokens), trained on random data that sits on the device, so that
the epoch is pure training. The arms run interleaved, one epoch each per round, their order
rotated from round to round: ``off`` (no reporter), ``on`` (TorchReporter(model, optimizer):
every 10th batch observed, one end_epoch read) and ``every`` (sample_every=1, for comparison).
Each epoch ends with a device synchronisation, so its time is the work it queued. The figure is
the median epoch time per arm (wall time on CUDA; on the CPU by default the process's CPU time,
steadier on a shared machine); the overhead is median(on) / median(off) - 1, with the median of
the per-round ratios beside it.

On CUDA, ``--sync-check`` first runs one reporter epoch under ``torch.cuda.set_sync_debug_mode("warn")``
and counts the synchronising operations: none during the batches, one at end_epoch.

    .venv/bin/python test/bench/torch/overhead.py --device cpu --rounds 9 --batches 20
    python3 test/bench/torch/overhead.py --device cuda --rounds 15 --batches 100 --sync-check --out result.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "adapters" / "python"))
from bttackler.torch import TorchReporter  # noqa: E402


def cnn() -> torch.nn.Module:
    def block(cin: int, cout: int) -> List[torch.nn.Module]:
        return [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(cout, cout, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]

    return torch.nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128), torch.nn.Flatten(), torch.nn.Linear(128 * 16, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


class TinyTransformer(torch.nn.Module):
    def __init__(self, vocab: int = 1000, d_model: int = 256, heads: int = 4, depth: int = 4, seq: int = 64) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, d_model)
        self.pos = torch.nn.Parameter(torch.randn(seq, d_model) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout=0.1, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = torch.nn.Linear(d_model, 10)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens) + self.pos).mean(dim=1))


def make(kind: str, device: torch.device, batch: int, batches: int) -> Dict[str, Any]:
    torch.manual_seed(0)
    if kind == "cnn":
        model = cnn()
        xs = torch.randn(batches, batch, 3, 32, 32, device=device)
    else:
        model = TinyTransformer()
        xs = torch.randint(0, 1000, (batches, batch, 64), device=device)
    ys = torch.randint(0, 10, (batches, batch), device=device)
    model = model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    return {"model": model, "optimizer": optimizer, "xs": xs, "ys": ys}


#: The epoch clock: wall time on CUDA (after a synchronisation); on the CPU this process's CPU time, which
#: the other processes of a shared machine hardly move (with --threads 1 the training runs on one thread).
CLOCK: Dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def train_batches(setup: Dict[str, Any]) -> torch.Tensor:
    """One pass over the setup's batches; the summed loss stays on the device."""
    model, optimizer, xs, ys = setup["model"], setup["optimizer"], setup["xs"], setup["ys"]
    total = torch.zeros((), device=xs.device)
    for i in range(xs.shape[0]):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xs[i]), ys[i])
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return total


def epoch(setup: Dict[str, Any], reporter: Optional[TorchReporter], sync: Callable[[], None]) -> float:
    xs = setup["xs"]
    sync()
    start = clock()
    total = train_batches(setup)
    if reporter is not None:
        reporter.end_epoch({"train_loss": total / xs.shape[0]})
    sync()
    return clock() - start


def sync_check(setup: Dict[str, Any], epochs: int = 2) -> List[Dict[str, int]]:
    """Per epoch: synchronising CUDA operations during the batches (reporter observing every batch) and at end_epoch."""
    reporter = TorchReporter(setup["model"], setup["optimizer"], sample_every=1)
    xs = setup["xs"]
    torch.cuda.synchronize()
    counts: List[Dict[str, int]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(epochs):
                start = len(caught)
                total = train_batches(setup)
                middle = len(caught)
                reporter.end_epoch({"train_loss": total / xs.shape[0]})
                syncs = [str(w.message) for w in caught]
                counts.append({"batches_observed": xs.shape[0],
                               "syncs_in_batches": sum("synchroniz" in m for m in syncs[start:middle]),
                               "syncs_in_end_epoch": sum("synchroniz" in m for m in syncs[middle:])})
        finally:
            torch.cuda.set_sync_debug_mode(0)
    reporter.close()
    return counts


def agreement(kind: str, device: torch.device) -> Dict[str, float]:
    """The largest relative difference between the payload's layer fields on ``device`` and on the CPU, for the same
    model (dropout off), data and 3 sampled SGD steps: the device path computes what the CPU path computes."""
    import copy

    base = make(kind, torch.device("cpu"), 16, 3)
    payloads = []
    for where in (device, torch.device("cpu")):
        model = copy.deepcopy(base["model"]).to(where).eval()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        xs, ys = base["xs"].to(where), base["ys"].to(where)
        reporter = TorchReporter(model, optimizer, sample_every=1)
        for i in range(xs.shape[0]):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(xs[i]), ys[i]).backward()
            optimizer.step()
        payloads.append(reporter.end_epoch())
        reporter.close()
    worst: Dict[str, float] = {}
    for a, b in zip(payloads[0]["layers"], payloads[1]["layers"]):
        for field, value in a.items():
            if field != "name":
                worst[field] = max(worst.get(field, 0.0), abs(value - b[field]) / max(abs(b[field]), 1e-12))
    return worst


def run(kind: str, device: torch.device, rounds: int, batches: int, batch: int, arms: List[str], check: bool) -> Dict[str, Any]:
    setup = make(kind, device, batch, batches)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result: Dict[str, Any] = {"model": kind, "batch": batch, "batches": batches, "rounds": rounds,
                              "parameters": sum(p.numel() for p in setup["model"].parameters())}
    if check and device.type == "cuda":
        result["sync_check"] = sync_check(setup)
        result["agreement_with_cpu"] = agreement(kind, device)
    reporters = {
        "off": None,
        "on": TorchReporter(setup["model"], None),
        "every": TorchReporter(setup["model"], None, sample_every=1),
    }
    hooks = {}
    for _ in range(2):  # warm-up: one epoch per arm
        for arm in arms:
            epoch_with(setup, reporters[arm], sync, hooks)
    times: Dict[str, List[float]] = {arm: [] for arm in arms}
    for r in range(rounds):
        order = arms[r % len(arms):] + arms[:r % len(arms)]
        for arm in order:
            times[arm].append(epoch_with(setup, reporters[arm], sync, hooks))
    result["layers"] = len(reporters["on"].names)
    result["median_seconds"] = {arm: statistics.median(t) for arm, t in times.items()}
    base = result["median_seconds"]["off"]
    result["batch_ms_off"] = base / batches * 1000
    result["overhead"] = {arm: result["median_seconds"][arm] / base - 1 for arm in arms if arm != "off"}
    result["overhead_paired"] = {arm: statistics.median(a / b - 1 for a, b in zip(times[arm], times["off"])) for arm in arms if arm != "off"}
    if device.type == "cpu":  # the CPU computes synchronously: the reporter's own work can be timed directly too
        result["direct"] = direct_cost(setup, batches, base)
    result["epoch_seconds"] = times
    return result


def direct_cost(setup: Dict[str, Any], batches: int, epoch_seconds: float, repeats: int = 21) -> Dict[str, float]:
    """Median time of one sampled observation (the last batch's gradients) and of one begin + end of an epoch;
    overhead = (sampled batches x observation + begin/end) / epoch time without the reporter."""
    reporter = TorchReporter(setup["model"], None, sample_every=1)
    reporter.begin_epoch()
    observe, ends = [], []
    for _ in range(repeats):
        start = clock()
        reporter.observe()
        observe.append(clock() - start)
    for _ in range(max(repeats // 4, 3)):
        start = clock()
        reporter.end_epoch()
        reporter.begin_epoch()
        ends.append(clock() - start)
    sample, end = statistics.median(observe), statistics.median(ends)
    sampled = -(-batches // 10)
    return {"observe_ms": sample * 1000, "epoch_end_ms": end * 1000, "sampled_batches": sampled,
            "overhead": (sampled * sample + end) / epoch_seconds, "overhead_every_batch": (batches * sample + end) / epoch_seconds}


def epoch_with(setup: Dict[str, Any], reporter: Optional[TorchReporter], sync: Callable[[], None], hooks: Dict[int, Any]) -> float:
    """One epoch with ``reporter`` hooked to the optimizer's step for its duration (no hook for ``off``)."""
    if reporter is None:
        return epoch(setup, None, sync)
    handle = setup["optimizer"].register_step_pre_hook(lambda *_: reporter.observe())
    try:
        return epoch(setup, reporter, sync)
    finally:
        handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="cnn,transformer")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batches", type=int, default=20, help="batches an epoch")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 128 on CUDA, 32 on the CPU)")
    parser.add_argument("--arms", default="off,on,every")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    parser.add_argument("--clock", choices=sorted(CLOCK), default=None, help="epoch clock (default: wall on CUDA, cpu on the CPU)")
    parser.add_argument("--sync-check", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    batch = args.batch or (128 if device.type == "cuda" else 32)
    global clock
    clock_name = args.clock or ("wall" if device.type == "cuda" else "cpu")
    clock = CLOCK[clock_name]
    arms = args.arms.split(",")
    if "off" not in arms:
        raise SystemExit(f"--arms must include off, got {args.arms!r}")
    report: Dict[str, Any] = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "torch": torch.__version__, "python": platform.python_version(), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "clock": clock_name, "results": [],
    }
    for kind in args.models.split(","):
        result = run(kind, device, args.rounds, args.batches, batch, arms, args.sync_check)
        report["results"].append(result)
        summary = {k: v for k, v in result.items() if k != "epoch_seconds"}
        print(json.dumps(summary), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

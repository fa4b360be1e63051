"""`npm run bench:torch`: the epoch-time overhead of bttackler.torch.TorchReporter with its defaults.

Two models, a small VGG-style CNN (3x32x32 inputs) and a small Transformer encoder (4 layers,
d_model 256, sequences of 64 tokens), trained on random data that sits on the device, so that
the epoch is pure training. The arms run interleaved, one epoch each per round, in an order that
cycles through every permutation of the arms (each arm as often right before as right after each
other: the machine's speed drifts over seconds, and the pairs must not carry that drift):

- ``off`` and ``off2``: no reporter, twice: the A/A pair, whose difference is the noise floor;
- ``on``: TorchReporter(model, optimizer) with its defaults (every 10th batch observed, one
  end_epoch read; on CUDA the sampled step replays a CUDA graph);
- ``eager`` (CUDA, optional): the defaults with ``cuda_graph=False``, the sampled step launched op by op;
- ``every`` (optional): ``sample_every=1``, for comparison.

Each epoch ends with a device synchronisation, so its time is the work it queued. The epoch
clock is CUDA events on CUDA (recorded at the epoch's start, after a synchronisation, and after
its end_epoch; the wall time and the process's CPU time are kept beside it) and on the CPU this
process's CPU time (steadier on a shared machine). The figure for an arm is the median over the
rounds of its paired ratio epoch(arm) / epoch(off) - 1, with a distribution-free 95 % confidence
interval of that median (order statistics of the binomial), its interquartile range, and the
ratio of the arms' medians. ``off2`` gives the same figures for no difference at all.

``--direct`` also times the reporter's own work outside the training: the host time of one
sampled observation and of one epoch end + begin (on CUDA also the device time of a sampled
observation, by events), and the estimate (sampled batches x observation + epoch end) / epoch.
On CUDA, ``--sync-check`` first runs reporter epochs observing every batch (graph and eager)
under ``torch.cuda.set_sync_debug_mode("warn")`` and counts the synchronising operations: none
during the batches, one at end_epoch; and compares the payloads of the graph and eager paths.

    .venv/bin/python test/bench/torch/overhead.py --device cpu --rounds 24 --batches 10 --batch 16 --threads 1
    python3 test/bench/torch/overhead.py --device cuda --models cnn --rounds 240 --batches 100 --sync-check --direct --out result.json
"""
from __future__ import annotations

import argparse
import copy
import gc
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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


#: Host clocks: wall time, and this process's CPU time, which the other processes of a shared machine hardly move.
CLOCK: Dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


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


class Timer:
    """One epoch's times: ``main`` (events on CUDA, else the chosen host clock), wall, and the host time until the
    last batch was queued (on CUDA; close to the wall time when the host, not the device, sets the pace)."""

    def __init__(self, device: torch.device, clock: Callable[[], float]) -> None:
        self.cuda = device.type == "cuda"
        self.clock = clock
        if self.cuda:
            self.events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def epoch(self, setup: Dict[str, Any], reporter: Optional[TorchReporter]) -> Dict[str, float]:
        xs = setup["xs"]
        self.sync()
        gc.collect()  # outside the clock, the same for every arm
        wall0, main0, cpu0 = time.perf_counter(), self.clock(), time.process_time()
        if self.cuda:
            self.events[0].record()
        total = train_batches(setup)
        queued = time.perf_counter() - wall0
        if reporter is not None:
            reporter.end_epoch({"train_loss": total / xs.shape[0]})
        if self.cuda:
            self.events[1].record()
        self.sync()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        main = self.events[0].elapsed_time(self.events[1]) / 1000 if self.cuda else self.clock() - main0
        return {"main": main, "wall": wall, "cpu": cpu, "queued": queued}


def epoch_with(timer: Timer, setup: Dict[str, Any], reporter: Optional[TorchReporter]) -> Dict[str, float]:
    """One epoch with ``reporter`` hooked to the optimizer's step for its duration (no hook without one)."""
    if reporter is None:
        return timer.epoch(setup, None)
    handle = setup["optimizer"].register_step_pre_hook(lambda *_: reporter.observe())
    try:
        return timer.epoch(setup, reporter)
    finally:
        handle.remove()


# -- statistics ---------------------------------------------------------------------------------

def median_ci(values: Sequence[float], confidence: float = 0.95) -> Dict[str, Any]:
    """The median of ``values`` with a distribution-free confidence interval: the order statistics x(k) and
    x(n+1-k), k the largest with P(Binomial(n, 1/2) <= k - 1) <= (1 - confidence) / 2; and the quartiles.

    >>> median_ci([float(v) for v in range(1, 31)])["ci"]
    [10.0, 21.0]
    """
    xs = sorted(values)
    n = len(xs)
    alpha = (1 - confidence) / 2
    k, cdf = 0, 0.0
    for j in range(n + 1):
        p = math.comb(n, j) / 2 ** n
        if cdf + p > alpha:
            break
        cdf += p
        k = j + 1
    out: Dict[str, Any] = {"n": n, "median": statistics.median(xs)}
    out["ci"] = [xs[k - 1], xs[n - k]] if k >= 1 else None
    out["ci_coverage"] = 1 - 2 * cdf if k >= 1 else None
    if n >= 4:
        q = statistics.quantiles(xs, n=4)
        out["iqr"] = [q[0], q[2]]
    return out


def compare(times: Dict[str, List[float]], base: str = "off") -> Dict[str, Any]:
    """Per arm: the paired ratios epoch(arm) / epoch(base) - 1 (median, CI, IQR) and the ratio of the medians."""
    out: Dict[str, Any] = {}
    for arm, ts in times.items():
        if arm == base:
            continue
        paired = median_ci([a / b - 1 for a, b in zip(ts, times[base])])
        paired["of_medians"] = statistics.median(ts) / statistics.median(times[base]) - 1
        out[arm] = paired
    return out


# -- checks and direct costs --------------------------------------------------------------------

#: What torch.cuda.set_sync_debug_mode("warn") says of each synchronising operation.
SYNC = "called a synchronizing CUDA operation"


def sync_check(setup: Dict[str, Any], epochs: int = 2) -> Dict[str, List[Dict[str, int]]]:
    """Per path (graph, eager) and epoch: synchronising CUDA operations during the batches (observing every batch,
    the graph's capture included) and at end_epoch."""
    xs = setup["xs"]
    result: Dict[str, List[Dict[str, int]]] = {}
    for path, graph in (("graph", None), ("eager", False)):
        reporter = TorchReporter(setup["model"], setup["optimizer"], sample_every=1, cuda_graph=graph)
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
                                   "syncs_in_batches": sum(SYNC in m for m in syncs[start:middle]),
                                   "syncs_in_end_epoch": sum(SYNC in m for m in syncs[middle:])})
            finally:
                torch.cuda.set_sync_debug_mode(0)
        counts[-1]["graph_used"] = int(reporter._graph is not None)
        reporter.close()
        result[path] = counts
    return result


def payload_difference(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, float]:
    worst: Dict[str, float] = {}
    for la, lb in zip(a["layers"], b["layers"]):
        for field, value in la.items():
            if field != "name":
                worst[field] = max(worst.get(field, 0.0), abs(value - lb[field]) / max(abs(lb[field]), 1e-12))
    return worst


def agreement(kind: str, device: torch.device, tf32: Optional[bool] = None) -> Dict[str, Any]:
    """The largest relative difference between the payload's layer fields (1) on ``device`` by the graph and eagerly,
    two reporters observing the same steps, and (2) on ``device`` and on the CPU, for the same model (dropout off), data
    and 3 sampled SGD steps. ``tf32``: the cuDNN TF32 setting for (2) (None: as found)."""
    base = make(kind, torch.device("cpu"), 16, 3)
    payloads = []
    graph_vs_eager: Dict[str, float] = {}
    saved = torch.backends.cudnn.allow_tf32
    if tf32 is not None:
        torch.backends.cudnn.allow_tf32 = tf32
    try:
        for where in (device, torch.device("cpu")):
            model = copy.deepcopy(base["model"]).to(where).eval()
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            xs, ys = base["xs"].to(where), base["ys"].to(where)
            reporter = TorchReporter(model, optimizer, sample_every=1)
            eager = TorchReporter(model, optimizer, sample_every=1, cuda_graph=False)
            for i in range(xs.shape[0]):
                optimizer.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(xs[i]), ys[i]).backward()
                optimizer.step()
            used = reporter._graph is not None
            payloads.append(reporter.end_epoch())
            if where.type == "cuda":
                graph_vs_eager = payload_difference(payloads[-1], eager.end_epoch())
                graph_vs_eager["graph_used"] = float(used)
            reporter.close()
            eager.close()
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    return {"graph_vs_eager": graph_vs_eager, "device_vs_cpu": payload_difference(payloads[0], payloads[1])}


def direct_cost(setup: Dict[str, Any], batches: int, epoch_seconds: float, device: torch.device, repeats: int = 50) -> Dict[str, Any]:
    """The reporter's own work, timed outside the training on the last batch's gradients: host time of one sampled
    observation and of one epoch end + begin (medians), on CUDA also the device time of one sampled observation
    (events), per path; and the estimate (sampled batches x observation + end) / epoch, from the host times."""
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.perf_counter if cuda else time.process_time
    sampled = -(-batches // 10)
    out: Dict[str, Any] = {"sampled_batches": sampled}
    for path, graph in ((("graph", None), ("eager", False)) if cuda else (("eager", None),)):
        reporter = TorchReporter(setup["model"], None, sample_every=1, cuda_graph=graph)
        reporter.begin_epoch()
        for _ in range(3):  # the first eager, the second captures the graph
            reporter.observe()
        sync()
        host, dev, ends = [], [], []
        for r in range(repeats):
            start = clock()
            reporter.observe()
            host.append(clock() - start)
            if r % 10 == 9:
                sync()
        if cuda:
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            for _ in range(repeats):
                e0.record()
                reporter.observe()
                e1.record()
                torch.cuda.synchronize()
                dev.append(e0.elapsed_time(e1) / 1000)
        for _ in range(max(repeats // 5, 5)):
            sync()
            start = clock()
            reporter.end_epoch()
            reporter.begin_epoch()
            ends.append(clock() - start)
        sample, end = statistics.median(host), statistics.median(ends)
        entry = {"observe_host_ms": sample * 1000, "epoch_end_host_ms": end * 1000,
                 "estimate": (sampled * sample + end) / epoch_seconds,
                 "estimate_every_batch": (batches * sample + end) / epoch_seconds}
        if cuda:
            entry["observe_device_ms"] = statistics.median(dev) * 1000
            entry["graph_used"] = reporter._graph is not None
        out[path] = entry
        reporter.close()
    return out


# -- the run ------------------------------------------------------------------------------------

def make_reporter(arm: str, model: torch.nn.Module) -> Optional[TorchReporter]:
    if arm in ("off", "off2"):
        return None
    if arm == "on":
        return TorchReporter(model, None)
    if arm == "eager":
        return TorchReporter(model, None, cuda_graph=False)
    if arm == "every":
        return TorchReporter(model, None, sample_every=1)
    raise SystemExit(f"unknown arm {arm!r} (off, off2, on, eager, every)")


def run(kind: str, device: torch.device, args: argparse.Namespace, arms: List[str], clock: Callable[[], float]) -> Dict[str, Any]:
    batches, rounds = args.batches, args.rounds
    setup = make(kind, device, args.batch, batches)
    result: Dict[str, Any] = {"model": kind, "batch": args.batch, "batches": batches, "rounds": rounds, "arms": arms,
                              "parameters": sum(p.numel() for p in setup["model"].parameters())}
    if args.sync_check and device.type == "cuda":
        result["sync_check"] = sync_check(setup)
        result["agreement"] = agreement(kind, device)
        if kind == "cnn":
            result["agreement_tf32_off"] = agreement(kind, device, tf32=False)
    reporters = {arm: make_reporter(arm, setup["model"]) for arm in arms}
    timer = Timer(device, clock)
    for _ in range(args.warmup):
        for arm in arms:
            epoch_with(timer, setup, reporters[arm])
    clocks = ("main", "wall", "cpu", "queued") if device.type == "cuda" else ("main",)
    times: Dict[str, Dict[str, List[float]]] = {c: {arm: [] for arm in arms} for c in clocks}
    orders = arm_orders(arms)
    for r in range(rounds):
        for arm in orders[r % len(orders)]:
            measured = epoch_with(timer, setup, reporters[arm])
            for c in clocks:
                times[c][arm].append(measured[c])
    result["orders"] = [list(o) for o in orders]
    result["layers"] = len(TorchReporter(setup["model"]).names)
    result["graph_used"] = {arm: rep._graph is not None for arm, rep in reporters.items() if rep is not None}
    result["median_seconds"] = {arm: statistics.median(t) for arm, t in times["main"].items()}
    base = result["median_seconds"]["off"]
    result["batch_ms_off"] = base / batches * 1000
    result["overhead"] = compare(times["main"])
    if device.type == "cuda":
        result["overhead_wall"] = compare(times["wall"])
        result["overhead_process_cpu"] = compare(times["cpu"])
        result["queued_share_off"] = statistics.median(q / w for q, w in zip(times["queued"]["off"], times["wall"]["off"]))
        result["process_cpu_share_off"] = statistics.median(c / w for c, w in zip(times["cpu"]["off"], times["wall"]["off"]))
    if args.direct:
        result["direct"] = direct_cost(setup, batches, base, device)
    result["epoch_seconds"] = times["main"]
    if device.type == "cuda":
        result["epoch_wall_seconds"] = times["wall"]
        result["epoch_process_cpu_seconds"] = times["cpu"]
    return result


def arm_orders(arms: List[str]) -> List[Tuple[str, ...]]:
    """The arms' orders within a round, cycled through round after round: every permutation for up to 4 arms (each
    arm as often before as after each other, so that drifts of the machine cancel in the pairs), else the rotations.

    >>> arm_orders(["off", "on"])
    [('off', 'on'), ('on', 'off')]
    """
    if len(arms) <= 4:
        return list(itertools.permutations(arms))
    return [tuple(arms[r:] + arms[:r]) for r in range(len(arms))]


def pct(x: float) -> str:
    return f"{x * 100:+.2f} %"


def summary(result: Dict[str, Any]) -> str:
    lines = [f"{result['model']}: {result['batch_ms_off']:.2f} ms a batch, {result['batches']} batches an epoch, {result['rounds']} rounds"]
    for key, label in (("overhead", "epoch"), ("overhead_process_cpu", "process CPU")):
        if key not in result:
            continue
        if key != "overhead":
            lines.append(f"  by {label} time:")
        for arm, o in result[key].items():
            ci = f"95 % CI {pct(o['ci'][0])} … {pct(o['ci'][1])}" if o["ci"] else "no CI (too few rounds)"
            iqr = f", IQR {pct(o['iqr'][0])} … {pct(o['iqr'][1])}" if "iqr" in o else ""
            lines.append(f"  {arm:6s} paired median {pct(o['median'])} ({ci}{iqr}); of medians {pct(o['of_medians'])}")
    for path, d in result.get("direct", {}).items():
        if isinstance(d, dict):
            dev = f", device {d['observe_device_ms']:.3f} ms" if "observe_device_ms" in d else ""
            lines.append(f"  direct {path}: observe {d['observe_host_ms']:.3f} ms host{dev}; end {d['epoch_end_host_ms']:.3f} ms -> {pct(d['estimate'])} (every batch {pct(d['estimate_every_batch'])})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="cnn,transformer")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batches", type=int, default=20, help="batches an epoch")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 128 on CUDA, 32 on the CPU)")
    parser.add_argument("--arms", default="off,off2,on", help="of off, off2 (A/A), on, eager (CUDA), every")
    parser.add_argument("--warmup", type=int, default=2, help="epochs per arm before the timed rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="cpu", help="the CPU's epoch clock (CUDA: events)")
    parser.add_argument("--sync-check", action="store_true")
    parser.add_argument("--direct", action="store_true", help="also time the reporter's own work directly (always on the CPU)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.batch = args.batch or (128 if device.type == "cuda" else 32)
    args.direct = args.direct or device.type == "cpu"
    clock_name = "cuda-events" if device.type == "cuda" else args.clock
    clock = CLOCK.get(args.clock, time.process_time)
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
        result = run(kind, device, args, arms, clock)
        report["results"].append(result)
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("epoch_")}), flush=True)
    print("\n".join(summary(r) for r in report["results"]), flush=True)


if __name__ == "__main__":
    main()

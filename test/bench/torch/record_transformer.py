"""Records bttackler.trace.v1 traces of a small Transformer on scikit-learn's digits, payloads from TorchReporter.

Each digit (8x8 pixels, in scikit-learn's package: nothing is downloaded) is a sequence of 8 row
tokens of 8 pixels; a Transformer encoder (pre- or post-norm, ``depth`` layers, ``heads`` heads)
reads them and a linear head over the mean token classifies. Every trial draws its
hyperparameters from SEARCH_SPACE (version 1) with its own seed, trains ``--epochs`` epochs without
ever being stopped (also not after its loss turned NaN), and writes one trace line (the format
of src/replay/trace-format.ts; ``dataset`` "digits", ``model`` "transformer", and ``torch`` /
``python`` versions where the JS recorder writes ``tfjs`` / ``node``):

| name         | values                                                                       |
| ------------ | ---------------------------------------------------------------------------- |
| lr           | log-uniform 1e-4 – 1                                                         |
| optimizer    | sgd, momentum (0.9), adam, rmsprop, adagrad                                  |
| activation   | relu, gelu, tanh, sigmoid (the feed-forward blocks')                        |
| batch_size   | 32, 64, 128, 256                                                             |
| d_model      | 16, 32, 64, 128                                                              |
| heads        | 1, 2, 4                                                                      |
| depth        | 1 – 4 encoder layers                                                         |
| norm_first   | pre-norm / post-norm                                                         |
| dropout      | uniform 0 – 0.5                                                              |
| weight_decay | 0 with probability 0.2, else log-uniform 1e-6 – 1e-2 (L2 through the optimizer) |
| init_scale   | log-uniform 0.01 – 10: every kernel ~ N(0, (init_scale · √(2 / fan_in))²)    |

Split (fixed seed 20240807): 1000 train, 400 validation, 397 test examples. ``--workers`` runs
trials in that many processes (trial i goes to worker i mod workers), each on ``--device``.

    .venv/bin/python test/bench/torch/record_transformer.py --trials 0:4 --epochs 3 --device cpu --out /tmp/t.jsonl
    python3 test/bench/torch/record_transformer.py --trials 0:300 --epochs 20 --workers 16 --device cuda --out traces.jsonl
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "adapters" / "python"))
from bttackler.torch import TorchReporter  # noqa: E402

SEARCH_SPACE_VERSION = 1
SPLIT = {"train": 1000, "val": 400, "test": 397, "seed": 20240807}
SAMPLE_EVERY = 10
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad")
ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid")


def sample_config(rng: random.Random) -> Dict[str, Any]:
    """One trial's hyperparameters; every parameter is drawn on every call, in this order."""
    def log_uniform(lo: float, hi: float) -> float:
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))

    lr = log_uniform(1e-4, 1.0)
    optimizer = rng.choice(OPTIMIZERS)
    activation = rng.choice(ACTIVATIONS)
    batch_size = rng.choice((32, 64, 128, 256))
    d_model = rng.choice((16, 32, 64, 128))
    heads = rng.choice((1, 2, 4))
    depth = rng.randint(1, 4)
    norm_first = rng.random() < 0.5
    dropout = rng.uniform(0.0, 0.5)
    decay_is_zero = rng.random() < 0.2
    decay = log_uniform(1e-6, 1e-2)
    init_scale = log_uniform(0.01, 10.0)
    return {"model": "transformer", "lr": lr, "optimizer": optimizer, "activation": activation, "batch_size": batch_size,
            "d_model": d_model, "heads": heads, "depth": depth, "norm_first": norm_first, "dropout": dropout,
            "weight_decay": 0.0 if decay_is_zero else decay, "init_scale": init_scale}


class DigitsTransformer(torch.nn.Module):
    def __init__(self, c: Dict[str, Any]) -> None:
        super().__init__()
        d = c["d_model"]
        self.embed = torch.nn.Linear(8, d)
        self.pos = torch.nn.Parameter(torch.zeros(1, 8, d))
        activation = {"relu": torch.nn.functional.relu, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[c["activation"]]
        layer = torch.nn.TransformerEncoderLayer(d, c["heads"], 2 * d, dropout=c["dropout"], activation=activation, batch_first=True, norm_first=c["norm_first"])
        self.encoder = torch.nn.TransformerEncoder(layer, c["depth"], enable_nested_tensor=False)
        self.head = torch.nn.Linear(d, 10)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, c["init_scale"] * math.sqrt(2.0 / p.shape[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x) + self.pos).mean(dim=1))


def make_optimizer(c: Dict[str, Any], params: Any) -> torch.optim.Optimizer:
    lr, wd = c["lr"], c["weight_decay"]
    name = c["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)


def load_split(device: torch.device) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = list(range(len(y)))
    random.Random(SPLIT["seed"]).shuffle(order)
    xs = torch.tensor(x[order] / 16.0, dtype=torch.float32).view(-1, 8, 8).to(device)
    ys = torch.tensor(y[order]).to(device)
    a, b = SPLIT["train"], SPLIT["train"] + SPLIT["val"]
    return {"train": (xs[:a], ys[:a]), "val": (xs[a:b], ys[a:b]), "test": (xs[b:], ys[b:])}


def evaluate(model: torch.nn.Module, data: Tuple[torch.Tensor, torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    with torch.no_grad():
        logits = model(data[0])
        loss = torch.nn.functional.cross_entropy(logits, data[1])
        acc = (logits.argmax(1) == data[1]).float().mean()
    model.train()
    return loss, acc


def record_trial(index: int, seed: int, epochs: int, device: torch.device, split: Dict[str, Any]) -> Dict[str, Any]:
    config = sample_config(random.Random(seed * 1_000_003 + index))
    started, cpu_started = time.perf_counter(), time.process_time()
    line: Dict[str, Any] = {
        "format": "bttackler.trace.v1", "dataset": "digits", "search_space": SEARCH_SPACE_VERSION, "trial": index, "seed": seed,
        "model": "transformer", "backend": f"torch-{device.type}", "max_epochs": epochs, "split": dict(SPLIT),
        "reporter": {"sample_every": SAMPLE_EVERY, "probe": 0}, "config": config, "epochs": [],
    }
    first_bad = None
    train_seconds = train_cpu = 0.0
    try:
        torch.manual_seed(seed * 1_000_003 + index)
        model = DigitsTransformer(config).to(device)
        optimizer = make_optimizer(config, model.parameters())
        reporter = TorchReporter(model, optimizer, sample_every=SAMPLE_EVERY, max_steps=epochs)
        x, y = split["train"]
        generator = torch.Generator(device="cpu").manual_seed(index)
        for epoch in range(epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            reporter.begin_epoch()
            order = torch.randperm(len(y), generator=generator).to(device)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            for i in range(0, len(y), config["batch_size"]):
                idx = order[i:i + config["batch_size"]]
                optimizer.zero_grad(set_to_none=True)
                logits = model(x[idx])
                loss = torch.nn.functional.cross_entropy(logits, y[idx])
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(idx)
                correct += (logits.detach().argmax(1) == y[idx]).sum()
            val_loss, val_acc = evaluate(model, split["val"])
            payload = reporter.end_epoch({"train_loss": loss_sum / len(y), "train_acc": correct / len(y), "val_loss": val_loss, "val_acc": val_acc})
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            payload["seconds"] = seconds
            e0 = time.perf_counter()
            test_acc = float(evaluate(model, split["test"])[1])
            line["epochs"].append({"payload": payload, "test_acc": test_acc if math.isfinite(test_acc) else None,
                                   "seconds": seconds, "cpu_seconds": cpu_seconds, "eval_seconds": time.perf_counter() - e0})
            train_seconds += seconds
            train_cpu += cpu_seconds
            if payload.get("non_finite") and first_bad is None:
                first_bad = epoch
        status = "non_finite" if first_bad is not None else "ok"
    except Exception as exc:  # noqa: BLE001 - a trial that cannot train is recorded as an error
        status = "error"
        line["error"] = f"{type(exc).__name__}: {exc}"
    last = line["epochs"][-1] if line["epochs"] else None
    line.update({
        "status": status, "first_non_finite_step": first_bad,
        "final": {"val_acc": (last["payload"].get("metrics") or {}).get("val_acc") if last else None, "test_acc": last["test_acc"] if last else None},
        "train_seconds": train_seconds, "train_cpu_seconds": train_cpu, "seconds": time.perf_counter() - started,
        "schema_failures": 0, "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "torch": torch.__version__, "python": platform.python_version(),
    })
    line["cpu_seconds_total"] = time.process_time() - cpu_started
    return line


def worker(trials: List[int], args: argparse.Namespace, out: Path) -> None:
    torch.set_num_threads(1)
    device = torch.device(args.device)
    split = load_split(device)
    done = set()
    if out.exists():  # resume: the trials already written stay
        for text in out.read_text().splitlines():
            try:
                done.add(json.loads(text)["trial"])
            except (ValueError, KeyError):
                pass
    with out.open("a") as f:
        for index in trials:
            if index in done:
                continue
            f.write(json.dumps(record_trial(index, args.seed, args.epochs, device, split), allow_nan=False) + "\n")
            f.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", default="0:300", help="first:end (end excluded)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", required=True, help="a .jsonl or .jsonl.gz file; per-worker parts sit beside it")
    parser.add_argument("--merge-only", action="store_true", help="only gather the per-worker parts into --out")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    first, end = (int(v) for v in args.trials.split(":"))
    trials = list(range(first, end))
    out = Path(args.out)
    part = lambda w: out.with_name(f"{out.name}.part{w}")  # noqa: E731
    if args.worker_index is not None:
        worker(trials[args.worker_index::args.workers], args, part(args.worker_index))
        return
    if args.merge_only:
        pass
    elif args.workers == 1:
        worker(trials, args, part(0))
    else:
        procs = [subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--worker-index", str(w)]) for w in range(args.workers)]
        for p in procs:
            p.wait()
    lines = []
    for w in range(args.workers):
        if part(w).exists():
            lines.extend(json.loads(t) for t in part(w).read_text().splitlines() if t.strip())
    lines.sort(key=lambda line: line["trial"])
    text = "".join(json.dumps(line, allow_nan=False) + "\n" for line in lines)
    if out.name.endswith(".gz"):
        with gzip.open(out, "wt") as f:
            f.write(text)
    else:
        out.write_text(text)
    statuses = {s: sum(1 for line in lines if line["status"] == s) for s in ("ok", "non_finite", "error")}
    print(json.dumps({"trials": len(lines), **statuses, "out": str(out)}), flush=True)


if __name__ == "__main__":
    main()

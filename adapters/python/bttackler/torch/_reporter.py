"""TorchReporter: per-epoch indicator payloads (payload v1) from a PyTorch model, read from the device once an epoch."""
from __future__ import annotations

import logging
import math
import numbers
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import torch

from . import _graph
from ._fused import _foreach_add_, _foreach_maximum_, gradient_norms, gradient_stats, norms

logger = logging.getLogger("bttackler.torch")

#: Rows of the gradient accumulator, one column per tracked layer: sums over the sampled steps of sum |g| and of
#: the number of entries != 0, the largest |g|, and (with a scaler) the number of samples whose gradient was finite.
_SUM_ABS, _SUM_NONZERO, _MAX, _N_FINITE = range(4)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class TorchReporter:
    """Indicator payloads (payload v1, docs/payload.md) for a PyTorch training, one per epoch.

    Tracks every parameter of ``model`` with at least 2 dimensions (the kernels of Linear, Conv,
    attention, embedding layers ...), in ``model.named_parameters()`` order and under those names,
    or the parameters named in ``layers``. At every ``sample_every``-th optimizer step of an epoch
    (the first always) it adds each layer's mean |gradient|, share of exactly-zero gradient entries,
    max |gradient| and a non-finite count to accumulators on the model's device, with one fused
    multi-tensor kernel per statistic for all layers. :meth:`end_epoch` adds the weights' mean |W|
    and the update ratio, and reads everything back in **one** device-to-host transfer.

    On CUDA a sampled step's statistics are captured once into a CUDA graph (from the second
    sampled step on), so that a sampled step costs two launches instead of about fifteen; the
    graph keeps one copy of the tracked gradients. ``cuda_graph=None`` (the default) uses it for
    models of up to 256 MiB of tracked gradients, ``True`` always, ``False`` never. The values
    are the same either way; without a scaler only (the AMP path stays eager).

    With ``optimizer`` given, a step pre-hook observes the gradients just before every
    ``optimizer.step()``. Under AMP give ``scaler`` (a ``torch.amp.GradScaler``) instead and call
    :meth:`observe` yourself after ``scaler.unscale_(optimizer)``: the scaler skips
    ``optimizer.step()`` (and so any step hook) exactly when gradients are non-finite. With a
    scaler, a sampled step whose gradients overflowed is left out of the statistics (the scaler
    skips it and lowers its scale; that is normal), and ``non_finite`` turns true when the scale
    fell below 1 (the gradients overflow even unscaled), or for non-finite weights or metrics.

    The reporter never raises into the training loop for its own faults (a parameter without a
    gradient, a frozen layer, a model moved between devices): it reports what it has, leaves out
    what it could not measure, and logs a warning on the ``bttackler.torch`` logger naming it.

    Example:

        >>> import torch
        >>> from bttackler.torch import TorchReporter
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> reporter = TorchReporter(model, optimizer, max_steps=3)
        >>> x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
        >>> for epoch in range(3):
        ...     for batch in range(4):
        ...         optimizer.zero_grad()
        ...         loss = torch.nn.functional.cross_entropy(model(x), y)
        ...         loss.backward()
        ...         optimizer.step()          # the hook observes the gradients first
        ...     payload = reporter.end_epoch({"train_loss": loss.detach()})
        >>> payload["step"], [layer["name"] for layer in payload["layers"]], payload["non_finite"]
        (2, ['0.weight', '2.weight'], False)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: Optional[torch.optim.Optimizer] = None,
        *,
        sample_every: int = 10,
        layers: Optional[Iterable[str]] = None,
        max_steps: Optional[int] = None,
        scaler: Any = None,
        update_ratio_floor: float = 1e-12,
        cuda_graph: Optional[bool] = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {model!r} ({type(model).__name__})")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {optimizer!r} ({type(optimizer).__name__})")
        self.sample_every = _check_int("sample_every", sample_every, 1)
        self.max_steps = None if max_steps is None else _check_int("max_steps", max_steps, 1)
        if isinstance(update_ratio_floor, bool) or not isinstance(update_ratio_floor, numbers.Real) or not update_ratio_floor > 0:
            raise ValueError(f"update_ratio_floor must be a number > 0, got {update_ratio_floor!r}")
        self.update_ratio_floor = float(update_ratio_floor)
        if scaler is not None and not callable(getattr(scaler, "unscale_", None)):
            raise TypeError(f"scaler must be a torch.amp.GradScaler or None, got {scaler!r} ({type(scaler).__name__})")
        self.scaler = scaler
        if cuda_graph is not None and not isinstance(cuda_graph, bool):
            raise TypeError(f"cuda_graph must be True, False or None, got {cuda_graph!r}")
        self.cuda_graph = cuda_graph
        self.model = model
        named = list(model.named_parameters())
        if layers is None:
            chosen = [(name, p) for name, p in named if p.dim() >= 2]
        else:
            if isinstance(layers, str):
                raise TypeError(f"layers must be a list of parameter names, got the string {layers!r}")
            wanted = list(layers)
            by_name = dict(named)
            unknown = [name for name in wanted if name not in by_name]
            if unknown:
                raise ValueError(f"layers: {unknown!r} are not parameters of the model (model.named_parameters() has {sorted(by_name)[:20]!r})")
            chosen = [(name, by_name[name]) for name in dict.fromkeys(wanted)]
        if not chosen:
            raise ValueError("the model has no parameter with at least 2 dimensions to track; name some with layers=[...]")
        self.names: List[str] = [name for name, _ in chosen]
        self._params: List[torch.nn.Parameter] = [p for _, p in chosen]
        self.step = 0
        self._hook = None
        if optimizer is not None and scaler is None:
            self._hook = optimizer.register_step_pre_hook(self._on_step)
        self._warned: Set[str] = set()
        self._index_cache: Dict[Tuple[int, ...], torch.Tensor] = {}
        self._started_at = time.perf_counter()
        self._buffer: Optional[torch.Tensor] = None
        self._cells: Dict[Tuple[int, ...], Tuple[List[torch.Tensor], List[torch.Tensor]]] = {}
        # Kept across epochs and written in place, so that an epoch allocates nothing the size of the model: on the CPU,
        # large blocks freed and allocated again make the allocator hand pages back to the system and fault them in
        # again, which slowed the training's own steps (docs/performance.md)
        self._start_buffers: Optional[List[torch.Tensor]] = None
        self._scratch: Dict[Tuple[int, ...], List[torch.Tensor]] = {}
        self._graph: Optional[_graph.SampleGraph] = None
        self._graph_ok = cuda_graph is not False and self.scaler is None and _graph.available()
        self._graph_warm = False  # one eager sampled step first (lazy initialisations stay out of the capture)
        self._graph_captures = 0
        self._reset()

    # -- the epoch ------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._batch = 0
        self._device: Optional[torch.device] = None
        self._acc: Optional[torch.Tensor] = None
        self._views: Dict[Tuple[int, ...], Tuple[List[torch.Tensor], List[torch.Tensor]]] = {}
        self._start: Optional[List[torch.Tensor]] = None
        self._samples = [0] * len(self._params)  # sampled steps at which each layer had a gradient (host-side)
        self._observed = 0

    def begin_epoch(self) -> None:
        """Starts an epoch now: its clock and its starting weights (else the first observed step starts it)."""
        try:
            self._reset()
            self._started_at = time.perf_counter()
            self._begin()
        except Exception as exc:  # noqa: BLE001 - never into the training loop
            self._warn("begin", f"bttackler.torch: could not start epoch {self.step} ({type(exc).__name__}: {exc})")

    def _begin(self) -> None:
        device = self._params[0].device
        n = len(self._params)
        self._device = device
        if self._buffer is None or self._buffer.device != device:
            self._buffer = torch.zeros(4, n, device=device)  # kept across epochs, so the cached cell views stay valid
            self._cells.clear()
        else:
            self._buffer.zero_()
        self._acc = self._buffer
        self._views = self._cells
        with torch.no_grad():
            self._start = self._start_buffers = _copies_into(self._start_buffers, [p.detach() for p in self._params])

    def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.observe()

    def observe(self) -> None:
        """Call once per optimizer step, with the step's (unscaled) gradients in ``.grad``, before the step.

        With ``optimizer`` given (and no scaler) the reporter's step pre-hook calls it for you.
        Every ``sample_every``-th call of an epoch (the first always) adds the gradients to the
        epoch's statistics on the device; no call reads anything back to the host.
        """
        try:
            if self._acc is None:
                self._begin()
            sampled = self._batch % self.sample_every == 0
            self._batch += 1
            if sampled:
                self._sample()
        except Exception as exc:  # noqa: BLE001 - never into the training loop
            self._warn("observe", f"bttackler.torch: gradients of step {self._batch} of epoch {self.step} not observed ({type(exc).__name__}: {exc})")

    def _sample(self) -> None:
        present = [i for i, p in enumerate(self._params) if p.grad is not None and not p.grad.is_sparse]
        if len(present) < len(self._params):
            missing = [self.names[i] for i, p in enumerate(self._params) if p.grad is None or p.grad.is_sparse]
            self._note_skipped(missing)
        if not present:
            return
        grads = [self._params[i].grad for i in present]
        devices = {g.device for g in grads}
        if len(devices) == 1 and self._device not in devices:
            self._move_to(next(iter(devices)))
        if self.scaler is None and len(devices) == 1:
            self._accumulate(tuple(present), grads)
            order = present
        else:
            order = self._accumulate_masked(present, grads)
        for i in order:
            self._samples[i] += 1
        self._observed += 1

    def _accumulate(self, present: Tuple[int, ...], grads: List[torch.Tensor]) -> None:
        """The common case (no scaler, one device): six fused calls, straight into the accumulator's cells,
        or on CUDA (every layer present) one replay of their graph.

        A NaN or infinity poisons the layer's sums for the epoch, which then read as null (measured, non-finite)."""
        views = self._views.get(present)
        if views is None:
            acc = self._acc
            assert acc is not None
            views = ([acc[_SUM_ABS, i] for i in present] + [acc[_SUM_NONZERO, i] for i in present], [acc[_MAX, i] for i in present])
            self._views[present] = views
        sums, maxima = views
        if self._graph_ok and len(present) == len(self._params) and self._graphed(grads, sums, maxima):
            return
        l1, nonzero, largest = gradient_norms(grads, self._scratch_for(present, grads))
        _foreach_add_(sums, l1 + nonzero)
        _foreach_maximum_(maxima, largest)

    def _scratch_for(self, present: Tuple[int, ...], grads: List[torch.Tensor]) -> Optional[List[torch.Tensor]]:
        """On the CPU, buffers shaped like ``grads`` for their signs, kept from sample to sample (None elsewhere:
        the CUDA caching allocator reuses its blocks by itself)."""
        if grads[0].device.type != "cpu":
            return None
        scratch = self._scratch.get(present)
        if scratch is None or any(s.shape != g.shape or s.dtype != g.dtype or s.device != g.device for s, g in zip(scratch, grads)):
            scratch = [torch.empty_like(g, memory_format=torch.contiguous_format) for g in grads]
            self._scratch = {present: scratch}  # one set: the usual key is every layer
        return scratch

    def _graphed(self, grads: List[torch.Tensor], sums: List[torch.Tensor], maxima: List[torch.Tensor]) -> bool:
        """Does the sampled step by the CUDA graph, capturing it first where needed; False: do it eagerly."""
        acc = self._acc
        graph = self._graph
        try:
            if graph is None or not graph.matches(grads, acc):
                self._graph = graph = None
                if not self._graph_wanted(grads):
                    return False
                if not self._graph_warm:
                    self._graph_warm = True
                    return False
                self._graph_captures += 1
                if self._graph_captures > _graph.MAX_CAPTURES:  # the gradients' types or device keep changing
                    self._graph_ok = False
                    return False
                graph = _graph.SampleGraph(grads, sums, maxima, acc)
                self._graph = graph
            graph.run(grads)
            return True
        except Exception as exc:  # noqa: BLE001 - fall back to the eager statistics for good; nothing was added
            self._graph, self._graph_ok = None, False
            logger.info("bttackler.torch: sampling without a CUDA graph (%s: %s)", type(exc).__name__, exc)
            return False

    def _graph_wanted(self, grads: List[torch.Tensor]) -> bool:
        if grads[0].device.type != "cuda" or torch.cuda.is_current_stream_capturing():
            return False  # inside the caller's own capture, its graph records the eager statistics
        if any(g.layout != torch.strided for g in grads):
            return False
        return self.cuda_graph is True or _graph.gradient_bytes(grads) <= _graph.AUTO_MAX_BYTES

    def _accumulate_masked(self, present: List[int], grads: List[torch.Tensor]) -> List[int]:
        """With a scaler (a sample whose gradients overflowed is left out) or parameters on several devices."""
        groups: Dict[torch.device, List[int]] = {}
        for k, g in enumerate(grads):
            groups.setdefault(g.device, []).append(k)
        parts: List[torch.Tensor] = []
        order: List[int] = []
        for ks in groups.values():
            parts.append(gradient_stats([grads[k] for k in ks]).to(self._device, non_blocking=True))
            order.extend(present[k] for k in ks)
        stats = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        key = tuple(order)
        finite = torch.isfinite(stats[0])
        values = torch.where(finite, stats, 0.0)  # sum |g|, entries != 0, max |g|
        acc = self._acc
        assert acc is not None
        if key == tuple(range(len(self._params))):
            acc[:2].add_(values[:2])
            acc[_N_FINITE].add_(finite)
            torch.maximum(acc[_MAX], values[2], out=acc[_MAX])
        else:
            index = self._index(key)
            acc[:2].index_add_(1, index, values[:2])
            acc[_N_FINITE].index_add_(0, index, finite.to(acc.dtype))
            acc[_MAX].scatter_reduce_(0, index, values[2], "amax")
        return order

    def _index(self, order: Tuple[int, ...]) -> torch.Tensor:
        cached = self._index_cache.get(order)
        if cached is None or cached.device != self._device:
            cached = _on_device(list(order), torch.long, self._device)
            self._index_cache[order] = cached
        return cached

    def _move_to(self, device: torch.device) -> None:
        self._warn(f"moved:{device}", f"bttackler.torch: the model moved from {self._device} to {device}; the epoch's statistics move with it")
        assert self._acc is not None
        try:
            self._acc = self._acc.to(device)
        except Exception as exc:  # noqa: BLE001 - the old device is gone: start the epoch's gradient statistics afresh
            self._warn(f"lost:{device}", f"bttackler.torch: the statistics gathered before the move are lost ({type(exc).__name__}: {exc})")
            self._acc = torch.zeros(self._acc.shape, device=device)
            self._samples = [0] * len(self._params)
        self._buffer, self._views = self._acc, {}
        self._cells = self._views
        self._device = device
        self._graph = None

    # -- the payload ----------------------------------------------------------------------------

    def end_epoch(self, metrics: Optional[Mapping[str, Any]] = None, *, step: Optional[int] = None) -> Dict[str, Any]:
        """Ends the epoch and returns its payload v1 (``step``, ``max_steps``, ``metrics``, ``layers``, ``non_finite``, ``seconds``).

        ``metrics`` maps names (``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``, any
        other) to numbers or to one-element tensors; tensors are read in the same single
        device-to-host transfer as the layer statistics. ``step`` defaults to the count of
        epochs ended so far. Raises only for ``metrics`` that are not such a mapping.
        """
        metrics = {} if metrics is None else metrics
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping of names to numbers or one-element tensors, got {metrics!r}")
        for name, value in metrics.items():
            if not isinstance(name, str) or not 1 <= len(name) <= 128:
                raise ValueError(f"metric names must be strings of 1 to 128 characters, got {name!r}")
            if value is not None and not isinstance(value, (numbers.Real, torch.Tensor)) or isinstance(value, bool):
                raise TypeError(f"metrics[{name!r}] must be a number, a one-element tensor or None, got {value!r}")
            if isinstance(value, torch.Tensor) and value.numel() != 1:
                raise ValueError(f"metrics[{name!r}] must be a one-element tensor, got shape {tuple(value.shape)}")
        if step is not None:
            self.step = _check_int("step", step, 0)
        seconds = time.perf_counter() - self._started_at
        payload: Dict[str, Any] = {"step": self.step}
        if self.max_steps is not None:
            payload["max_steps"] = max(self.max_steps, self.step + 1)
        try:
            payload.update(self._collect(metrics))
        except Exception as exc:  # noqa: BLE001 - never into the training loop: send the metrics alone
            self._warn("end", f"bttackler.torch: layer statistics of epoch {self.step} left out ({type(exc).__name__}: {exc})")
            payload["metrics"] = {k: _plain(v) for k, v in metrics.items()}
            if any(v is None for v in payload["metrics"].values()):
                payload["non_finite"] = True
        payload["seconds"] = seconds
        self.step += 1
        self._reset()
        self._started_at = time.perf_counter()
        return payload

    def _collect(self, metrics: Mapping[str, Any]) -> Dict[str, Any]:
        if self._acc is None:
            self._begin()
        assert self._acc is not None and self._start is not None
        device = self._device
        n = len(self._params)
        with torch.no_grad():
            weights = [p.detach() for p in self._params]
            starts = [s if s.device == w.device else s.to(w.device) for s, w in zip(self._start, weights)]
            groups: Dict[torch.device, List[int]] = {}
            for i, w in enumerate(weights):
                groups.setdefault(w.device, []).append(i)
            weight_rows = torch.empty(3, n, device=device)
            for dev, idx in groups.items():
                ws = [weights[i] for i in idx]
                same_shape = [i for i in idx if starts[i].shape == weights[i].shape]
                w_stats = norms(ws, (1,))
                if len(same_shape) == len(idx):
                    group_starts = [starts[i] for i in idx]
                    start_norms = norms(group_starts, (2,))
                    _foreach_sub_(group_starts, ws)  # in place: W_start - W_end, the start copies are not needed after
                    d_stats = torch.cat([norms(group_starts, (2,)), start_norms])
                else:
                    d_stats = torch.full((2, len(idx)), math.nan, device=dev)
                block = torch.cat([w_stats, d_stats]).to(device)
                if len(groups) == 1:
                    weight_rows = block
                else:
                    weight_rows[:, _on_device(idx, torch.long, device)] = block
            tensor_metrics = [(k, v) for k, v in metrics.items() if isinstance(v, torch.Tensor)]
            extra = [v.detach().reshape(1).to(device=device, dtype=torch.float32) for _, v in tensor_metrics]
            scale = self._scale_tensor()
            if scale is not None:
                extra.append(scale.detach().reshape(1).to(device=device, dtype=torch.float32))
            flat = torch.cat([self._acc.reshape(-1), weight_rows.reshape(-1)] + extra)
        values = flat.tolist()  # the epoch's one device-to-host transfer
        acc = [values[r * n:(r + 1) * n] for r in range(4)]
        w_l1, diff_norm, start_norm = (values[(4 + r) * n:(5 + r) * n] for r in range(3))
        rest = values[7 * n:]
        out_metrics: Dict[str, Any] = {}
        tensor_values = dict(zip((k for k, _ in tensor_metrics), rest))
        for name, value in metrics.items():
            out_metrics[name] = _finite_or_none(tensor_values[name]) if name in tensor_values else _plain(value)
        non_finite = any(v is None for v in out_metrics.values())
        amp_skipped = 0.0
        layers: List[Dict[str, Any]] = []
        skipped: List[str] = []
        for i, name in enumerate(self.names):
            layer: Dict[str, Any] = {"name": name[:256]}
            numel = max(self._params[i].numel(), 1)
            samples = self._samples[i]
            n_finite = acc[_N_FINITE][i] if self.scaler is not None else samples
            n_bad = samples - n_finite
            if self.scaler is None and samples and not math.isfinite(acc[_SUM_ABS][i]):
                n_finite, n_bad = 0, samples  # a non-finite sample poisoned the sums
            if n_bad > 0:
                if self.scaler is None:
                    non_finite = True
                else:
                    amp_skipped = max(amp_skipped, n_bad)
            if n_finite > 0:
                layer["grad_abs_mean"] = _finite_or_none(acc[_SUM_ABS][i] / (n_finite * numel))
                layer["grad_zero_frac"] = _clip01(1.0 - acc[_SUM_NONZERO][i] / (n_finite * numel))
                layer["grad_abs_max"] = _finite_or_none(acc[_MAX][i])
            elif n_bad > 0:
                if self.scaler is None:  # measured, and non-finite
                    layer.update(grad_abs_mean=None, grad_zero_frac=None, grad_abs_max=None)
                # with a scaler: every sampled step of the layer overflowed and was skipped; nothing finite to report
            elif self._observed > 0:
                skipped.append(name)
            layer["weight_abs_mean"] = _finite_or_none(w_l1[i] / numel)
            if layer["weight_abs_mean"] is None:
                non_finite = True
            if not math.isnan(diff_norm[i]) or not math.isnan(start_norm[i]):
                ratio = diff_norm[i] / max(start_norm[i], self.update_ratio_floor) if math.isfinite(start_norm[i]) else math.nan
                layer["update_ratio"] = _finite_or_none(ratio)
                if layer["update_ratio"] is None:
                    non_finite = True
            layers.append(layer)
        if skipped:
            self._warn(f"nograd:{','.join(skipped)}", f"bttackler.torch: no gradient for {skipped!r} in epoch {self.step} (frozen or unused): their gradient fields are left out")
        if scale is not None and rest:
            scale_value = rest[-1]
            if not math.isfinite(scale_value) or scale_value < 1.0:
                non_finite = True
        if self.scaler is not None and amp_skipped:
            logger.debug("bttackler.torch: %d sampled steps of epoch %d had non-finite gradients (skipped by the scaler)", amp_skipped, self.step)
        result: Dict[str, Any] = {"metrics": out_metrics, "layers": layers, "non_finite": non_finite}
        if not out_metrics:
            del result["metrics"]
        return result

    def _scale_tensor(self) -> Optional[torch.Tensor]:
        scaler = self.scaler
        if scaler is None or not getattr(scaler, "_enabled", True):
            return None
        scale = getattr(scaler, "_scale", None)
        return scale if isinstance(scale, torch.Tensor) else None

    # -- faults ---------------------------------------------------------------------------------

    def _note_skipped(self, missing: Sequence[str]) -> None:
        self._warn(f"missing:{','.join(missing)}", f"bttackler.torch: no gradient for {list(missing)!r} at a sampled step (frozen, unused or sparse): left out of that step")

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def close(self) -> None:
        """Removes the optimizer step hook (if any); the reporter observes nothing more by itself."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        self._graph = None

    def __repr__(self) -> str:
        return f"TorchReporter({len(self.names)} layers, sample_every={self.sample_every}, step={self.step})"


def _copies_into(buffers: Optional[List[torch.Tensor]], tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """Copies of ``tensors``, written into ``buffers`` where they match (shape, dtype, device), else new ones."""
    if buffers is not None and len(buffers) == len(tensors) and all(
            b.shape == t.shape and b.dtype == t.dtype and b.device == t.device for b, t in zip(buffers, tensors)):
        try:
            torch._foreach_copy_(buffers, tensors)
        except (RuntimeError, TypeError, AttributeError):
            for b, t in zip(buffers, tensors):
                b.copy_(t)
        return buffers
    return _copies(tensors)


def _foreach_sub_(targets: List[torch.Tensor], values: List[torch.Tensor]) -> None:
    try:
        torch._foreach_sub_(targets, values)
    except (RuntimeError, TypeError, AttributeError):
        for t, v in zip(targets, values):
            t.sub_(v)


def _copies(tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """Copies of ``tensors`` (one fused launch where the device has it)."""
    try:
        return list(torch._foreach_mul(tensors, 1.0))
    except (RuntimeError, TypeError, AttributeError):
        return [t.clone() for t in tensors]


def _on_device(values: List[float], dtype: torch.dtype, device: Optional[torch.device]) -> torch.Tensor:
    """A small constant vector made by fill kernels on ``device``: no host-to-device copy, so no synchronisation."""
    return torch.stack([torch.full((), v, dtype=dtype, device=device) for v in values])


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def _clip01(value: float) -> Optional[float]:
    if not math.isfinite(value):
        return None
    return min(max(value, 0.0), 1.0)


def _plain(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().reshape(-1)[0].item()
    value = float(value)
    return value if math.isfinite(value) else None

"""The sampled step's gradient statistics on CUDA as one graph replay.

On a GPU, a small model's training step is bound by kernel launches, not arithmetic: the eager
statistics of a sampled step (three fused norms, a sign, two accumulations) are about 15 launches
and some 40 small allocations, which cost the host more than the device. Here they are captured
once into a CUDA graph that reads a static copy of the gradients; a sampled step is then one
multi-tensor copy (the gradients' addresses may change from step to step, so the graph cannot
read them in place) and one graph launch. The graph adds straight into the reporter's
accumulator cells, whose addresses stay fixed across epochs.

Memory: one copy of the tracked gradients (the sign of the entries, which counts the non-zero
ones, is taken in place on that copy), held as long as the graph is.

Nothing here synchronises with the device or reads from it: capturing records work without
running it, and the capture uses ``capture_error_mode="thread_local"`` so that other threads of
the process (a data loader, say) are not disturbed.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from ._fused import INF, _foreach_add_, _foreach_maximum_, _foreach_norm

#: Gradient bytes up to which the graph is used by default (``cuda_graph=None``): the static copy
#: is the graph's memory cost. Larger models spend long enough in their own kernels that the
#: statistics' launches are a small share of a step (docs/performance.md).
AUTO_MAX_BYTES = 1 << 28

#: Captures per reporter, after which it samples eagerly for good (the gradients' dtypes or device keep changing).
MAX_CAPTURES = 8


def available() -> bool:
    """Whether this torch has what the graph path needs (graphs and a fused multi-tensor copy)."""
    return hasattr(torch.cuda, "CUDAGraph") and hasattr(torch, "_foreach_copy_") and hasattr(torch, "_foreach_sign_")


def gradient_bytes(tensors: Sequence[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class SampleGraph:
    """Captures, for gradients shaped and typed like ``grads``: sum |g|, entries != 0 (added to
    ``sums``, the first half for the sums of |g|, the second for the counts) and max |g| (into
    ``maxima``), per tensor. ``run(grads)`` then does one sampled step: copy and replay."""

    def __init__(self, grads: Sequence[torch.Tensor], sums: List[torch.Tensor], maxima: List[torch.Tensor], acc: torch.Tensor) -> None:
        self.acc = acc  # the accumulator whose cells the graph writes (kept alive, and compared by identity)
        self.dtypes: Tuple[torch.dtype, ...] = tuple(g.dtype for g in grads)
        device = grads[0].device
        self.static = [torch.empty_like(g, memory_format=torch.contiguous_format) for g in grads]
        self.stream = torch.cuda.Stream(device=device)
        self.stream.wait_stream(torch.cuda.current_stream(device))
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(device), torch.cuda.stream(self.stream):
            self.graph.capture_begin(capture_error_mode="thread_local")
            try:
                l1 = _foreach_norm(self.static, 1)
                largest = _foreach_norm(self.static, INF)
                torch._foreach_sign_(self.static)  # the copy is scratch: count the entries != 0 in place
                nonzero = _foreach_norm(self.static, 1)
                _foreach_add_(sums, l1 + nonzero)
                _foreach_maximum_(maxima, largest)
            finally:
                self.graph.capture_end()

    def matches(self, grads: Sequence[torch.Tensor], acc: torch.Tensor) -> bool:
        """Whether ``run(grads)`` is right: the same accumulator and gradient types, and no capture of the
        caller's under way (its own graph then records the eager statistics instead)."""
        return acc is self.acc and tuple(g.dtype for g in grads) == self.dtypes and not torch.cuda.is_current_stream_capturing()

    def run(self, grads: Sequence[torch.Tensor]) -> None:
        """One sampled step on the current stream: two launches, no allocation, no synchronisation."""
        torch._foreach_copy_(self.static, list(grads))
        self.graph.replay()

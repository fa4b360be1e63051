"""Fused per-tensor statistics: one multi-tensor kernel per statistic for a whole list of tensors.

``torch._foreach_norm`` computes one vector norm per tensor of a list in a single multi-tensor
launch (on CUDA) instead of one launch per tensor. The orders used here give the statistics the
payload needs, all in float32 whatever the tensors' dtype (a float16 L1 sum overflows easily):

- ord 1   : sum |x|                 -> mean |x| after dividing by the element count
- ord inf : max |x|
- ord 2   : ||x||                   -> the update ratio's norms
- the L1 norm of ``sign(x)``: the number of entries != 0 -> share of exact zeros = 1 - count / numel
  (CUDA fuses ``_foreach_norm`` for the orders 1, 2 and inf only; an order-0 norm would be one
  launch per tensor, so the count goes through ``_foreach_sign``, one fused launch more)

A NaN or infinite entry makes the tensor's L1 sum non-finite, so ``isfinite(l1)`` is the tensor's
non-finite test at no extra cost.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch

INF = math.inf


def _foreach_norm(tensors: Sequence[torch.Tensor], order: float) -> List[torch.Tensor]:
    try:
        return list(torch._foreach_norm(list(tensors), order, dtype=torch.float32))
    except (RuntimeError, TypeError, AttributeError):  # an old torch, or an order its foreach path lacks
        return [torch.linalg.vector_norm(t, order, dtype=torch.float32) for t in tensors]


def _foreach_sign(tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    try:
        return list(torch._foreach_sign(list(tensors)))
    except (RuntimeError, TypeError, AttributeError):
        return [torch.sign(t) for t in tensors]


def gradient_norms(tensors: Sequence[torch.Tensor], scratch: Optional[Sequence[torch.Tensor]] = None) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
    """Per tensor: sum |x|, the number of entries != 0, max |x| (0-dim float32 tensors), in 4 fused launches.
    ``scratch``: tensors shaped like ``tensors`` that take their signs (else new ones are allocated)."""
    tensors = list(tensors)
    if scratch is None:
        signs = _foreach_sign(tensors)
    else:
        signs = [torch.sign(t, out=s) for t, s in zip(tensors, scratch)]
    return _foreach_norm(tensors, 1), _foreach_norm(signs, 1), _foreach_norm(tensors, INF)


def _foreach_add_(targets: List[torch.Tensor], values: List[torch.Tensor]) -> None:
    try:
        torch._foreach_add_(targets, values)
    except (RuntimeError, TypeError, AttributeError):
        for t, v in zip(targets, values):
            t.add_(v)


def _foreach_maximum_(targets: List[torch.Tensor], values: List[torch.Tensor]) -> None:
    try:
        torch._foreach_maximum_(targets, values)
    except (RuntimeError, TypeError, AttributeError):
        for t, v in zip(targets, values):
            torch.maximum(t, v, out=t)


def gradient_stats(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``out[:, j]`` = (sum |x|, number of entries != 0, max |x|) of ``tensors[j]``, float32, in 4 fused launches and a stack.

    >>> import torch
    >>> gradient_stats([torch.tensor([[0.0, -2.0], [1.0, 0.0]]), torch.tensor([0.5])]).tolist()
    [[3.0, 0.5], [2.0, 1.0], [2.0, 0.5]]
    """
    l1, nonzero, largest = gradient_norms(tensors)
    return torch.stack(l1 + nonzero + largest).view(3, len(l1))


def norms(tensors: Sequence[torch.Tensor], orders: Sequence[float]) -> torch.Tensor:
    """``out[i, j]`` = the ``orders[i]`` vector norm of ``tensors[j]``, float32, on the tensors' device.

    >>> import torch
    >>> norms([torch.tensor([[0.0, -2.0], [1.0, 0.0]])], [1, 0, INF]).tolist()
    [[3.0], [2.0], [2.0]]
    """
    per_order = [t for order in orders for t in _foreach_norm(tensors, order)]
    return torch.stack(per_order).view(len(orders), len(tensors))

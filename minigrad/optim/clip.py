"""Gradient clipping."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from minigrad.tensor import Tensor


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float) -> float:
    """Scale gradients so their joint L2 norm is at most `max_norm`.

    Array gradients are scaled in place; a Tensor gradient (left by
    backward(create_graph=True)) is replaced by a scaled Tensor, since it may
    be shared between parameters or be a read-only view.

    Returns:
        The joint norm before clipping (inf or nan when a gradient is).
    """
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be positive, got {max_norm}")
    if isinstance(parameters, Tensor):  # one tensor, as PyTorch accepts, not its rows
        parameters = [parameters]
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    arrays = [p.grad.data if isinstance(p.grad, Tensor) else p.grad for p in params]
    flat = [g.reshape(-1) for g in arrays]  # views, unless a gradient is not contiguous
    total = math.sqrt(sum(float(np.dot(f, f)) for f in flat))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in params:
            if isinstance(p.grad, Tensor):
                p.grad = p.grad * scale
            else:
                p.grad *= scale
    return total


clip_grad_norm = clip_grad_norm_

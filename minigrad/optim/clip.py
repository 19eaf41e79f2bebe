"""Gradient clipping."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from minigrad.tensor import Tensor


def clip_grad_norm_(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale gradients in place so their joint L2 norm is at most `max_norm`.

    Returns:
        The joint norm before clipping (inf or nan when a gradient is).
    """
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g *= scale
    return total


clip_grad_norm = clip_grad_norm_

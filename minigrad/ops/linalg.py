"""Matrix products: batched, broadcasting matmul and the fused linear layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.ops import lift_pair, shape_error
from minigrad.tensor import Tensor


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading axes broadcast."""
    a, b = lift_pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise shape_error("matmul", a, b, "include a scalar; matmul needs at least 1-D operands")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise shape_error(
            "matmul",
            a,
            b,
            f"do not chain: a's last axis ({a.shape[-1]}) must equal b's "
            f"{'second-to-last' if b.ndim > 1 else 'only'} axis",
        )
    # Promote vectors to matrices so one rule covers every case.
    a2 = a.data[None, :] if a.ndim == 1 else a.data
    b2 = b.data[:, None] if b.ndim == 1 else b.data
    try:
        out2 = _matmul(a2, b2)
    except ValueError:
        raise shape_error("matmul", a, b, "have batch axes that cannot be broadcast") from None
    out = out2
    if b.ndim == 1:
        out = out[..., 0]
    if a.ndim == 1:
        out = out[..., 0, :] if b.ndim > 1 else out[..., 0]

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        g2 = g.reshape(out2.shape)
        grad_a = grad_b = None
        if a.requires_grad:
            grad_a = _matmul(g2, np.swapaxes(b2, -1, -2))
            if a.ndim == 1:
                grad_a = grad_a.reshape(-1, a.shape[0]).sum(axis=0)
        if b.requires_grad:
            grad_b = _matmul_weight_grad(a2, g2, b2)
            if b.ndim == 1:
                grad_b = grad_b[..., 0]
        return grad_a, grad_b

    def graph(g: Tensor) -> tuple[Tensor, Tensor]:
        g2 = g.reshape(out2.shape)
        a2_t = a.unsqueeze(0) if a.ndim == 1 else a
        b2_t = b.unsqueeze(1) if b.ndim == 1 else b
        grad_a = matmul(g2, b2_t.swapaxes(-1, -2))
        if a.ndim == 1:
            grad_a = grad_a.reshape(-1, a.shape[0]).sum(axis=0)
        grad_b = matmul(a2_t.swapaxes(-1, -2), g2)
        if b.ndim == 1:
            grad_b = grad_b[..., 0]
        return grad_a, grad_b

    return Tensor._from_op(out, (a, b), backward, "matmul", graph)


def _matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """np.matmul, with a stacked x times a plain matrix y done as one large product."""
    if x.ndim > 2 and y.ndim == 2:
        return (x.reshape(-1, x.shape[-1]) @ y).reshape(*x.shape[:-1], y.shape[-1])
    return np.matmul(x, y)


def _matmul_weight_grad(x: np.ndarray, g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x^T g, folding the batch axes into one product when y is a plain matrix."""
    if y.ndim == 2 and x.ndim > 2:
        return x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1])
    return np.matmul(np.swapaxes(x, -1, -2), g)


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias with weight stored (out_features, in_features), as in PyTorch."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if weight.ndim != 2:
        raise ValueError(
            f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise shape_error(
            "linear",
            x,
            weight,
            f"do not fit: input's last axis must equal in_features={weight.shape[1]}",
        )
    x2 = x.data.reshape(-1, x.shape[-1])
    out2 = x2 @ weight.data.T
    if bias is not None:
        out2 += bias.data
    out = out2.reshape(*x.shape[:-1], weight.shape[0])

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        g2 = g.reshape(-1, weight.shape[0])
        grad_x = (g2 @ weight.data).reshape(x.shape) if x.requires_grad else None
        grad_w = g2.T @ x2 if weight.requires_grad else None
        grad_b = g2.sum(axis=0) if bias is not None and bias.requires_grad else None
        return grad_x, grad_w, grad_b

    def graph(g: Tensor) -> tuple[Tensor | None, ...]:
        g2 = g.reshape(-1, weight.shape[0])
        grad_x = matmul(g2, weight).reshape(x.shape)
        grad_w = matmul(g2.T, x.reshape(-1, x.shape[-1]))
        return grad_x, grad_w, g2.sum(axis=0) if bias is not None else None

    return Tensor._from_op(out, (x, weight, bias), backward, "linear", graph)

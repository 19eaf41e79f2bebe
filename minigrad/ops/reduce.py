"""Reductions: sum, mean, max, min, var, logsumexp over one or more axes."""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from minigrad.ops import lift, normalize_axis
from minigrad.ops.elementwise import exp
from minigrad.tensor import Axis, Tensor


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, kept quick
        return (axis % ndim,)
    if isinstance(axis, int):
        axis = (axis,)
    axes = tuple(normalize_axis(a, ndim) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis={axis} names the same axis twice")
    return axes


def _keep(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Put the reduced axes back as size 1, so `g` broadcasts against the input."""
    return g if keepdims else np.expand_dims(g, axes)


def _expand(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`g` broadcast to `shape`: a read-only view, or a copy for results of up to 4096
    elements, where filling a new array costs less than np.broadcast_to's setup."""
    if g.shape == shape:
        return g
    if math.prod(shape) > 4096:
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with the reduced axes set to 1: a reduction's result with keepdims."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def sum(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    a = lift(a)
    axes = _axes(axis, a.ndim)
    if a.data.dtype.kind == "f":  # the ufunc itself: np.sum's Python wrapper costs more
        out = np.add.reduce(a.data, axis=axes, keepdims=keepdims)
    else:
        out = np.sum(a.data, axis=axes, keepdims=keepdims)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_expand(_keep(g, axes, keepdims), a.shape),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (g.reshape(_kept_shape(a.shape, axes)).broadcast_to(a.shape),)

    return Tensor._from_op(np.asarray(out), (a,), backward, "sum", graph)


def mean(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    a = lift(a)
    axes = _axes(axis, a.ndim)
    count = _count(a.shape, axes)
    if count:
        out = np.mean(a.data, axis=axes, keepdims=keepdims)
    else:  # a mean over nothing is nan, quietly, as in PyTorch (NumPy warns)
        shape = np.sum(a.data, axis=axes, keepdims=keepdims).shape
        out = np.full(shape, np.nan, dtype=np.true_divide(a.data[:0], 1).dtype)
    scale = 1 / builtins.max(count, 1)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_expand(_keep(g * scale, axes, keepdims), a.shape),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return ((g.reshape(_kept_shape(a.shape, axes)) * scale).broadcast_to(a.shape),)

    return Tensor._from_op(np.asarray(out), (a,), backward, "mean", graph)


def _extremum(a: Any, axis: Axis, keepdims: bool, pick: Any, name: str) -> Tensor:
    a = lift(a)
    if a.size == 0:
        raise ValueError(f"{name}() of an empty tensor (shape {a.shape}) has no value")
    axes = _axes(axis, a.ndim)
    kept = pick(a.data, axis=axes, keepdims=True)
    out = kept if keepdims else np.squeeze(kept, axis=axes)

    def shares() -> np.ndarray:
        # Ties share the gradient equally, so the shares sum to the upstream gradient.
        # A nan wins, as in NumPy, and the nans take the gradient, as in torch.max.
        hits = a.data == kept
        if np.isnan(kept).any():
            hits |= np.isnan(a.data) & np.isnan(kept)
        return hits / hits.sum(axis=axes, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (shares() * _keep(g, axes, keepdims),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (g.reshape(_kept_shape(a.shape, axes)) * shares(),)

    return Tensor._from_op(np.asarray(out), (a,), backward, name, graph)


def max(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Largest value over `axis`; elements tied for the max split its gradient equally."""
    return _extremum(a, axis, keepdims, np.max, "max")


def min(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Smallest value over `axis`; elements tied for the min split its gradient equally."""
    return _extremum(a, axis, keepdims, np.min, "min")


def var(a: Any, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Variance over `axis`, divided by N - correction (PyTorch's default, correction=1).

    With N <= correction (one element, or none) it is nan or inf, and so is its
    gradient, as in PyTorch; nothing warns.
    """
    a = lift(a)
    axes = _axes(axis, a.ndim)
    count = _count(a.shape, axes)
    denominator = count - correction
    with np.errstate(divide="ignore"):
        scale = np.float64(2) / denominator  # a NumPy float: 2 / 0 is inf, not an error
    if count:
        centered = a.data - a.data.mean(axis=axes, keepdims=True)
    else:  # nothing to average: no mean, and a variance of nan
        centered = np.zeros_like(a.data)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.sum(centered * centered, axis=axes, keepdims=keepdims)
        out = total / denominator if count else np.full_like(total, np.nan)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # d var: 2 (x - mean) / (N - correction)
        with np.errstate(invalid="ignore"):
            return (_keep(g, axes, keepdims) * centered * scale.astype(centered.dtype),)

    def graph(g: Tensor) -> tuple[Tensor]:
        centered_t = a - a.mean(axis=axes, keepdims=True)
        with np.errstate(invalid="ignore"):
            return (g.reshape(_kept_shape(a.shape, axes)) * centered_t * float(scale),)

    return Tensor._from_op(np.asarray(out, dtype=a.dtype), (a,), backward, "var", graph)


def logsumexp(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(a))) over `axis`, computed without overflow."""
    a = lift(a)
    axes = _axes(axis, a.ndim)
    peak = np.max(a.data, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0)
    shifted = np.exp(a.data - peak)
    total = shifted.sum(axis=axes, keepdims=True)
    with np.errstate(divide="ignore"):
        kept = np.log(total) + peak
    out = kept if keepdims else np.squeeze(kept, axis=axes)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # d logsumexp: softmax(a); nan over all -inf (0 / 0), quietly, as in PyTorch
        with np.errstate(invalid="ignore"):
            return (_keep(g, axes, keepdims) * (shifted / total),)

    def graph(g: Tensor) -> tuple[Tensor]:
        softmax_t = exp(a - logsumexp(a, axes, keepdims=True))
        return (g.reshape(_kept_shape(a.shape, axes)) * softmax_t,)

    return Tensor._from_op(np.asarray(out, dtype=a.dtype), (a,), backward, "logsumexp", graph)

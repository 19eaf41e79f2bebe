"""Differentiable operations, one family per module.

Each op computes its forward value with NumPy and attaches a backward rule
that returns one gradient per input.  The rules may return gradients in the
broadcast shape of the output: the graph walk sums them back to each input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.tensor import DEFAULT_DTYPE, Tensor, as_array

# Elements per slice for work made of many passes over the same arrays (GELU, the
# optimizers' updates).  Four float32 slices of this length fill 1 MiB, about one core's
# L2 cache; over whole arrays larger than the cache every pass waits on memory instead
# (here, one pass over 393k float32 elements took 99 us, three over a third of them 56).
CACHE_CHUNK = 65536


def lift(value: Any, like: Tensor | None = None) -> Tensor:
    """Make `value` a Tensor; a Python scalar takes the dtype of `like` and never upcasts it."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (bool, int, float)):
        # Built without Tensor.__init__'s checks: a Python number makes a plain constant.
        if like is not None and like.data.dtype.kind == "f":
            return Tensor._constant(np.asarray(value, dtype=like.data.dtype))
        if isinstance(value, float):
            return Tensor._constant(np.asarray(value, dtype=DEFAULT_DTYPE))
        if like is not None:
            return Tensor._constant(np.asarray(value, dtype=like.data.dtype))
    return Tensor(as_array(value))


def lift_pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Lift two operands, letting whichever is a Tensor set a scalar's dtype.

    A floating tensor with an integer or boolean one computes in the floating
    tensor's dtype, as in PyTorch (NumPy would give float64 for float32 and int64).
    """
    if isinstance(a, Tensor):
        b = lift(b, a)
    else:
        b = lift(b)
        a = lift(a, b)
    kind_a, kind_b = a.data.dtype.kind, b.data.dtype.kind
    if kind_a != kind_b:
        if kind_a == "f" and kind_b in "biu":
            b = Tensor._constant(b.data.astype(a.data.dtype))
        elif kind_b == "f" and kind_a in "biu":
            a = Tensor._constant(a.data.astype(b.data.dtype))
    return a, b


def shape_error(op: str, a: Tensor, b: Tensor, detail: str = "") -> ValueError:
    """The error raised when two operands' shapes do not fit an op."""
    reason = detail or "cannot be broadcast together"
    return ValueError(f"{op}: shapes {a.shape} and {b.shape} {reason}")


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Turn a possibly negative axis into a non-negative one, or raise naming it."""
    if not -ndim <= axis < max(ndim, 1):
        raise IndexError(f"{name}={axis} is out of range for a tensor with {ndim} dimensions")
    return axis % max(ndim, 1)

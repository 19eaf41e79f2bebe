"""Ops that move values around without changing them: views, indexing, joining."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minigrad.autograd import IndexedGrad
from minigrad.ops import lift, lift_pair, normalize_axis, shape_error
from minigrad.tensor import Axis, Tensor, as_array


def reshape(a: Any, shape: tuple[int, ...]) -> Tensor:
    a = lift(a)
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot view shape {a.shape} ({a.size} elements) as {shape}"
        ) from None
    rule = lambda g: (g.reshape(a.shape),)  # noqa: E731  (arrays and Tensors alike)
    return Tensor._from_op(out, (a,), rule, "reshape", rule)


def permute(a: Any, dims: tuple[int, ...]) -> Tensor:
    a = lift(a)
    if any(not -a.ndim <= d < a.ndim for d in dims) or sorted(d % a.ndim for d in dims) != list(
        range(a.ndim)
    ):
        raise ValueError(f"permute: dims {dims} is not a reordering of {a.ndim} axes")
    dims = tuple(d % a.ndim for d in dims)
    inverse = tuple(np.argsort(dims))
    return Tensor._from_op(
        a.data.transpose(dims),
        (a,),
        lambda g: (g.transpose(inverse),),
        "permute",
        lambda g: (g.permute(inverse),),
    )


def swapaxes(a: Any, dim0: int, dim1: int) -> Tensor:
    a = lift(a)
    dim0, dim1 = normalize_axis(dim0, a.ndim, "dim0"), normalize_axis(dim1, a.ndim, "dim1")
    out = np.swapaxes(a.data, dim0, dim1)
    rule = lambda g: (g.swapaxes(dim0, dim1),)  # noqa: E731
    return Tensor._from_op(out, (a,), rule, "transpose", rule)


def squeeze(a: Any, axis: Axis = None) -> Tensor:
    a = lift(a)
    if axis is None:
        axes = tuple(i for i, n in enumerate(a.shape) if n == 1)
    else:
        axes = tuple(
            normalize_axis(x, a.ndim) for x in ((axis,) if isinstance(axis, int) else axis)
        )
        for x in axes:
            if a.shape[x] != 1:
                raise ValueError(
                    f"squeeze: axis {x} has size {a.shape[x]}, expected 1 (shape {a.shape})"
                )
    rule = lambda g: (g.reshape(a.shape),)  # noqa: E731
    return Tensor._from_op(np.squeeze(a.data, axes), (a,), rule, "squeeze", rule)


def unsqueeze(a: Any, axis: int) -> Tensor:
    a = lift(a)
    axis = normalize_axis(axis, a.ndim + 1)
    out = np.expand_dims(a.data, axis)
    rule = lambda g: (g.reshape(a.shape),)  # noqa: E731
    return Tensor._from_op(out, (a,), rule, "unsqueeze", rule)


def broadcast_to(a: Any, shape: tuple[int, ...]) -> Tensor:
    """A read-only broadcast view; the graph walk sums the gradient back."""
    a = lift(a)
    try:
        out = np.broadcast_to(a.data, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {a.shape} to {shape}") from None
    rule = lambda g: (g,)  # noqa: E731
    return Tensor._from_op(out, (a,), rule, "broadcast_to", rule)


def flatten(a: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    a = lift(a)
    if a.ndim == 0:
        return reshape(a, (1,))
    start = normalize_axis(start_dim, a.ndim, "start_dim")
    end = normalize_axis(end_dim, a.ndim, "end_dim")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(a, a.shape[:start] + (-1,) + a.shape[end + 1 :])


def _index_arrays(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, tuple):
        return tuple(_index_arrays(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _picks_each_once(index: Any) -> bool:
    """True when no element can be picked twice: no integer arrays in the index."""
    parts = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(p, np.ndarray) and p.dtype != bool for p in parts)


def getitem(a: Any, index: Any) -> Tensor:
    """a[index] with ints, slices, None, Ellipsis, integer arrays and boolean masks."""
    a = lift(a)
    index = _index_arrays(index)
    try:
        out = a.data[index]
    except IndexError as error:
        raise IndexError(f"index into a tensor of shape {a.shape}: {error}") from None
    once = _picks_each_once(index)

    def backward(g: np.ndarray) -> tuple[IndexedGrad]:
        return (IndexedGrad(index, g, once),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (scatter_add(g, a.shape, index, once),)

    return Tensor._from_op(np.asarray(out), (a,), backward, "getitem", graph)


def _scatter(g: np.ndarray, shape: tuple[int, ...], index: Any, once: bool) -> np.ndarray:
    """Zeros of `shape` with `g` added at `index`: the adjoint of indexing."""
    grad = np.zeros(shape, dtype=g.dtype)
    if once:
        grad[index] = g
    else:
        np.add.at(grad, index, g)  # repeated indices accumulate
    return grad


def scatter_add(g: Tensor, shape: tuple[int, ...], index: Any, once: bool = False) -> Tensor:
    """Zeros of `shape` with `g` added at `index`, differentiable in `g` (its adjoint is g[index]).

    `once` promises that no element is indexed twice, which allows a plain assignment.
    """

    def backward(gg: np.ndarray) -> tuple[np.ndarray]:
        return (np.asarray(gg[index]),)

    def graph(gg: Tensor) -> tuple[Tensor]:
        return (getitem(gg, index),)

    return Tensor._from_op(
        _scatter(g.data, shape, index, once), (g,), backward, "scatter_add", graph
    )


def gather(a: Any, axis: int, index: Any) -> Tensor:
    """Take values along `axis` at `index` (like torch.gather and np.take_along_axis)."""
    a = lift(a)
    idx = as_array(index)
    axis = normalize_axis(axis, a.ndim)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"gather: index must be an integer array, got dtype {idx.dtype}")
    if idx.ndim != a.ndim:
        raise ValueError(
            f"gather: index has {idx.ndim} dimensions, expected {a.ndim} like the input"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= a.shape[axis]):  # no wrapping, as torch
        raise IndexError(
            f"gather: index values must lie in [0, {a.shape[axis]}) along axis {axis}, "
            f"got [{idx.min()}, {idx.max()}]"
        )
    out = np.take_along_axis(a.data, idx, axis=axis)

    grids = list(np.indices(idx.shape, sparse=True))
    grids[axis] = idx
    where_taken = tuple(grids)  # a[where_taken] is the output

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_scatter(g, a.shape, where_taken, once=False),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (scatter_add(g, a.shape, where_taken),)

    return Tensor._from_op(out, (a,), backward, "gather", graph)


def cat(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    parts = [lift(t) for t in tensors]
    if not parts:
        raise ValueError("cat: needs at least one tensor")
    axis = normalize_axis(axis, parts[0].ndim)
    try:
        out = np.concatenate([p.data for p in parts], axis=axis)
    except ValueError:
        shapes = [p.shape for p in parts]
        raise ValueError(f"cat: shapes {shapes} differ outside axis {axis}") from None
    edges = [0, *np.cumsum([p.shape[axis] for p in parts]).tolist()]
    pieces = [(slice(None),) * axis + (slice(edges[i], edges[i + 1]),) for i in range(len(parts))]

    def graph(g: Tensor) -> list[Tensor]:
        return [getitem(g, piece) for piece in pieces]

    return Tensor._from_op(out, parts, lambda g: [g[piece] for piece in pieces], "cat", graph)


concatenate = cat


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    parts = [lift(t) for t in tensors]
    if not parts:
        raise ValueError("stack: needs at least one tensor")
    if len({p.shape for p in parts}) != 1:
        raise ValueError(f"stack: all tensors need one shape, got {[p.shape for p in parts]}")
    axis = normalize_axis(axis, parts[0].ndim + 1)
    out = np.stack([p.data for p in parts], axis=axis)

    pieces = [(slice(None),) * axis + (i,) for i in range(len(parts))]

    def graph(g: Tensor) -> list[Tensor]:
        return [getitem(g, piece) for piece in pieces]

    return Tensor._from_op(out, parts, lambda g: [g[piece] for piece in pieces], "stack", graph)


def split(a: Any, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Cut into chunks along `axis`: of one size (the last may be smaller) or of listed sizes."""
    a = lift(a)
    axis = normalize_axis(axis, a.ndim)
    length = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (length // split_size_or_sections)
        if length % split_size_or_sections:
            sizes.append(length % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, expected {length}")
    pieces = []
    start = 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        pieces.append(getitem(a, index))
        start += size
    return pieces


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Pick from `a` where `condition` holds, else from `b`."""
    cond = as_array(condition).astype(bool, copy=False)
    a, b = lift_pair(a, b)
    try:
        out = np.where(cond, a.data, b.data)
    except ValueError:
        raise shape_error(
            "where", a, b, f"and condition {cond.shape} cannot be broadcast"
        ) from None

    # Selected, not multiplied by the mask: a nan or inf gradient stays where it belongs.
    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zero = g.dtype.type(0)
        return np.where(cond, g, zero), np.where(cond, zero, g)

    def graph(g: Tensor) -> tuple[Tensor, Tensor]:
        return where(cond, g, 0.0), where(cond, 0.0, g)

    return Tensor._from_op(out, (a, b), backward, "where", graph)


def masked_fill(a: Any, mask: Any, value: float) -> Tensor:
    """Replace the elements where `mask` is True by `value`; they get no gradient."""
    a = lift(a)
    mask = as_array(mask).astype(bool, copy=False)
    try:
        out = np.where(mask, a.dtype.type(value), a.data)
    except ValueError:
        raise ValueError(
            f"masked_fill: mask of shape {mask.shape} does not broadcast to {a.shape}"
        ) from None
    if out.shape != a.shape:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to {a.shape}")

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (np.where(mask, g.dtype.type(0), g),)  # 0, not g * 0, where filled

    def graph(g: Tensor) -> tuple[Tensor]:
        return (where(mask, 0.0, g),)

    return Tensor._from_op(out, (a,), backward, "masked_fill", graph)

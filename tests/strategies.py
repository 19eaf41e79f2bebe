"""Hypothesis strategies shared by the test suite.

Everything here draws small float64 data: a finite-difference check runs two
forward passes per input element, so arrays stay at a few dozen elements.

Values are kept away from the points where an op is not differentiable, since
central differences straddling a kink measure an average of two slopes:

- `nonzero_arrays` for relu and abs (kink at 0) and for denominators;
- `positive_arrays` for log, sqrt and the base of a tensor power;
- `separated_arrays` for maximum, minimum and clip, whose operands live on two
  interleaved grids so they never come within 0.06 of each other;
- `distinct_arrays` for max and min reductions and layer norm, whose entries
  all differ by at least 0.06, so no reduction has a tie.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_DIMS = 3
MAX_SIDE = 3

# Grid spacing and jitter of `separated_arrays` and `distinct_arrays`: two grid
# points differ by at least SPACING / 2, so values differ by SPACING / 2 - 2 * JITTER.
SPACING = 0.2
JITTER = 0.02

Shape = tuple[int, ...]


def floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Finite floats in [low, high]."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


# ---- shapes ----------------------------------------------------------------------


def shapes(
    min_dims: int = 0,
    max_dims: int = MAX_DIMS,
    min_side: int = 1,
    max_side: int = MAX_SIDE,
) -> st.SearchStrategy[Shape]:
    """Array shapes, small, often with size-1 axes; `min_dims=0` allows scalars."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int, min_dims: int = 0, max_dims: int = MAX_DIMS
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """`num_shapes` shapes that broadcast together, e.g. (3, 1), (2, 1, 4) and (4,)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=MAX_SIDE
    ).map(lambda shapes: shapes.input_shapes)


def matmul_shapes() -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Operand shapes for matmul: 1-D vectors, matrices, and batches that broadcast."""
    return hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=2, max_side=MAX_SIDE
    ).map(lambda shapes: shapes.input_shapes)


@st.composite
def shapes_broadcasting_to(draw: st.DrawFn, target: Shape) -> Shape:
    """A shape that broadcasts to `target`: leading axes dropped, some axes set to 1."""
    kept = draw(st.integers(0, len(target)))
    tail = target[len(target) - kept :]
    return tuple(draw(st.sampled_from([n, 1])) for n in tail)


@st.composite
def expanded_shapes(draw: st.DrawFn, shape: Shape) -> Shape:
    """A shape `shape` broadcasts to: size-1 axes stretched, new leading axes added."""
    leading = draw(st.lists(st.integers(1, MAX_SIDE), max_size=2))
    stretched = [draw(st.integers(1, MAX_SIDE)) if n == 1 else n for n in shape]
    return tuple(leading + stretched)


# ---- values ----------------------------------------------------------------------


def smooth_arrays(shape: Shape, bound: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays with values in [-bound, bound], for ops smooth everywhere."""
    return hnp.arrays(np.float64, shape, elements=floats(-bound, bound))


def nonzero_arrays(
    shape: Shape, margin: float = 0.1, bound: float = 2.0
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays with `margin <= |value| <= bound`: no element near 0."""
    elements = st.one_of(floats(-bound, -margin), floats(margin, bound))
    return hnp.arrays(np.float64, shape, elements=elements)


def positive_arrays(
    shape: Shape, low: float = 0.1, high: float = 3.0
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays with values in [low, high], for log, sqrt and powers."""
    return hnp.arrays(np.float64, shape, elements=floats(low, high))


def grid_floats(phase: float, steps: int = 10) -> st.SearchStrategy[float]:
    """A multiple of SPACING plus `phase`, jittered by at most JITTER."""
    return st.builds(
        lambda k, jitter: SPACING * k + phase + jitter,
        st.integers(-steps, steps),
        floats(-JITTER, JITTER),
    )


def separated_arrays(shape: Shape, phase: float) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays on a jittered grid; phases 0 and SPACING / 2 never meet."""
    return hnp.arrays(np.float64, shape, elements=grid_floats(phase))


@st.composite
def distinct_arrays(draw: st.DrawFn, shape: Shape) -> np.ndarray:
    """float64 arrays whose entries all differ from each other by at least 0.06."""
    size = math.prod(shape)
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    jitter = draw(hnp.arrays(np.float64, size, elements=floats(-JITTER, JITTER)))
    return ((order - size / 2) * (SPACING / 2) + jitter).reshape(shape)


# ---- axis arguments --------------------------------------------------------------


def axes(ndim: int) -> st.SearchStrategy[int | tuple[int, ...] | None]:
    """An `axis` argument for a reduction: None, one axis or a tuple, maybe negative."""
    if ndim == 0:
        return st.none()
    return st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        hnp.valid_tuple_axes(ndim, min_size=1),
    )


def single_axes(ndim: int) -> st.SearchStrategy[int]:
    """One valid axis of an `ndim`-dimensional array, maybe negative."""
    return st.integers(-ndim, ndim - 1)


@st.composite
def reductions(
    draw: st.DrawFn, arrays: Any = smooth_arrays, min_dims: int = 0
) -> tuple[np.ndarray, int | tuple[int, ...] | None, bool]:
    """An (array, axis, keepdims) triple; `arrays` maps a shape to a value strategy."""
    shape = draw(shapes(min_dims=min_dims))
    return draw(arrays(shape)), draw(axes(len(shape))), draw(st.booleans())


@st.composite
def permutations(draw: st.DrawFn, ndim: int) -> tuple[int, ...]:
    """A reordering of `ndim` axes, each written as positive or negative."""
    order = draw(st.permutations(range(ndim)))
    return tuple(d - ndim if draw(st.booleans()) else d for d in order)


# ---- indices ---------------------------------------------------------------------


def basic_indices(shape: Shape) -> st.SearchStrategy[Any]:
    """Indices made of ints, slices (any step), None and Ellipsis."""
    return hnp.basic_indices(shape, allow_newaxis=True)


@st.composite
def repeated_indices(
    draw: st.DrawFn, length: int, max_size: int = 4, negative: bool = True
) -> np.ndarray:
    """A 1-D int64 index into an axis of `length`, holding at least one repeated entry.

    With `negative`, entries may count from the end (-1 is the last), as NumPy allows.
    """
    low = -length if negative else 0
    values = draw(st.lists(st.integers(low, length - 1), min_size=1, max_size=max_size))
    repeat = draw(st.sampled_from(values))
    position = draw(st.integers(0, len(values)))
    values.insert(position, repeat)
    return np.array(values, dtype=np.int64)


def masks(shape: Shape) -> st.SearchStrategy[np.ndarray]:
    """Boolean arrays of `shape`."""
    return hnp.arrays(np.bool_, shape)


@st.composite
def gather_indices(draw: st.DrawFn, shape: Shape, axis: int) -> np.ndarray:
    """An index for `gather` along `axis`: same ndim, any length along `axis`."""
    index_shape = list(shape)
    index_shape[axis] = draw(st.integers(1, MAX_SIDE + 1))
    elements = st.integers(0, shape[axis] - 1)
    return draw(hnp.arrays(np.int64, tuple(index_shape), elements=elements))


@st.composite
def class_targets(draw: st.DrawFn, n_rows: int, n_classes: int, ignore_index: int) -> np.ndarray:
    """(n_rows,) int64 classes in [0, n_classes), some rows set to `ignore_index`."""
    classes = st.integers(0, n_classes - 1)
    rows = st.one_of(classes, st.just(ignore_index)) if draw(st.booleans()) else classes
    return draw(hnp.arrays(np.int64, n_rows, elements=rows))


@st.composite
def split_sections(draw: st.DrawFn, length: int) -> int | list[int]:
    """A `split` argument: a chunk size, or a list of sizes summing to `length`."""
    if draw(st.booleans()):
        return draw(st.integers(1, length + 1))
    cuts = draw(st.lists(st.integers(0, length), max_size=3))
    bounds = [0, *sorted(cuts), length]
    return [end - start for start, end in zip(bounds[:-1], bounds[1:], strict=True)]


@st.composite
def index_arrays(draw: st.DrawFn, length: int, shape: Shape) -> np.ndarray:
    """An int64 index array of `shape` into an axis of `length`, maybe negative."""
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(-length, length - 1)))


# ---- whole cases: an input together with the arguments that fit it -------------


@st.composite
def arrays_with_axis(draw: st.DrawFn, bound: float = 2.0) -> tuple[np.ndarray, int]:
    """A smooth array of at least one dimension and one of its axes."""
    shape = draw(shapes(min_dims=1))
    return draw(smooth_arrays(shape, bound)), draw(single_axes(len(shape)))


@st.composite
def arrays_with_two_axes(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """A smooth array and two of its axes, maybe the same one."""
    shape = draw(shapes(min_dims=1))
    ndim = len(shape)
    return draw(smooth_arrays(shape)), draw(single_axes(ndim)), draw(single_axes(ndim))


@st.composite
def reshape_targets(draw: st.DrawFn, shape: Shape) -> tuple[int, ...]:
    """A shape with as many elements as `shape`, possibly written with one -1."""
    size = math.prod(shape)
    divisor = draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
    candidates = [(size,), (-1,), shape[::-1], (1, *shape), (*shape, 1), (divisor, -1)]
    return draw(st.sampled_from(candidates))


@st.composite
def squeeze_axes(draw: st.DrawFn, shape: Shape) -> int | tuple[int, ...] | None:
    """A `squeeze` argument: None, or one or more of the size-1 axes of `shape`."""
    ones = [i for i, n in enumerate(shape) if n == 1]
    if not ones or draw(st.booleans()):
        return None
    if draw(st.booleans()):
        axis = draw(st.sampled_from(ones))
        return axis - len(shape) if draw(st.booleans()) else axis
    return tuple(draw(st.lists(st.sampled_from(ones), min_size=1, unique=True)))


@st.composite
def flatten_dims(draw: st.DrawFn, ndim: int) -> tuple[int, int]:
    """(start_dim, end_dim) with start at or before end, each maybe negative."""
    start = draw(st.integers(0, ndim - 1))
    end = draw(st.integers(start, ndim - 1))
    return start - ndim * draw(st.booleans()), end - ndim * draw(st.booleans())


@st.composite
def cat_cases(draw: st.DrawFn) -> tuple[list[np.ndarray], int]:
    """One to three smooth arrays whose shapes differ only along the returned axis."""
    shape = list(draw(shapes(min_dims=1)))
    axis = draw(single_axes(len(shape)))
    parts = []
    for length in draw(st.lists(st.integers(1, MAX_SIDE), min_size=1, max_size=3)):
        shape[axis] = length
        parts.append(draw(smooth_arrays(tuple(shape))))
    return parts, axis


@st.composite
def cross_entropy_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, str]:
    """(logits (N, C), target (N,), ignore_index, reduction).

    A 'mean' always has a row that is not ignored, so it never divides by zero.
    """
    n_rows, n_classes = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ignore_index = draw(st.sampled_from([-100, -1, 0]))
    target = draw(class_targets(n_rows, n_classes, ignore_index))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    if reduction == "mean" and np.all(target == ignore_index):
        classes = [c for c in range(n_classes) if c != ignore_index]
        assume(classes)  # else every row is ignored and the mean is 0 / 0
        target[0] = classes[0]
    logits = draw(smooth_arrays((n_rows, n_classes), bound=3.0))
    return logits, target, ignore_index, reduction


@st.composite
def layer_norm_cases(draw: st.DrawFn) -> tuple[np.ndarray, Shape, list[np.ndarray]]:
    """(x, normalized_shape, [weight[, bias]]); x has no ties, so no zero variance."""
    shape = draw(shapes(min_dims=1))
    normalized_dims = draw(st.integers(1, len(shape)))
    normalized_shape = shape[len(shape) - normalized_dims :]
    n_params = draw(st.integers(0, 2))
    params = [draw(smooth_arrays(normalized_shape)) for _ in range(n_params)]
    return draw(distinct_arrays(shape)), normalized_shape, params


@st.composite
def recurrent_sizes(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """(batch, timesteps, features, units) for a recurrent layer, small enough for loops."""
    return (
        draw(st.integers(1, 4)),
        draw(st.integers(1, 6)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 4)),
    )


@st.composite
def attention_cases(
    draw: st.DrawFn,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """(q, k, v, mask, is_causal) for scaled dot-product attention.

    q is (*batch, Tq, d), k (*batch, Tk, d), v (*batch, Tk, dv), with zero to
    two batch axes.  The mask is None, boolean or float, of a shape that
    broadcasts to (*batch, Tq, Tk); a boolean mask always allows key 0, so
    no query is left with nothing to attend to (a separate test covers that).
    """
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=2)))
    t_query, t_key, width, value_width = (draw(st.integers(1, 3)) for _ in range(4))
    q = draw(smooth_arrays((*batch, t_query, width)))
    k = draw(smooth_arrays((*batch, t_key, width)))
    v = draw(smooth_arrays((*batch, t_key, value_width)))
    kind = draw(st.sampled_from(["none", "bool", "float"]))
    mask = None
    if kind != "none":
        shape = draw(shapes_broadcasting_to((*batch, t_query, t_key)))
        if kind == "bool":
            mask = draw(masks(shape))
            if mask.ndim:
                mask[..., 0] = True
            else:
                mask = np.asarray(True)
        else:
            mask = draw(smooth_arrays(shape))
    return q, k, v, mask, draw(st.booleans())

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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import Tensor
from minigrad.nn import functional as F

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
def non_broadcastable_shapes(draw: st.DrawFn) -> tuple[Shape, Shape]:
    """Two shapes that do not broadcast: one axis, aligned from the right, holds m and n.

    Both m and n exceed 1 and differ; every other axis is drawn freely.
    """
    a = list(draw(shapes(min_dims=1)))
    b = list(draw(shapes(min_dims=1)))
    clash = draw(st.integers(1, min(len(a), len(b))))  # counted from the right
    m = draw(st.integers(2, MAX_SIDE + 1))
    n = draw(st.integers(2, MAX_SIDE + 1).filter(lambda n: n != m))
    a[-clash], b[-clash] = m, n
    return tuple(a), tuple(b)


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


def tied_arrays(shape: Shape) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays drawn from three values only, so reductions meet many exact ties."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 0.5, 2.0]))


def large_logits(shape: Shape, magnitude: float) -> st.SearchStrategy[np.ndarray]:
    """float32 logits up to `magnitude`, mixing far-apart values with near-equal ones."""
    spread = hnp.arrays(np.float32, shape, elements=floats(-magnitude, magnitude).map(np.float32))
    offsets = hnp.arrays(np.float32, shape, elements=floats(-3.0, 3.0).map(np.float32))
    return st.one_of(spread, st.builds(lambda o: o + np.float32(magnitude), offsets))


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


# ---- cases for the higher-order checks -------------------------------------------


def nonzero_floats(margin: float = 0.5, bound: float = 2.5) -> st.SearchStrategy[float]:
    """A Python float with `margin <= |value| <= bound`: a scalar operand or exponent."""
    return st.one_of(floats(-bound, -margin), floats(margin, bound))


@st.composite
def linear_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x (*batch, in), weight (out, in), bias (out,) or None) for a linear layer."""
    batch = draw(st.lists(st.integers(1, MAX_SIDE), max_size=2))
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = draw(smooth_arrays((*batch, n_in)))
    weight = draw(smooth_arrays((n_out, n_in)))
    bias = draw(smooth_arrays((n_out,))) if draw(st.booleans()) else None
    return x, weight, bias


@st.composite
def embedding_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(table (rows, dim), indices): 1-D or 2-D indices that pick some row twice."""
    n_rows, dim = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    table = draw(smooth_arrays((n_rows, dim)))
    indices = draw(repeated_indices(n_rows, negative=False))
    return table, indices.reshape(draw(st.sampled_from([(-1,), (1, -1), (-1, 1)])))


# ---- random programs of ops, for the fuzz test --------------------------------------

# A program is a list of steps; each applies one op to the previous step's value and,
# for ops with two operands, to an earlier value, an input used before, or a fresh
# input, which may be a constant that needs no gradient.  Ops with a kink
# (relu, abs, clip, maximum, minimum, max, min) record how far their operands are from
# it, relative to KINK_MARGIN, so that the strategy can drop programs that land on one;
# so do ops whose gradient blows up near a point (layer norm of a near-constant row).
# log, sqrt, the divisor of div and the base of pow are kept positive by construction:
# they receive x * x + 0.5.

KINK_MARGIN = 1e-3
MAX_VALUE = 1e3  # larger intermediate values make finite differences too coarse
MAX_ELEMENTS = 48  # per value; gradcheck runs two forward passes per input element
MAX_INPUT_ELEMENTS = 40


@dataclass
class Step:
    """One op of a program: its name, operands and arguments.

    Operands are ("x", i) for input i or ("v", j) for the value of step j.
    """

    op: str
    operands: tuple[tuple[str, int], ...]
    params: dict[str, Any] = field(default_factory=dict)


def _positive(t: Tensor) -> Tensor:
    """x * x + 0.5: an operand for log, sqrt, a divisor or a base, away from 0."""
    return t * t + 0.5


def _reduced_axes(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


def _runner_up_gap(data: np.ndarray, axis: Any, largest: bool) -> float:
    """The smallest gap, over `axis`, between the extreme value and the next one."""
    reduced = _reduced_axes(axis, data.ndim)
    rows = np.moveaxis(data, reduced, tuple(range(data.ndim - len(reduced), data.ndim)))
    rows = np.sort(rows.reshape(*rows.shape[: data.ndim - len(reduced)], -1), axis=-1)
    if rows.shape[-1] < 2:
        return math.inf
    gaps = rows[..., -1] - rows[..., -2] if largest else rows[..., 1] - rows[..., 0]
    return float(gaps.min())


def _record(margins: list[float], distance: Any, needed: float = KINK_MARGIN) -> None:
    """Note how many times `needed` the smallest |distance| is (a kink is met below 1)."""
    margins.append(float(np.min(np.abs(distance), initial=math.inf)) / needed)


def _relu(t: Tensor, margins: list[float]) -> Tensor:
    _record(margins, t.data)
    return t.relu()


def _abs(t: Tensor, margins: list[float]) -> Tensor:
    _record(margins, t.data)
    return t.abs()


def _clip(t: Tensor, margins: list[float], low: float | None, high: float | None) -> Tensor:
    bounds = [b for b in (low, high) if b is not None]
    _record(margins, np.min([np.abs(t.data - b) for b in bounds], axis=0))
    return t.clip(low, high)


def _maximum(a: Tensor, b: Tensor, margins: list[float]) -> Tensor:
    _record(margins, a.data - b.data)
    return mg.maximum(a, b)


def _minimum(a: Tensor, b: Tensor, margins: list[float]) -> Tensor:
    _record(margins, a.data - b.data)
    return mg.minimum(a, b)


def _max(t: Tensor, margins: list[float], axis: Any, keepdims: bool) -> Tensor:
    _record(margins, _runner_up_gap(t.data, axis, largest=True))
    return t.max(axis=axis, keepdims=keepdims)


def _min(t: Tensor, margins: list[float], axis: Any, keepdims: bool) -> Tensor:
    _record(margins, _runner_up_gap(t.data, axis, largest=False))
    return t.min(axis=axis, keepdims=keepdims)


def _layer_norm(t: Tensor, margins: list[float], dims: int, weight: Tensor | None = None) -> Tensor:
    """Layer norm over the last `dims` axes; rows need a spread of 0.05, as 1/std scales it."""
    rows = t.data.reshape(*t.shape[: t.ndim - dims], -1)
    _record(margins, rows.std(axis=-1), needed=0.05)
    bias = None if weight is None else weight * 0.5
    return F.layer_norm(t, t.shape[t.ndim - dims :], weight, bias)


def _attention(q: Tensor, k: Tensor, v: Tensor, mask: Any, is_causal: bool, weights: bool):
    """The attention output, or with `weights` the attention probabilities."""
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=is_causal, need_weights=weights
    )
    return out[1] if weights else out


# name -> fn(*operands, margins, **params)
PROGRAM_OPS: dict[str, Any] = {
    # unary, smooth
    "neg": lambda t, m: -t,
    "exp": lambda t, m: t.exp(),
    "tanh": lambda t, m: t.tanh(),
    "sigmoid": lambda t, m: t.sigmoid(),
    "gelu": lambda t, m: t.gelu(),
    "gelu_tanh": lambda t, m: t.gelu("tanh"),
    "square": lambda t, m: t * t,
    "log": lambda t, m: _positive(t).log(),
    "sqrt": lambda t, m: _positive(t).sqrt(),
    "pow_scalar": lambda t, m, p: _positive(t) ** p,
    "rpow_scalar": lambda t, m, base: base**t,
    # unary, with a kink
    "relu": _relu,
    "abs": _abs,
    "clip": _clip,
    # binary, broadcasting
    "add": lambda a, b, m: a + b,
    "sub": lambda a, b, m: a - b,
    "mul": lambda a, b, m: a * b,
    "div": lambda a, b, m: a / _positive(b),
    "rdiv": lambda a, b, m: b / _positive(a),
    "pow": lambda a, b, m: _positive(a) ** b,
    "maximum": _maximum,
    "minimum": _minimum,
    "where": lambda a, b, m, mask: mg.where(mask, a, b),
    # reductions
    "sum": lambda t, m, axis, keepdims: t.sum(axis=axis, keepdims=keepdims),
    "mean": lambda t, m, axis, keepdims: t.mean(axis=axis, keepdims=keepdims),
    "var": lambda t, m, axis, keepdims, correction: t.var(axis, keepdims, correction),
    "logsumexp": lambda t, m, axis, keepdims: t.logsumexp(axis=axis, keepdims=keepdims),
    "max": _max,
    "min": _min,
    # along an axis, or with a partner shaped to fit
    "softmax": lambda t, m, axis: t.softmax(axis),
    "log_softmax": lambda t, m, axis: t.log_softmax(axis),
    "layer_norm": lambda t, m, dims: _layer_norm(t, m, dims),
    "layer_norm_affine": lambda t, w, m, dims: _layer_norm(t, m, dims, w),
    "cat": lambda a, b, m, axis: mg.cat([a, b], axis=axis),
    "stack": lambda a, b, m, axis: mg.stack([a, b], axis=axis),
    "matmul": lambda a, b, m: a @ b,
    "rmatmul": lambda a, b, m: b @ a,
    "linear": lambda t, w, m, bias=None: F.linear(t, w, bias),
    "linear_bias": lambda t, w, b, m: F.linear(t, w, b),
    "mse_loss": lambda a, b, m, reduction: F.mse_loss(a, b, reduction),
    "attention": lambda q, k, v, m, mask, is_causal, weights: _attention(
        q, k, v, mask, is_causal, weights
    ),
    # fused, with integer or boolean arguments
    "cross_entropy": lambda t, m, target, ignore_index, reduction: F.cross_entropy(
        t, target, ignore_index, reduction
    ),
    "embedding": lambda t, m, indices: F.embedding(indices, t),
    "masked_fill": lambda t, m, mask, value: t.masked_fill(mask, value),
    # shapes and indexing
    "reshape": lambda t, m, shape: t.reshape(shape),
    "transpose": lambda t, m, dim0, dim1: t.transpose(dim0, dim1),
    "permute": lambda t, m, dims: t.permute(dims),
    "T": lambda t, m: t.T,
    "squeeze": lambda t, m, axis: t.squeeze(axis),
    "unsqueeze": lambda t, m, axis: t.unsqueeze(axis),
    "flatten": lambda t, m, start, end: t.flatten(start, end),
    "expand": lambda t, m, shape: t.broadcast_to(shape),
    "getitem": lambda t, m, index: t[index],
    "gather": lambda t, m, axis, index: t.gather(axis, index),
    "split": lambda t, m, sections, axis, piece: t.split(sections, axis)[piece],
}


@dataclass
class OpProgram:
    """A random composition of ops: call it on Tensors of the input shapes to run it."""

    inputs: list[np.ndarray]
    steps: list[Step]
    constants: set[int] = field(default_factory=set)  # inputs that need no gradient

    def tensors(self) -> list[Tensor]:
        """Fresh Tensors of the inputs, requiring a gradient unless they are constants."""
        return [
            mg.tensor(a.copy(), requires_grad=i not in self.constants)
            for i, a in enumerate(self.inputs)
        ]

    def __call__(self, *inputs: Tensor, margins: list[float] | None = None) -> Tensor:
        margins = [] if margins is None else margins
        values: list[Any] = []
        for step in self.steps:
            operands = [inputs[i] if kind == "x" else values[i] for kind, i in step.operands]
            values.append(PROGRAM_OPS[step.op](*operands, margins, **step.params))
        return values[-1]

    def __repr__(self) -> str:
        lines = [
            f"x{i} = {a.tolist()!r}  # shape {a.shape}{', constant' * (i in self.constants)}"
            for i, a in enumerate(self.inputs)
        ]
        for j, step in enumerate(self.steps):
            operands = ", ".join(f"{kind}{i}" for kind, i in step.operands)
            params = "".join(f", {k}={_short(v)}" for k, v in step.params.items())
            lines.append(f"v{j} = {step.op}({operands}{params})")
        return "OpProgram:\n    " + "\n    ".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r})"
    return repr(value)


UNARY = ["neg", "exp", "tanh", "sigmoid", "gelu", "gelu_tanh", "square", "log", "sqrt", "relu"]
UNARY += ["abs", "pow_scalar", "rpow_scalar", "clip"]
BINARY = ["add", "sub", "mul", "div", "rdiv", "pow", "maximum", "minimum", "where"]
REDUCTIONS = ["sum", "mean", "var", "logsumexp", "max", "min"]
SHAPE_OPS = ["reshape", "transpose", "permute", "T", "squeeze", "unsqueeze", "flatten"]
SHAPE_OPS += ["expand", "getitem", "gather", "split"]
AXIS_OPS = ["softmax", "log_softmax", "layer_norm", "cat", "stack", "matmul", "rmatmul"]
AXIS_OPS += ["layer_norm_affine", "linear", "linear_bias"]
FUSED = ["cross_entropy", "embedding", "attention", "mse_loss", "masked_fill"]
OP_FAMILIES = [UNARY, BINARY, REDUCTIONS, SHAPE_OPS, AXIS_OPS, FUSED]


@st.composite
def embedding_indices(draw: st.DrawFn, n_rows: int) -> np.ndarray:
    """Row indices into a table of `n_rows`, 1-D or 2-D, some row picked twice."""
    indices = draw(repeated_indices(n_rows, negative=False))
    return indices.reshape(draw(st.sampled_from([(-1,), (1, -1), (-1, 1)])))


def _broadcasts(a: Shape, b: Shape) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


@st.composite
def _matmul_partner(draw: st.DrawFn, shape: Shape, on_right: bool) -> Shape:
    """A shape that multiplies with `shape`: as b in (shape @ b) or as a in (a @ shape)."""
    if on_right:  # shape @ b: b's contracted axis is its only one or its second-to-last
        inner = shape[-1]
        if draw(st.booleans()):
            return (inner,)
        batch = draw(shapes_broadcasting_to(shape[:-2])) if len(shape) > 2 else ()
        if len(shape) <= 2 and draw(st.booleans()):
            batch = (draw(st.integers(1, 2)),)
        return (*batch, inner, draw(st.integers(1, MAX_SIDE)))
    inner = shape[0] if len(shape) == 1 else shape[-2]
    if draw(st.booleans()):
        return (inner,)
    batch = draw(shapes_broadcasting_to(shape[:-2])) if len(shape) > 2 else ()
    return (*batch, draw(st.integers(1, MAX_SIDE)), inner)


@st.composite
def _step(
    draw: st.DrawFn, values: list[np.ndarray], inputs: list[np.ndarray], constants: set[int]
) -> Step:
    """One step applied to the last of `values`; fresh operands are appended to `inputs`."""
    value, n_values = values[-1], len(values)
    shape, ndim = value.shape, value.ndim
    names = draw(st.sampled_from(OP_FAMILIES))
    op = draw(st.sampled_from(names))
    needs_axes = AXIS_OPS + ["transpose", "permute", "gather", "split", "flatten", "mse_loss"]
    if (ndim == 0 and op in needs_axes) or (ndim not in (1, 2) and op == "cross_entropy"):
        op = draw(st.sampled_from(UNARY + BINARY + ["sum", "unsqueeze", "reshape", "expand"]))
    if (ndim != 2 and op == "embedding") or (ndim < 2 and op == "attention"):
        op = "masked_fill"
    last = ("v", n_values - 1)

    def fresh(fresh_shape: Shape) -> tuple[str, int]:
        inputs.append(draw(smooth_arrays(fresh_shape)))
        if draw(st.integers(0, 4)) == 0:
            constants.add(len(inputs) - 1)
        return ("x", len(inputs) - 1)

    if op in UNARY:
        params: dict[str, Any] = {}
        if op == "pow_scalar":
            params["p"] = draw(st.sampled_from([-1.5, -1, 0.5, 2, 3]))
        elif op == "rpow_scalar":
            params["base"] = draw(st.sampled_from([0.5, 2.0, 3.0]))
        elif op == "clip":
            low = draw(floats(-1.5, 0.5))
            high = low + draw(floats(0.1, 2.0))
            params = draw(
                st.sampled_from(
                    [{"low": low, "high": high}, {"low": low, "high": None},
                     {"low": None, "high": high}]
                )
            )  # fmt: skip
        return Step(op, (last,), params)
    if op in BINARY:
        fits = [("v", j) for j, v in enumerate(values) if _broadcasts(v.shape, shape)]
        fits += [("x", i) for i, x in enumerate(inputs) if _broadcasts(x.shape, shape)]
        if draw(st.booleans()):  # used before (maybe this very value): gradients add up
            other = draw(st.sampled_from(fits))
        else:
            other = fresh(draw(st.one_of(shapes_broadcasting_to(shape), expanded_shapes(shape))))
        params = {}
        if op == "where":
            params["mask"] = draw(masks(draw(shapes_broadcasting_to(shape))))
        return Step(op, (last, other), params)
    if op in REDUCTIONS:
        params = {"axis": draw(axes(ndim)), "keepdims": draw(st.booleans())}
        if op == "var":
            params["correction"] = draw(st.sampled_from([0, 1]))
        return Step(op, (last,), params)
    if op in ("softmax", "log_softmax"):
        return Step(op, (last,), {"axis": draw(single_axes(ndim))})
    if op == "layer_norm":
        return Step(op, (last,), {"dims": draw(st.integers(1, ndim))})
    if op == "layer_norm_affine":
        dims = draw(st.integers(1, ndim))
        return Step(op, (last, fresh(shape[ndim - dims :])), {"dims": dims})
    if op in ("cat", "stack"):
        axis = draw(single_axes(ndim + (op == "stack")))
        other_shape = list(shape)
        if op == "cat":
            other_shape[axis] = draw(st.integers(1, MAX_SIDE))
        return Step(op, (last, fresh(tuple(other_shape))), {"axis": axis})
    if op in ("matmul", "rmatmul"):
        partner = draw(_matmul_partner(shape, on_right=op == "matmul"))
        return Step(op, (last, fresh(partner)))
    if op in ("linear", "linear_bias"):
        out_features = draw(st.integers(1, MAX_SIDE))
        weight = fresh((out_features, shape[-1]))
        if op == "linear":
            return Step(op, (last, weight))
        return Step(op, (last, weight, fresh((out_features,))))
    if op == "mse_loss":
        reduction = draw(st.sampled_from(["mean", "sum", "none"]))
        return Step(op, (last, fresh(shape)), {"reduction": reduction})
    if op == "cross_entropy":
        n_rows, n_classes = (1, shape[0]) if ndim == 1 else shape
        ignore_index = draw(st.sampled_from([-100, 0]))
        target = draw(class_targets(n_rows, n_classes, ignore_index))
        reduction = draw(st.sampled_from(["mean", "sum", "none"]))
        if reduction == "mean" and np.all(target == ignore_index):
            reduction = "sum"  # a mean over no rows is 0 / 0
        target = target[0] if ndim == 1 else target
        params = {"target": target, "ignore_index": ignore_index, "reduction": reduction}
        return Step(op, (last,), params)
    if op == "embedding":
        return Step(op, (last,), {"indices": draw(embedding_indices(shape[0]))})
    if op == "attention":
        *batch, t_query, width = shape
        t_key = draw(st.integers(1, MAX_SIDE))
        k = fresh((*draw(shapes_broadcasting_to(tuple(batch))), t_key, width))
        v = fresh((*draw(shapes_broadcasting_to(tuple(batch))), t_key, draw(st.integers(1, 3))))
        mask = None
        if draw(st.booleans()):
            mask = draw(masks(draw(shapes_broadcasting_to((t_query, t_key)))))
            if mask.ndim:
                mask[..., 0] = True  # every query may see key 0
            else:
                mask = np.asarray(True)
        params = {"mask": mask, "is_causal": draw(st.booleans()), "weights": draw(st.booleans())}
        return Step(op, (last, k, v), params)
    if op == "masked_fill":
        mask = draw(masks(draw(shapes_broadcasting_to(shape))))
        return Step(op, (last,), {"mask": mask, "value": draw(floats(-2.0, 2.0))})
    if op == "reshape":
        return Step(op, (last,), {"shape": draw(reshape_targets(shape))})
    if op == "transpose":
        return Step(op, (last,), {"dim0": draw(single_axes(ndim)), "dim1": draw(single_axes(ndim))})
    if op == "permute":
        return Step(op, (last,), {"dims": draw(permutations(ndim))})
    if op == "squeeze":
        return Step(op, (last,), {"axis": draw(squeeze_axes(shape))})
    if op == "unsqueeze":
        return Step(op, (last,), {"axis": draw(st.integers(-ndim - 1, ndim))})
    if op == "flatten":
        start, end = draw(flatten_dims(ndim))
        return Step(op, (last,), {"start": start, "end": end})
    if op == "expand":
        return Step(op, (last,), {"shape": draw(expanded_shapes(shape))})
    if op == "getitem":
        kind = draw(st.sampled_from(["basic", "repeated", "mask"] if ndim else ["basic"]))
        if kind == "basic":
            index = draw(basic_indices(shape))
        elif kind == "repeated":
            index = draw(repeated_indices(shape[0]))
        else:
            index = draw(masks(shape))
        return Step(op, (last,), {"index": index})
    if op == "gather":
        axis = draw(single_axes(ndim))
        return Step(op, (last,), {"axis": axis, "index": draw(gather_indices(shape, axis))})
    if op == "split":
        axis = draw(single_axes(ndim))
        sections = draw(split_sections(shape[axis]))
        pieces = len(sections) if isinstance(sections, list) else -(-shape[axis] // sections)
        return Step(op, (last,), {"sections": sections, "axis": axis,
                                  "piece": draw(st.integers(0, pieces - 1))})  # fmt: skip
    if op == "T":
        return Step(op, (last,))
    raise AssertionError(f"no parameters drawn for op {op!r}")


@st.composite
def op_programs(draw: st.DrawFn, max_steps: int = 6) -> OpProgram:
    """A program of 1 to `max_steps` ops on float64 inputs.

    Every value is small, finite and non-empty, and every kinked op's operands
    keep KINK_MARGIN from the kink.
    """
    inputs = [draw(smooth_arrays(draw(shapes())))]
    constants: set[int] = set()
    steps = [Step("neg", (("x", 0),))]  # v0 = -x0 gives every program a value to start from
    values = [-inputs[0]]
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(_step(values, inputs, constants))
        program = OpProgram(inputs, [*steps, step], constants)
        margins: list[float] = []
        with mg.no_grad():
            value = program(*program.tensors(), margins=margins).data
        assume(all(m > 1 for m in margins))
        assume(0 < value.size <= MAX_ELEMENTS and np.all(np.abs(value) < MAX_VALUE))
        steps.append(step)
        values.append(value)
    assume(sum(a.size for a in inputs) <= MAX_INPUT_ELEMENTS)
    return OpProgram(inputs, steps, constants)

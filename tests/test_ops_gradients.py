"""Every differentiable op's backward rule agrees with central differences.

Each test draws small float64 inputs of random shape and runs `minigrad.gradcheck`,
which compares the vector-Jacobian product that backward computes with finite
differences of the forward pass. Where NumPy computes the same forward value,
the test checks that too, so a rule cannot pass by being consistently wrong.

The last section compares the fused rules of `minigrad.ops.nn` and `logsumexp`
with the same functions built from elementwise ops, in value and in gradient.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from strategies import (
    MAX_SIDE,
    SPACING,
    arrays_with_axis,
    arrays_with_two_axes,
    basic_indices,
    broadcastable_shapes,
    cat_cases,
    cross_entropy_cases,
    distinct_arrays,
    expanded_shapes,
    flatten_dims,
    floats,
    gather_indices,
    grid_floats,
    index_arrays,
    layer_norm_cases,
    masks,
    matmul_shapes,
    nonzero_arrays,
    permutations,
    positive_arrays,
    reductions,
    repeated_indices,
    reshape_targets,
    separated_arrays,
    shapes,
    shapes_broadcasting_to,
    single_axes,
    smooth_arrays,
    split_sections,
    squeeze_axes,
)

import minigrad as mg
from minigrad import Tensor, gradcheck
from minigrad.nn import functional as F


def assert_close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Equal up to float64 rounding, for values and gradients computed exactly."""
    assert_allclose(actual, expected, rtol=rtol, atol=atol)


def leaf(array: Any) -> Tensor:
    """A float64 leaf that requires a gradient, on a private copy of `array`."""
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def check(fn: Callable[..., Tensor], *arrays: np.ndarray) -> bool:
    """gradcheck `fn` with every array as a differentiated float64 input."""
    return gradcheck(fn, [leaf(a) for a in arrays])


def gradients(
    fn: Callable[..., Tensor], arrays: list[np.ndarray], seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """fn's value and the gradients of sum(r * fn(...)) for a fixed random r."""
    inputs = [leaf(a) for a in arrays]
    out = fn(*inputs)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    return out.data, [np.zeros(t.shape) if t.grad is None else t.grad for t in inputs]


# ---- elementwise -----------------------------------------------------------------


def gelu_tanh_reference(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_exact_reference(x: np.ndarray) -> np.ndarray:
    cdf = np.vectorize(lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2))))
    return x * cdf(x)


# name: (op, a value strategy keeping clear of its kinks, NumPy's value)
UNARY_OPS: dict[str, tuple[Callable[[Tensor], Tensor], Any, Callable[..., Any]]] = {
    "neg": (lambda x: -x, smooth_arrays, np.negative),
    "exp": (mg.exp, smooth_arrays, np.exp),
    "log": (mg.log, positive_arrays, np.log),
    "sqrt": (mg.sqrt, positive_arrays, np.sqrt),
    "tanh": (mg.tanh, smooth_arrays, np.tanh),
    "sigmoid": (mg.sigmoid, smooth_arrays, lambda x: 1 / (1 + np.exp(-x))),
    "relu": (mg.relu, nonzero_arrays, lambda x: np.maximum(x, 0)),
    "abs": (mg.abs, nonzero_arrays, np.abs),
    "gelu_exact": (lambda x: mg.gelu(x, approximate="none"), smooth_arrays, gelu_exact_reference),
    "gelu_tanh": (lambda x: mg.gelu(x, approximate="tanh"), smooth_arrays, gelu_tanh_reference),
}


@pytest.mark.parametrize("name", list(UNARY_OPS))
@given(data=st.data())
def test_unary_op_gradient_matches_finite_differences(name, data):
    op, arrays, reference = UNARY_OPS[name]
    x = data.draw(shapes().flatmap(arrays))
    assert_close(op(Tensor(x)).data, reference(x))
    assert check(op, x)


@given(x=shapes().flatmap(lambda shape: smooth_arrays(shape, bound=3.0)))
def test_gelu_exact_in_float64_matches_math_erf_to_rounding(x):
    assert_close(mg.gelu(Tensor(x)).data, gelu_exact_reference(x), rtol=1e-14, atol=1e-15)


BINARY_OPS: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Any, Any]] = {
    "add": (lambda a, b: a + b, smooth_arrays, smooth_arrays),
    "sub": (lambda a, b: a - b, smooth_arrays, smooth_arrays),
    "mul": (lambda a, b: a * b, smooth_arrays, smooth_arrays),
    "div": (
        lambda a, b: a / b,
        smooth_arrays,
        lambda shape: nonzero_arrays(shape, margin=0.5),
    ),
    "pow": (
        lambda a, b: a**b,
        lambda shape: positive_arrays(shape, 0.5, 2.0),
        smooth_arrays,
    ),
    "maximum": (
        mg.maximum,
        lambda shape: separated_arrays(shape, 0.0),
        lambda shape: separated_arrays(shape, SPACING / 2),
    ),
    "minimum": (
        mg.minimum,
        lambda shape: separated_arrays(shape, 0.0),
        lambda shape: separated_arrays(shape, SPACING / 2),
    ),
}

NUMPY_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
}


@pytest.mark.parametrize("name", list(BINARY_OPS))
@given(operand_shapes=broadcastable_shapes(2), data=st.data())
def test_binary_op_gradient_reaches_both_broadcast_operands(name, operand_shapes, data):
    op, left, right = BINARY_OPS[name]
    a, b = data.draw(left(operand_shapes[0])), data.draw(right(operand_shapes[1]))
    assert_close(op(Tensor(a), Tensor(b)).data, NUMPY_BINARY[name](a, b))
    assert check(op, a, b)


SCALAR_OPERAND_OPS: dict[str, tuple[Callable[[Tensor, float], Tensor], Any]] = {
    "tensor_plus_scalar": (lambda x, c: x + c, smooth_arrays),
    "scalar_plus_tensor": (lambda x, c: c + x, smooth_arrays),
    "tensor_minus_scalar": (lambda x, c: x - c, smooth_arrays),
    "scalar_minus_tensor": (lambda x, c: c - x, smooth_arrays),
    "tensor_times_scalar": (lambda x, c: x * c, smooth_arrays),
    "scalar_times_tensor": (lambda x, c: c * x, smooth_arrays),
    "tensor_over_scalar": (lambda x, c: x / c, smooth_arrays),
    "scalar_over_tensor": (lambda x, c: c / x, lambda s: nonzero_arrays(s, 0.5)),
    "tensor_to_scalar_power": (lambda x, c: x**c, positive_arrays),
    "scalar_to_tensor_power": (lambda x, c: (abs(c) + 0.5) ** x, smooth_arrays),
}


@pytest.mark.parametrize("name", list(SCALAR_OPERAND_OPS))
@given(scalar=st.one_of(floats(-2.5, -0.5), floats(0.5, 2.5)), data=st.data())
def test_op_with_python_scalar_operand_has_tensor_gradient(name, scalar, data):
    op, arrays = SCALAR_OPERAND_OPS[name]
    x = data.draw(shapes().flatmap(arrays))
    assert check(lambda t: op(t, scalar), x)


@given(
    x=shapes().flatmap(lambda shape: nonzero_arrays(shape, margin=0.3)),
    exponent=st.integers(-2, 3),
)
def test_integer_power_of_negative_base_has_gradient(x, exponent):
    assert_close((Tensor(x) ** exponent).data, x**exponent)
    assert check(lambda t: t**exponent, x)


def test_gradient_of_zero_to_a_power_follows_its_one_sided_limits():
    # d(0^p)/dp = 0^p log 0: 0 for p > 0 (0 * -inf taken as its limit), -inf for p < 0
    # (inf * -inf), and 0 at p = 0 by PyTorch's convention; the same to second order.
    p = Tensor(np.array([-2.0, -0.5, 0.0, 0.5, 3.0]), requires_grad=True)
    with np.errstate(divide="ignore"):
        out = Tensor(np.zeros(5)) ** p
        (first,) = mg.grad(out.sum(), p, create_graph=True)
        out.sum().backward()
    assert out.data.tolist() == [np.inf, np.inf, 1.0, 0.0, 0.0]
    assert p.grad.tolist() == [-np.inf, -np.inf, 0.0, 0.0, 0.0]
    assert first.data.tolist() == p.grad.tolist()


@given(
    x=shapes().flatmap(lambda shape: separated_arrays(shape, SPACING / 2)),
    bounds=st.tuples(grid_floats(0.0, steps=6), grid_floats(0.0, steps=6)).map(sorted),
    which=st.sampled_from(["both", "min", "max"]),
)
def test_clip_gradient_passes_only_inside_bounds(x, bounds, which):
    low = bounds[0] if which != "max" else None
    high = bounds[1] if which != "min" else None
    assert_close(mg.clip(Tensor(x), low, high).data, np.clip(x, low, high))
    assert check(lambda t: t.clip(low, high), x)


def test_maximum_and_minimum_split_a_tie_between_both_arguments():
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([1.0, 5.0, 3.0])
    (mg.maximum(a, b) + mg.minimum(a, b) * 10).sum().backward()
    # ties at 0 and 2 give each argument half in both ops; at 1, b wins max and a wins min
    assert_close(a.grad, [5.5, 10.0, 5.5])
    assert_close(b.grad, [5.5, 1.0, 5.5])


# ---- reductions ------------------------------------------------------------------

REDUCTIONS: dict[str, tuple[Callable[..., Tensor], Callable[..., np.ndarray], Any]] = {
    "sum": (mg.sum, np.sum, smooth_arrays),
    "mean": (mg.mean, np.mean, smooth_arrays),
    "max": (mg.max, np.max, distinct_arrays),
    "min": (mg.min, np.min, distinct_arrays),
    "logsumexp": (
        mg.logsumexp,
        lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis, keepdims=keepdims)),
        smooth_arrays,
    ),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_gradient_over_any_axis_with_or_without_keepdims(name, data):
    op, reference, arrays = REDUCTIONS[name]
    x, axis, keepdims = data.draw(reductions(arrays))
    expected = reference(x, axis=axis, keepdims=keepdims)
    assert_close(op(Tensor(x), axis, keepdims).data, expected)
    assert check(lambda t: op(t, axis, keepdims), x)


@given(case=reductions(), correction=st.sampled_from([0, 1]))
def test_var_gradient_with_correction_zero_and_one(case, correction):
    x, axis, keepdims = case
    count = x.size // np.sum(x, axis=axis, keepdims=True).size  # elements per result
    assume(count > correction)
    expected = np.var(x, axis=axis, keepdims=keepdims, ddof=correction)
    assert_close(mg.var(Tensor(x), axis, keepdims, correction).data, expected)
    assert check(lambda t: t.var(axis, keepdims, correction), x)


def test_var_defaults_to_correction_one():
    x = Tensor(np.array([1.0, 2.0, 4.0]))
    assert_close(x.var().data, np.var([1.0, 2.0, 4.0], ddof=1))


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (mg.max, [[1 / 3, 1 / 3, 1 / 3], [0.0, 1.0, 0.0]]),
        (mg.min, [[1 / 3, 1 / 3, 1 / 3], [0.5, 0.0, 0.5]]),
    ],
    ids=["max", "min"],
)
def test_max_and_min_split_gradient_equally_among_ties(op, expected):
    x = leaf([[3.0, 3.0, 3.0], [1.0, 3.0, 1.0]])
    op(x, 1).sum().backward()
    assert_close(x.grad, expected)


# ---- matrix products -------------------------------------------------------------


@given(data=st.data())
def test_matmul_gradient_with_vectors_and_broadcast_batches(data):
    shape_a, shape_b = data.draw(matmul_shapes())
    a, b = data.draw(smooth_arrays(shape_a)), data.draw(smooth_arrays(shape_b))
    assert_close((Tensor(a) @ Tensor(b)).data, np.matmul(a, b))
    assert check(mg.matmul, a, b)


MATMUL_LAYOUTS = {
    "vector_vector": ((3,), (3,)),
    "vector_matrix": ((3,), (3, 2)),
    "matrix_vector": ((2, 3), (3,)),
    "vector_batch": ((3,), (2, 3, 2)),
    "batch_vector": ((2, 2, 3), (3,)),
    "batch_matrix": ((2, 2, 3), (3, 2)),
    "matrix_batch": ((2, 3), (2, 3, 2)),
    "broadcast_batches": ((2, 1, 2, 3), (3, 3, 2)),
}


@pytest.mark.parametrize("layout", list(MATMUL_LAYOUTS))
@given(data=st.data())
def test_matmul_gradient_for_each_operand_layout(layout, data):
    shape_a, shape_b = MATMUL_LAYOUTS[layout]
    a, b = data.draw(smooth_arrays(shape_a)), data.draw(smooth_arrays(shape_b))
    assert_close((Tensor(a) @ Tensor(b)).data, np.matmul(a, b))
    assert check(mg.matmul, a, b)


@given(
    batch=st.lists(st.integers(1, MAX_SIDE), max_size=2),
    sizes=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    with_bias=st.booleans(),
    data=st.data(),
)
def test_linear_gradient_reaches_input_weight_and_bias(batch, sizes, with_bias, data):
    n_in, n_out = sizes
    x = data.draw(smooth_arrays((*batch, n_in)))
    weight = data.draw(smooth_arrays((n_out, n_in)))
    bias = data.draw(smooth_arrays((n_out,)))
    expected = x @ weight.T + (bias if with_bias else 0)
    if with_bias:
        assert_close(F.linear(Tensor(x), Tensor(weight), Tensor(bias)).data, expected)
        assert check(F.linear, x, weight, bias)
    else:
        assert_close(F.linear(Tensor(x), Tensor(weight)).data, expected)
        assert check(F.linear, x, weight)


# ---- shapes ----------------------------------------------------------------------


@given(data=st.data())
def test_reshape_gradient_returns_to_input_shape(data):
    shape = data.draw(shapes())
    x, target = data.draw(smooth_arrays(shape)), data.draw(reshape_targets(shape))
    assert Tensor(x).reshape(target).shape == x.reshape(target).shape
    assert check(lambda t: t.reshape(target), x)


@given(case=arrays_with_two_axes())
def test_transpose_swaps_two_axes_like_pytorch(case):
    x, dim0, dim1 = case
    assert_close(Tensor(x).transpose(dim0, dim1).data, np.swapaxes(x, dim0, dim1))
    assert check(lambda t: t.transpose(dim0, dim1), x)
    assert check(lambda t: mg.swapaxes(t, dim0, dim1), x)


@given(data=st.data())
def test_permute_gradient_applies_inverse_permutation(data):
    shape = data.draw(shapes())
    x = data.draw(smooth_arrays(shape))
    dims = data.draw(permutations(len(shape)))
    assert_close(Tensor(x).permute(*dims).data, np.transpose(x, dims))
    assert check(lambda t: t.permute(dims), x)
    assert check(lambda t: t.T, x)


@pytest.mark.parametrize("dims", [(1, 2, 0), (2, 0, -2)])
@given(x=smooth_arrays((2, 3, 4)))
def test_permute_by_a_cycle_of_three_axes_routes_gradient_back(dims, x):
    # a 3-cycle is not its own inverse, unlike every reordering of two axes
    assert_close(Tensor(x).permute(dims).data, np.transpose(x, dims))
    assert check(lambda t: t.permute(dims), x)


@given(data=st.data())
def test_squeeze_gradient_restores_dropped_axes(data):
    shape = data.draw(shapes())
    x = data.draw(smooth_arrays(shape))
    axis = data.draw(squeeze_axes(shape))
    assert Tensor(x).squeeze(axis).shape == np.squeeze(x, axis).shape
    assert check(lambda t: t.squeeze(axis), x)


@given(data=st.data())
def test_unsqueeze_gradient_drops_added_axis(data):
    shape = data.draw(shapes())
    x = data.draw(smooth_arrays(shape))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert Tensor(x).unsqueeze(axis).shape == np.expand_dims(x, axis).shape
    assert check(lambda t: t.unsqueeze(axis), x)


@given(data=st.data())
def test_expand_and_broadcast_to_sum_gradient_over_stretched_axes(data):
    shape = data.draw(shapes())
    target = data.draw(expanded_shapes(shape))
    x = data.draw(smooth_arrays(shape))
    offset = len(target) - len(shape)
    # expand's -1 keeps an axis's size, so write -1 for the axes not stretched
    with_keep = tuple(
        -1 if i >= offset and n == shape[i - offset] else n for i, n in enumerate(target)
    )
    assert Tensor(x).expand(*with_keep).shape == target
    assert check(lambda t: t.expand(*with_keep), x)
    assert check(lambda t: mg.broadcast_to(t, target), x)


@given(data=st.data())
def test_flatten_gradient_between_any_start_and_end_dims(data):
    shape = data.draw(shapes(min_dims=1))
    ndim = len(shape)
    start, end = data.draw(flatten_dims(ndim))
    x = data.draw(smooth_arrays(shape))
    size = math.prod(shape[start % ndim : end % ndim + 1])
    expected = shape[: start % ndim] + (size,) + shape[end % ndim + 1 :]
    assert Tensor(x).flatten(start, end).shape == expected
    assert check(lambda t: t.flatten(start, end), x)


# ---- indexing --------------------------------------------------------------------


@given(data=st.data())
def test_getitem_with_ints_slices_none_and_ellipsis(data):
    shape = data.draw(shapes())
    x = data.draw(smooth_arrays(shape))
    index = data.draw(basic_indices(shape))
    assert_close(Tensor(x)[index].data, x[index])
    assert check(lambda t: t[index], x)


@given(data=st.data())
def test_getitem_with_repeated_integer_array_accumulates(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index = data.draw(repeated_indices(shape[axis]))
    key = (slice(None),) * axis + (index,)
    x = data.draw(smooth_arrays(shape))
    assert_close(Tensor(x)[key].data, x[key])
    assert check(lambda t: t[key], x)

    t = leaf(x)
    t[key].sum().backward()
    counts = np.bincount(index % shape[axis], minlength=shape[axis])
    counts = counts.reshape((-1,) + (1,) * (len(shape) - axis - 1))  # along `axis`
    expected = np.broadcast_to(counts, shape)
    assert_close(t.grad, expected)


@given(data=st.data())
def test_getitem_with_two_integer_arrays_picks_pairs(data):
    shape = data.draw(shapes(min_dims=2))
    rows = data.draw(repeated_indices(shape[0], max_size=3))
    cols = data.draw(index_arrays(shape[1], rows.shape))
    x = data.draw(smooth_arrays(shape))
    assert_close(Tensor(x)[rows, cols].data, x[rows, cols])
    assert check(lambda t: t[rows, cols], x)


@given(data=st.data())
def test_getitem_with_boolean_mask_over_leading_axes(data):
    shape = data.draw(shapes(min_dims=1))
    mask_dims = data.draw(st.integers(1, len(shape)))
    mask = data.draw(masks(shape[:mask_dims]))
    x = data.draw(smooth_arrays(shape))
    assert_close(Tensor(x)[mask].data, x[mask])
    assert check(lambda t: t[mask], x)


@given(data=st.data())
def test_gather_gradient_accumulates_repeated_indices(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index = data.draw(gather_indices(shape, axis))
    x = data.draw(smooth_arrays(shape))
    expected = np.take_along_axis(x, index, axis)
    assert_close(mg.gather(Tensor(x), axis, index).data, expected)
    assert check(lambda t: t.gather(axis, index), x)

    t = leaf(x)
    t.gather(axis, index).sum().backward()
    expected = np.zeros(shape)
    grids = list(np.indices(index.shape))
    grids[axis] = index
    for position in zip(*(g.reshape(-1) for g in grids), strict=True):
        expected[position] += 1
    assert_close(t.grad, expected)


# ---- joining and splitting -------------------------------------------------------


@given(case=cat_cases())
def test_cat_routes_each_slice_of_gradient_to_its_input(case):
    parts, axis = case
    joined = mg.cat([Tensor(p) for p in parts], axis)
    assert_close(joined.data, np.concatenate(parts, axis))
    assert check(lambda *ts: mg.cat(ts, axis), *parts)


@given(data=st.data())
def test_stack_routes_each_slice_of_gradient_to_its_input(data):
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    count = data.draw(st.integers(1, 3))
    parts = [data.draw(smooth_arrays(shape)) for _ in range(count)]
    assert_close(mg.stack([Tensor(p) for p in parts], axis).data, np.stack(parts, axis))
    assert check(lambda *ts: mg.stack(ts, axis), *parts)


@given(data=st.data())
def test_split_pieces_carry_gradient_back_to_their_slices(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(single_axes(len(shape)))
    sections = data.draw(split_sections(shape[axis]))
    x = data.draw(smooth_arrays(shape))
    pieces = mg.split(Tensor(x), sections, axis)
    assert sum(p.shape[axis] for p in pieces) == shape[axis]
    assert_close(mg.cat(pieces, axis).data, x)

    def weighted(t: Tensor) -> Tensor:
        # a different weight per piece, so a gradient sent to the wrong slice shows
        chunks = t.split(sections, axis)
        return mg.cat([chunk * (i + 1) for i, chunk in enumerate(chunks)], axis)

    assert check(weighted, x)


# ---- selection -------------------------------------------------------------------


@given(operand_shapes=broadcastable_shapes(3), data=st.data())
def test_where_sends_gradient_to_the_chosen_branch(operand_shapes, data):
    condition_shape, a_shape, b_shape = operand_shapes
    condition = data.draw(masks(condition_shape))
    a, b = data.draw(smooth_arrays(a_shape)), data.draw(smooth_arrays(b_shape))
    chosen = mg.where(condition, Tensor(a), Tensor(b))
    assert_close(chosen.data, np.where(condition, a, b))
    assert check(lambda x, y: mg.where(condition, x, y), a, b)
    assert check(lambda x: mg.where(condition, x, 0.5), a)


@given(data=st.data())
def test_masked_fill_gives_filled_elements_no_gradient(data):
    shape = data.draw(shapes())
    mask = data.draw(shapes_broadcasting_to(shape).flatmap(masks))
    x = data.draw(smooth_arrays(shape))
    assert_close(Tensor(x).masked_fill(mask, -7.0).data, np.where(mask, -7.0, x))
    assert check(lambda t: t.masked_fill(mask, -7.0), x)

    t = leaf(x)
    t.masked_fill(mask, -7.0).sum().backward()
    assert_close(t.grad, np.broadcast_to(~mask, shape))


# ---- neural-network rules --------------------------------------------------------


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax], ids=lambda op: op.__name__)
@given(case=arrays_with_axis(bound=3.0))
def test_softmax_family_gradient_along_any_axis(op, case):
    x, axis = case
    assert check(lambda t: op(t, axis), x)


@given(case=cross_entropy_cases())
def test_cross_entropy_gradient_with_ignore_index_and_each_reduction(case):
    logits, target, ignore_index, reduction = case
    assert check(lambda t: F.cross_entropy(t, target, ignore_index, reduction), logits)

    t = leaf(logits)
    F.cross_entropy(t, target, ignore_index, reduction).sum().backward()
    ignored = target == ignore_index
    assert_close(t.grad[ignored], 0.0)


@given(
    logits=st.integers(1, 4).flatmap(lambda c: smooth_arrays((c,), bound=3.0)),
    data=st.data(),
)
def test_cross_entropy_of_one_example_gradient(logits, data):
    target = data.draw(st.integers(0, len(logits) - 1))
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    expected = math.log(np.exp(logits).sum()) - logits[target]
    loss = F.cross_entropy(Tensor(logits), target, reduction=reduction)
    assert loss.shape == ()
    assert_close(loss.data, expected)
    assert check(lambda t: F.cross_entropy(t, target, reduction=reduction), logits)


@given(
    arrays=shapes().flatmap(lambda shape: st.tuples(*[smooth_arrays(shape)] * 2)),
    reduction=st.sampled_from(["mean", "sum", "none"]),
)
def test_mse_loss_gradient_reaches_prediction_and_target(arrays, reduction):
    prediction, target = arrays
    squares = (prediction - target) ** 2
    expected = {"mean": np.mean, "sum": np.sum, "none": lambda s: s}[reduction](squares)
    loss = F.mse_loss(Tensor(prediction), Tensor(target), reduction)
    assert_close(loss.data, expected)
    assert check(lambda p, t: F.mse_loss(p, t, reduction), prediction, target)


@given(
    x=shapes().flatmap(nonzero_arrays),
    p=st.sampled_from([0.1, 0.5, 0.9]),
    seed=st.integers(0, 2**32 - 1),
)
def test_dropout_gradient_is_the_mask_times_the_scale(x, p, seed):
    def fixed_mask_dropout(t: Tensor) -> Tensor:
        mg.manual_seed(seed)  # the same mask on every forward pass
        return F.dropout(t, p)

    t = leaf(x)
    out = fixed_mask_dropout(t)
    upstream = np.random.default_rng(1).standard_normal(x.shape)
    out.backward(upstream)
    kept = out.data != 0  # x has no zeros, so a zero output was dropped
    assert_close(out.data, np.where(kept, x / (1 - p), 0.0))
    assert_close(t.grad, upstream * kept / (1 - p))
    assert check(fixed_mask_dropout, x)


@given(x=shapes().flatmap(smooth_arrays))
def test_dropout_outside_training_passes_gradient_unchanged(x):
    t = leaf(x)
    F.dropout(t, 0.5, training=False).sum().backward()
    assert_close(t.grad, np.ones_like(x))


def test_dropout_with_p_one_zeroes_value_and_gradient():
    t = leaf([1.0, -2.0, 3.0])
    out = F.dropout(t, 1.0)
    out.sum().backward()
    assert_close(out.data, [0.0, 0.0, 0.0])
    assert_close(t.grad, [0.0, 0.0, 0.0])


@given(case=layer_norm_cases())
def test_layer_norm_gradient_with_and_without_weight_and_bias(case):
    x, normalized_shape, params = case
    assert check(lambda t, *wb: F.layer_norm(t, normalized_shape, *wb), x, *params)


@given(
    table=st.tuples(st.integers(1, 4), st.integers(1, 3)).flatmap(smooth_arrays),
    data=st.data(),
)
def test_embedding_gradient_accumulates_repeated_indices(table, data):
    n_rows = table.shape[0]
    indices = data.draw(repeated_indices(n_rows, negative=False))
    indices = indices.reshape(data.draw(st.sampled_from([(-1,), (1, -1), (-1, 1)])))
    assert_close(F.embedding(indices, Tensor(table)).data, table[indices])
    assert check(lambda w: F.embedding(indices, w), table)

    weight = leaf(table)
    F.embedding(indices, weight).sum().backward()
    counts = np.bincount(indices.reshape(-1), minlength=n_rows)
    assert_close(weight.grad, np.broadcast_to(counts[:, None], table.shape))


# ---- fused rules against their composites ----------------------------------------


def assert_same_value_and_gradient(
    fused: Callable[..., Tensor], composite: Callable[..., Tensor], arrays: list[np.ndarray]
) -> None:
    fused_value, fused_grads = gradients(fused, arrays)
    composite_value, composite_grads = gradients(composite, arrays)
    assert_close(fused_value, composite_value)
    for fused_grad, composite_grad in zip(fused_grads, composite_grads, strict=True):
        assert_close(fused_grad, composite_grad, rtol=1e-9)


def composite_log_sum_exp(x: Tensor, axis: Any, keepdims: bool) -> Tensor:
    return x.exp().sum(axis, keepdims).log()


def composite_softmax(x: Tensor, axis: int) -> Tensor:
    e = x.exp()
    return e / e.sum(axis, keepdims=True)


def composite_log_softmax(x: Tensor, axis: int) -> Tensor:
    return x - composite_log_sum_exp(x, axis, keepdims=True)


def composite_cross_entropy(
    logits: Tensor, target: np.ndarray, ignore_index: int, reduction: str
) -> Tensor:
    valid = target != ignore_index
    one_hot = np.zeros(logits.shape)
    one_hot[np.arange(len(target))[valid], target[valid]] = 1.0
    losses = -(composite_log_softmax(logits, 1) * Tensor(one_hot)).sum(1)  # (N,)
    if reduction == "none":
        return losses
    return losses.sum() / (valid.sum() if reduction == "mean" else 1)


def composite_layer_norm(
    x: Tensor, normalized_shape: tuple[int, ...], *params: Tensor, eps: float = 1e-5
) -> Tensor:
    axes = tuple(range(-len(normalized_shape), 0))
    centered = x - x.mean(axes, keepdims=True)
    variance = (centered * centered).mean(axes, keepdims=True)
    out = centered / (variance + eps).sqrt()
    if params:
        out = out * params[0]
    if len(params) > 1:
        out = out + params[1]
    return out


@given(case=reductions())
def test_fused_logsumexp_matches_composite(case):
    x, axis, keepdims = case
    assert_same_value_and_gradient(
        lambda t: t.logsumexp(axis, keepdims),
        lambda t: composite_log_sum_exp(t, axis, keepdims),
        [x],
    )


@given(case=arrays_with_axis(bound=3.0))
def test_fused_softmax_matches_composite(case):
    x, axis = case
    assert_same_value_and_gradient(
        lambda t: F.softmax(t, axis), lambda t: composite_softmax(t, axis), [x]
    )


@given(case=arrays_with_axis(bound=3.0))
def test_fused_log_softmax_matches_composite(case):
    x, axis = case
    assert_same_value_and_gradient(
        lambda t: F.log_softmax(t, axis), lambda t: composite_log_softmax(t, axis), [x]
    )


@given(case=cross_entropy_cases())
def test_fused_cross_entropy_matches_composite(case):
    logits, target, ignore_index, reduction = case
    assert_same_value_and_gradient(
        lambda t: F.cross_entropy(t, target, ignore_index, reduction),
        lambda t: composite_cross_entropy(t, target, ignore_index, reduction),
        [logits],
    )


@given(case=layer_norm_cases())
def test_fused_layer_norm_matches_composite(case):
    x, normalized_shape, params = case
    assert_same_value_and_gradient(
        lambda t, *wb: F.layer_norm(t, normalized_shape, *wb),
        lambda t, *wb: composite_layer_norm(t, normalized_shape, *wb),
        [x, *params],
    )

"""Second and higher derivatives: create_graph, minigrad.grad, Function and the graph.

Every op's differentiable backward rule (`graph_backward`) is checked three ways by
`assert_second_order`: its first derivatives equal the plain rule's; differentiated
with respect to the upstream gradient they give the Jacobian-vector product; and
differentiated with respect to the inputs they give Hessian-vector products that
`minigrad.gradgradcheck` compares with central differences.

Piecewise-linear ops (relu, abs, maximum, clip, where, max, ...) have zero second
derivative almost everywhere, so each is composed with a nonlinear op, as in
relu(x) * x: the check then fails if the rule routes the gradient wrongly or is not
differentiable in its upstream gradient. Inputs stay clear of every kink, as in
test_ops_gradients.py.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from strategies import (
    SPACING,
    arrays_with_axis,
    arrays_with_two_axes,
    basic_indices,
    broadcastable_shapes,
    cat_cases,
    cross_entropy_cases,
    distinct_arrays,
    embedding_cases,
    expanded_shapes,
    gather_indices,
    grid_floats,
    layer_norm_cases,
    linear_cases,
    masks,
    matmul_shapes,
    nonzero_arrays,
    nonzero_floats,
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
from minigrad import Tensor, gradcheck, gradgradcheck, nn, optim
from minigrad.nn import functional as F
from minigrad.ops.recurrent import simple_rnn

README = Path(__file__).resolve().parent.parent / "README.md"


def assert_close(actual: Any, expected: Any, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    """Equal up to float64 rounding, for values computed two exact ways."""
    assert_allclose(actual, expected, rtol=rtol, atol=atol)


def leaf(array: Any) -> Tensor:
    """A float64 leaf that requires a gradient, on a private copy of `array`."""
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def assert_second_order(fn: Callable[..., Tensor], *arrays: np.ndarray) -> None:
    """Check the differentiable backward rules of every op in `fn` (see the module doc)."""
    inputs = [leaf(a) for a in arrays]
    out = fn(*inputs)
    rng = np.random.default_rng(0)
    upstream = Tensor(rng.standard_normal(out.shape), requires_grad=True)
    directions = [rng.standard_normal(a.shape) for a in arrays]

    # With create_graph the gradients keep their values.
    plain = mg.grad(fn(*inputs), inputs, upstream.data, allow_unused=True)
    graphed = mg.grad(out, inputs, upstream, create_graph=True, allow_unused=True)
    for plain_grad, graphed_grad in zip(plain, graphed, strict=True):
        assert (plain_grad is None) == (graphed_grad is None)
        if plain_grad is not None:
            assert_close(graphed_grad.data, plain_grad.data)

    # The vector-Jacobian product J^T v is linear in v with gradient J u:
    # differentiating it by v is forward mode, checked against central differences.
    projected = Tensor(np.zeros(()))
    for g, u in zip(graphed, directions, strict=True):
        if g is not None:
            projected = projected + (g * u).sum()
    (jvp,) = mg.grad(projected, upstream)
    step = 1e-6
    with mg.no_grad():
        plus = fn(*(Tensor(a + step * u) for a, u in zip(arrays, directions, strict=True)))
        minus = fn(*(Tensor(a - step * u) for a, u in zip(arrays, directions, strict=True)))
    assert_close(jvp.data, (plus.data - minus.data) / (2 * step), rtol=1e-5, atol=1e-6)

    # Hessian-vector products against central differences of the gradient.
    assert gradgradcheck(fn, [leaf(a) for a in arrays])


# ---- elementwise -----------------------------------------------------------------

# name: (op composed so its second derivative is not trivially zero, input values)
UNARY_OPS: dict[str, tuple[Callable[[Tensor], Tensor], Any]] = {
    "neg": (lambda x: (-x) ** 3, smooth_arrays),
    "exp": (mg.exp, smooth_arrays),
    "log": (mg.log, positive_arrays),
    "sqrt": (mg.sqrt, positive_arrays),
    "tanh": (mg.tanh, smooth_arrays),
    "sigmoid": (mg.sigmoid, smooth_arrays),
    "relu": (lambda x: mg.relu(x) * x, nonzero_arrays),
    "abs": (lambda x: mg.abs(x) * x, nonzero_arrays),
    "gelu_exact": (lambda x: mg.gelu(x, approximate="none"), smooth_arrays),
    "gelu_tanh": (lambda x: mg.gelu(x, approximate="tanh"), smooth_arrays),
}


@pytest.mark.parametrize("name", list(UNARY_OPS))
@given(data=st.data())
def test_unary_op_second_derivative_matches_finite_differences(name, data):
    op, arrays = UNARY_OPS[name]
    assert_second_order(op, data.draw(shapes().flatmap(arrays)))


BINARY_OPS: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Any, Any]] = {
    "add": (lambda a, b: (a + b) ** 3, smooth_arrays, smooth_arrays),
    "sub": (lambda a, b: (a - b) ** 3, smooth_arrays, smooth_arrays),
    "mul": (lambda a, b: a * b * a, smooth_arrays, smooth_arrays),
    "div": (lambda a, b: a / b, smooth_arrays, lambda shape: nonzero_arrays(shape, 0.5)),
    "pow": (lambda a, b: a**b, lambda shape: positive_arrays(shape, 0.5, 2.0), smooth_arrays),
    "maximum": (
        lambda a, b: mg.maximum(a, b) * a * b,
        lambda shape: separated_arrays(shape, 0.0),
        lambda shape: separated_arrays(shape, SPACING / 2),
    ),
    "minimum": (
        lambda a, b: mg.minimum(a, b) * a * b,
        lambda shape: separated_arrays(shape, 0.0),
        lambda shape: separated_arrays(shape, SPACING / 2),
    ),
}


@pytest.mark.parametrize("name", list(BINARY_OPS))
@given(operand_shapes=broadcastable_shapes(2), data=st.data())
def test_binary_op_second_derivative_reaches_both_broadcast_operands(name, operand_shapes, data):
    op, left, right = BINARY_OPS[name]
    a, b = data.draw(left(operand_shapes[0])), data.draw(right(operand_shapes[1]))
    assert_second_order(op, a, b)


SCALAR_OPERAND_OPS: dict[str, tuple[Callable[[Tensor, float], Tensor], Any]] = {
    "scalar_minus_tensor": (lambda x, c: (c - x) ** 3, smooth_arrays),
    "scalar_times_tensor": (lambda x, c: (c * x) ** 3, smooth_arrays),
    "tensor_over_scalar": (lambda x, c: (x / c) ** 3, smooth_arrays),
    "scalar_over_tensor": (lambda x, c: c / x, lambda shape: nonzero_arrays(shape, 0.5)),
    "tensor_to_scalar_power": (lambda x, c: x**c, positive_arrays),
    "scalar_to_tensor_power": (lambda x, c: (abs(c) + 0.5) ** x, smooth_arrays),
}


@pytest.mark.parametrize("name", list(SCALAR_OPERAND_OPS))
@given(scalar=nonzero_floats(), data=st.data())
def test_op_with_python_scalar_operand_second_derivative(name, scalar, data):
    op, arrays = SCALAR_OPERAND_OPS[name]
    assert_second_order(lambda t: op(t, scalar), data.draw(shapes().flatmap(arrays)))


@given(
    x=shapes().flatmap(lambda shape: nonzero_arrays(shape, margin=0.3)),
    exponent=st.integers(-2, 3),
)
def test_integer_power_of_negative_base_second_derivative(x, exponent):
    assert_second_order(lambda t: t**exponent, x)


@given(
    x=shapes().flatmap(lambda shape: separated_arrays(shape, SPACING / 2)),
    bounds=st.tuples(grid_floats(0.0, steps=6), grid_floats(0.0, steps=6)).map(sorted),
    which=st.sampled_from(["both", "min", "max"]),
)
def test_clip_second_derivative_inside_and_outside_bounds(x, bounds, which):
    low = bounds[0] if which != "max" else None
    high = bounds[1] if which != "min" else None
    assert_second_order(lambda t: t.clip(low, high) * t, x)


# ---- matrix products -------------------------------------------------------------

MATMUL_LAYOUTS = {
    "vector_vector": ((3,), (3,)),
    "vector_batch": ((3,), (2, 3, 2)),
    "batch_vector": ((2, 2, 3), (3,)),
    "matrix_batch": ((2, 3), (2, 3, 2)),
    "broadcast_batches": ((2, 1, 2, 3), (3, 3, 2)),
}


@given(data=st.data())
def test_matmul_second_derivative_for_drawn_operand_shapes(data):
    shape_a, shape_b = data.draw(matmul_shapes())
    a, b = data.draw(smooth_arrays(shape_a)), data.draw(smooth_arrays(shape_b))
    assert_second_order(lambda x, y: (x @ y).tanh(), a, b)


@pytest.mark.parametrize("layout", list(MATMUL_LAYOUTS))
@given(data=st.data())
def test_matmul_second_derivative_for_vectors_and_broadcast_batches(layout, data):
    shape_a, shape_b = MATMUL_LAYOUTS[layout]
    a, b = data.draw(smooth_arrays(shape_a)), data.draw(smooth_arrays(shape_b))
    assert_second_order(lambda x, y: (x @ y).tanh(), a, b)


@given(case=linear_cases())
def test_linear_second_derivative_reaches_input_weight_and_bias(case):
    x, weight, bias = case
    if bias is None:
        assert_second_order(lambda t, w: F.linear(t, w).tanh(), x, weight)
    else:
        assert_second_order(lambda t, w, b: F.linear(t, w, b).tanh(), x, weight, bias)


# ---- reductions ------------------------------------------------------------------

REDUCTIONS: dict[str, tuple[Callable[..., Tensor], Any]] = {
    "sum": (mg.sum, smooth_arrays),
    "mean": (mg.mean, smooth_arrays),
    "max": (mg.max, distinct_arrays),
    "min": (mg.min, distinct_arrays),
    "logsumexp": (mg.logsumexp, smooth_arrays),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_second_derivative_over_any_axis(name, data):
    op, arrays = REDUCTIONS[name]
    x, axis, keepdims = data.draw(reductions(arrays))
    # x^3 + x has slope >= 1, so distinct entries stay distinct: max and min have no ties.
    assert_second_order(lambda t: op(t**3 + t, axis, keepdims) ** 2, x)


@given(case=reductions(), correction=st.sampled_from([0, 1]))
def test_var_second_derivative_with_correction_zero_and_one(case, correction):
    x, axis, keepdims = case
    count = x.size // np.sum(x, axis=axis, keepdims=True).size  # elements per result
    assume(count > correction)
    assert_second_order(lambda t: t.tanh().var(axis, keepdims, correction), x)


# ---- shapes and indexing ---------------------------------------------------------


@given(data=st.data())
def test_reshape_second_derivative(data):
    shape = data.draw(shapes())
    x, target = data.draw(smooth_arrays(shape)), data.draw(reshape_targets(shape))
    assert_second_order(lambda t: t.reshape(target) ** 3, x)


@given(case=arrays_with_two_axes())
def test_transpose_second_derivative(case):
    x, dim0, dim1 = case
    assert_second_order(lambda t: t.transpose(dim0, dim1) ** 3, x)


@given(data=st.data())
def test_permute_second_derivative(data):
    shape = data.draw(shapes())
    x, dims = data.draw(smooth_arrays(shape)), data.draw(permutations(len(shape)))
    assert_second_order(lambda t: t.permute(dims) ** 3, x)


@given(data=st.data())
def test_squeeze_and_unsqueeze_second_derivative(data):
    shape = data.draw(shapes())
    x = data.draw(smooth_arrays(shape))
    axis = data.draw(squeeze_axes(shape))
    new_axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert_second_order(lambda t: t.squeeze(axis) ** 3, x)
    assert_second_order(lambda t: t.unsqueeze(new_axis) ** 3, x)


@given(data=st.data())
def test_broadcast_to_and_expand_second_derivative_sums_stretched_axes(data):
    shape = data.draw(shapes())
    target = data.draw(expanded_shapes(shape))
    x = data.draw(smooth_arrays(shape))
    assert_second_order(lambda t: mg.broadcast_to(t, target) ** 3, x)
    assert_second_order(lambda t: t.expand(*target) ** 3, x)


@given(data=st.data())
def test_getitem_with_basic_index_second_derivative(data):
    shape = data.draw(shapes())
    x, index = data.draw(smooth_arrays(shape)), data.draw(basic_indices(shape))
    assert_second_order(lambda t: t[index] ** 3, x)


@given(data=st.data())
def test_getitem_with_repeated_integer_index_second_derivative(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(0, len(shape) - 1))
    key = (slice(None),) * axis + (data.draw(repeated_indices(shape[axis])),)
    x = data.draw(smooth_arrays(shape))
    # the second derivative of sum(x[i]^3) counts each repeat of i
    assert_second_order(lambda t: t[key] ** 3, x)


@given(data=st.data())
def test_getitem_with_boolean_mask_second_derivative(data):
    shape = data.draw(shapes(min_dims=1))
    mask = data.draw(masks(shape[: data.draw(st.integers(1, len(shape)))]))
    x = data.draw(smooth_arrays(shape))
    assert_second_order(lambda t: t[mask] ** 3, x)


@given(data=st.data())
def test_gather_second_derivative_with_repeated_indices(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index = data.draw(gather_indices(shape, axis))
    x = data.draw(smooth_arrays(shape))
    assert_second_order(lambda t: t.gather(axis, index) ** 3, x)


@given(case=cat_cases())
def test_cat_second_derivative(case):
    parts, axis = case
    assert_second_order(lambda *ts: mg.cat(ts, axis) ** 3, *parts)


@given(data=st.data())
def test_stack_second_derivative(data):
    shape = data.draw(shapes())
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [data.draw(smooth_arrays(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    assert_second_order(lambda *ts: mg.stack(ts, axis) ** 3, *parts)


@given(data=st.data())
def test_split_second_derivative(data):
    shape = data.draw(shapes(min_dims=1))
    axis = data.draw(single_axes(len(shape)))
    sections = data.draw(split_sections(shape[axis]))
    x = data.draw(smooth_arrays(shape))

    def weighted(t: Tensor) -> Tensor:
        chunks = t.split(sections, axis)
        return mg.cat([chunk ** (i + 2) for i, chunk in enumerate(chunks)], axis)

    assert_second_order(weighted, x)


@given(operand_shapes=broadcastable_shapes(3), data=st.data())
def test_where_second_derivative_reaches_the_chosen_branch(operand_shapes, data):
    condition_shape, a_shape, b_shape = operand_shapes
    condition = data.draw(masks(condition_shape))
    a, b = data.draw(smooth_arrays(a_shape)), data.draw(smooth_arrays(b_shape))
    assert_second_order(lambda x, y: mg.where(condition, x, y) * x * y, a, b)


@given(data=st.data())
def test_masked_fill_second_derivative(data):
    shape = data.draw(shapes())
    mask = data.draw(shapes_broadcasting_to(shape).flatmap(masks))
    x = data.draw(smooth_arrays(shape))
    assert_second_order(lambda t: t.masked_fill(mask, -7.0) * t, x)


# ---- neural-network rules --------------------------------------------------------


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax], ids=lambda op: op.__name__)
@given(case=arrays_with_axis(bound=3.0))
def test_softmax_family_second_derivative_along_any_axis(op, case):
    x, axis = case
    assert_second_order(lambda t: op(t, axis), x)


@given(case=cross_entropy_cases())
def test_cross_entropy_second_derivative_with_ignore_index_and_each_reduction(case):
    logits, target, ignore_index, reduction = case
    assert_second_order(lambda t: F.cross_entropy(t, target, ignore_index, reduction), logits)


@given(
    logits=st.integers(1, 4).flatmap(lambda c: smooth_arrays((c,), bound=3.0)),
    data=st.data(),
)
def test_cross_entropy_of_one_example_second_derivative(logits, data):
    target = data.draw(st.integers(0, len(logits) - 1))
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    assert_second_order(lambda t: F.cross_entropy(t, target, reduction=reduction), logits)


@given(
    arrays=shapes().flatmap(lambda shape: st.tuples(*[smooth_arrays(shape)] * 2)),
    reduction=st.sampled_from(["mean", "sum", "none"]),
)
def test_mse_loss_second_derivative_reaches_prediction_and_target(arrays, reduction):
    prediction, target = arrays
    assert_second_order(lambda p, t: F.mse_loss(p.tanh(), t, reduction), prediction, target)


@given(case=layer_norm_cases())
def test_layer_norm_second_derivative_with_and_without_weight_and_bias(case):
    x, normalized_shape, params = case
    assert_second_order(lambda t, *wb: F.layer_norm(t, normalized_shape, *wb), x, *params)


@given(case=embedding_cases())
def test_embedding_second_derivative_accumulates_repeated_rows(case):
    table, indices = case
    assert_second_order(lambda w: F.embedding(indices, w) ** 3, table)


@given(
    x=shapes().flatmap(nonzero_arrays),
    p=st.sampled_from([0.1, 0.5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_dropout_second_derivative_with_a_fixed_mask(x, p, seed):
    def fixed_mask_dropout(t: Tensor) -> Tensor:
        mg.manual_seed(seed)  # the same mask on every forward pass
        return F.dropout(t, p) ** 3

    assert_second_order(fixed_mask_dropout, x)


# ---- closed forms ----------------------------------------------------------------


def test_hessian_of_quadratic_form_is_symmetric_part_of_matrix():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))  # not symmetric
    x = leaf(rng.standard_normal(4))
    (gradient,) = mg.grad(0.5 * (x @ (Tensor(a) @ x)), x, create_graph=True)
    rows = [mg.grad(gradient[i], x, retain_graph=True)[0].data for i in range(4)]
    assert_close(np.stack(rows), (a + a.T) / 2)


def test_hessian_vector_product_of_mlp_matches_finite_differences_of_gradient():
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    params = [leaf(rng.standard_normal(shape)) for shape in [(4, 3), (4,), (2, 4), (2,)]]
    directions = [rng.standard_normal(p.shape) for p in params]

    def loss(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        hidden = F.linear(Tensor(x), w1, b1).tanh()
        return F.cross_entropy(F.linear(hidden, w2, b2), target)

    grads = mg.grad(loss(*params), params, create_graph=True)
    projected = sum((g * u).sum() for g, u in zip(grads, directions, strict=True))
    hvp = mg.grad(projected, params)

    step = 1e-5

    def gradient_at(sign: float) -> list[np.ndarray]:
        moved = [leaf(p.data + sign * step * u) for p, u in zip(params, directions, strict=True)]
        return [g.data for g in mg.grad(loss(*moved), moved)]

    for product, plus, minus in zip(hvp, gradient_at(1.0), gradient_at(-1.0), strict=True):
        assert_close(product.data, (plus - minus) / (2 * step), rtol=1e-6, atol=1e-8)


def sigmoid_second_derivative(x: np.ndarray) -> np.ndarray:
    s = 1 / (1 + np.exp(-x))
    return s * (1 - s) * (1 - 2 * s)


def gelu_second_derivative(x: np.ndarray) -> np.ndarray:
    # gelu = x Phi(x), so gelu'' = 2 phi(x) + x phi'(x) = phi(x) (2 - x^2)
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) * (2 - x * x)


POINTS = np.array([-2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 3.0])
POSITIVE_POINTS = np.array([0.1, 0.5, 1.0, 2.0, 7.0])

SECOND_DERIVATIVES: dict[str, tuple[Callable[[Tensor], Tensor], Any, np.ndarray]] = {
    "tanh": (mg.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), POINTS),
    "sigmoid": (mg.sigmoid, sigmoid_second_derivative, POINTS),
    "exp": (mg.exp, np.exp, POINTS),
    "log": (mg.log, lambda x: -1 / x**2, POSITIVE_POINTS),
    "gelu": (mg.gelu, gelu_second_derivative, POINTS),
}


@pytest.mark.parametrize("name", list(SECOND_DERIVATIVES))
def test_second_derivative_equals_closed_form(name):
    op, expected, points = SECOND_DERIVATIVES[name]
    x = leaf(points)
    (first,) = mg.grad(op(x).sum(), x, create_graph=True)
    (second,) = mg.grad(first.sum(), x)  # the Hessian is diagonal: its row sums
    assert_close(second.data, expected(points))


def test_derivatives_of_cube_are_three_x_squared_six_x_and_six():
    x = leaf([-2.0, 0.5, 3.0])
    (first,) = mg.grad((x**3).sum(), x, create_graph=True)
    (second,) = mg.grad(first.sum(), x, create_graph=True)
    (third,) = mg.grad(second.sum(), x)
    assert_close(first.data, [12.0, 0.75, 27.0])
    assert_close(second.data, [-12.0, 3.0, 18.0])
    assert_close(third.data, [6.0, 6.0, 6.0])


def test_third_derivative_of_gelu_equals_closed_form():
    x = leaf(POINTS)
    (first,) = mg.grad(mg.gelu(x).sum(), x, create_graph=True)
    (second,) = mg.grad(first.sum(), x, create_graph=True)
    (third,) = mg.grad(second.sum(), x)
    # differentiating phi(x) (2 - x^2) once more gives phi(x) (x^3 - 4 x)
    pdf = np.exp(-0.5 * POINTS**2) / math.sqrt(2 * math.pi)
    assert_close(third.data, pdf * (POINTS**3 - 4 * POINTS))


# Second-order rules that build nodes (erf, scatter_add, ...) whose own rules only a
# third derivative reaches.
THIRD_ORDER_CASES: dict[str, tuple[Callable[..., Tensor], list[tuple[int, ...]]]] = {
    "gelu_exact": (mg.gelu, [(2, 3)]),
    "getitem_repeated": (lambda x: x[np.array([0, 2, 0])] ** 4, [(3, 2)]),
    "gather": (lambda x: x.gather(1, np.array([[0, 0], [1, 0]])) ** 4, [(2, 2)]),
    "embedding": (lambda w: F.embedding(np.array([[1, 1], [0, 1]]), w) ** 4, [(2, 3)]),
    "cat": (lambda a, b: mg.cat([a, b], 1) ** 4, [(2, 1), (2, 2)]),
    "softmax": (lambda x: F.softmax(x, 0), [(3, 2)]),
    "layer_norm": (lambda x, w: F.layer_norm(x, (3,), w), [(2, 3), (3,)]),
    "matmul": (lambda a, b: (a @ b).tanh(), [(3,), (2, 3, 2)]),
}


@pytest.mark.parametrize("name", list(THIRD_ORDER_CASES))
def test_third_derivative_matches_finite_differences(name):
    fn, input_shapes = THIRD_ORDER_CASES[name]
    rng = np.random.default_rng(6)
    inputs = [leaf(rng.standard_normal(shape)) for shape in input_shapes]
    upstream = rng.standard_normal(fn(*inputs).shape)
    directions = [rng.standard_normal(shape) for shape in input_shapes]

    def gradient_penalty(*args: Tensor) -> Tensor:
        grads = mg.grad((fn(*args) * upstream).sum(), args, create_graph=True)
        return sum((g * g * u).sum() for g, u in zip(grads, directions, strict=True))

    # The penalty's second derivatives hold fn's third; squaring the gradient makes
    # the upstream gradients of the second-order nodes depend on the inputs too.
    assert gradgradcheck(gradient_penalty, inputs)


# ---- a gradient penalty trains ---------------------------------------------------


def penalised_model() -> tuple[nn.Module, Tensor, Tensor]:
    """A float64 Linear + tanh model and random regression data."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    rng = np.random.default_rng(2)
    x = leaf(rng.standard_normal((16, 3)))
    y = Tensor(np.sin(x.data @ np.array([[1.0], [-2.0], [0.5]])))
    return model, x, y


def input_gradient_penalty(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(loss, ||d loss / d x||^2), the penalty differentiable in the weights."""
    loss = F.mse_loss(model(x), y, reduction="sum")
    (input_grad,) = mg.grad(loss, x, create_graph=True)
    return loss, (input_grad * input_grad).sum()


def test_gradient_penalty_gradient_matches_finite_differences():
    model, x, y = penalised_model()
    params = list(model.parameters())
    analytic = mg.grad(input_gradient_penalty(model, x, y)[1], params)

    step = 1e-6
    for p, grad in zip(params, analytic, strict=True):
        numeric = np.zeros(p.shape)
        for position in np.ndindex(p.shape):
            original = p.data[position]
            p.data[position] = original + step
            plus = input_gradient_penalty(model, x, y)[1].item()
            p.data[position] = original - step
            minus = input_gradient_penalty(model, x, y)[1].item()
            p.data[position] = original
            numeric[position] = (plus - minus) / (2 * step)
        assert_close(grad.data, numeric, rtol=1e-6, atol=1e-7)


def train_with_gradient_penalty(penalty_weight: float, steps: int = 50) -> list[float]:
    """Minimise loss + penalty_weight * penalty with Adam; the penalty at every step."""
    model, x, y = penalised_model()
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    penalties = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss, penalty = input_gradient_penalty(model, x, y)
        (loss + penalty_weight * penalty).backward()
        optimizer.step()
        penalties.append(penalty.item())
    return penalties


def test_training_with_gradient_penalty_shrinks_the_penalty():
    penalised, unpenalised = train_with_gradient_penalty(10.0), train_with_gradient_penalty(0.0)
    assert penalised[0] == unpenalised[0]  # the same start
    # fitting alone also shrinks this input gradient, but far less
    assert penalised[-1] < 0.1 * penalised[0]
    assert penalised[-1] < 0.1 * unpenalised[-1]


# ---- create_graph semantics ------------------------------------------------------


def test_backward_with_create_graph_leaves_differentiable_tensor_grad():
    x = leaf([1.0, -2.0])
    (x**3).sum().backward(create_graph=True)
    first = x.grad
    assert isinstance(first, Tensor) and first.requires_grad
    assert_close(first.data, [3.0, 12.0])

    x.grad = None
    first.sum().backward()
    assert_close(x.grad, [6.0, -12.0])


def test_backward_without_create_graph_leaves_ndarray_grad():
    x = leaf([1.0, -2.0])
    (x**3).sum().backward()
    assert type(x.grad) is np.ndarray
    assert_close(x.grad, [3.0, 12.0])


def test_create_graph_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, -2.0])
    y = (x**3).sum()
    y.backward(create_graph=True)
    y.backward(create_graph=True)  # create_graph retains the graph by default
    assert isinstance(x.grad, Tensor)
    assert_close(x.grad.data, [6.0, 24.0])
    (second,) = mg.grad(x.grad.sum(), x)
    assert_close(second.data, [12.0, -24.0])


def test_grad_returns_gradients_and_leaves_dot_grad_untouched():
    x, unused = leaf([1.0, 2.0]), leaf([5.0])
    earlier = np.array([10.0, 20.0])
    x.grad = earlier
    (gradient,) = mg.grad((x * x).sum(), x)
    assert isinstance(gradient, Tensor)
    assert_close(gradient.data, [2.0, 4.0])
    assert x.grad is earlier
    assert_close(x.grad, [10.0, 20.0])
    assert unused.grad is None


def test_grad_of_unused_input_is_none_with_allow_unused_else_runtime_error():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    grads = mg.grad((x * x).sum(), [x, unused], allow_unused=True)
    assert grads[1] is None
    assert_close(grads[0].data, [2.0, 4.0])
    with pytest.raises(RuntimeError, match=r"inputs\[1\] is not used"):
        mg.grad((x * x).sum(), [x, unused])


def test_grad_of_several_outputs_is_the_sum_of_their_gradients():
    x = leaf([1.0, 2.0])
    h = x.exp()  # shared by both outputs
    first, second = h.sum(), (h * x).sum()
    (together,) = mg.grad([first, second], x)
    assert_close(together.data, np.exp([1.0, 2.0]) * (1 + np.array([2.0, 3.0])))


def test_grad_outputs_weight_each_output():
    x = leaf([1.0, 2.0, 3.0])
    (weighted,) = mg.grad(x * x, x, grad_outputs=np.array([1.0, 0.0, -1.0]))
    assert_close(weighted.data, [2.0, 0.0, -6.0])

    y, z = x * x, x.sum()
    grads = mg.grad([y, z], x, grad_outputs=[Tensor(np.ones(3)), Tensor(np.array(2.0))])
    assert_close(grads[0].data, [4.0, 6.0, 8.0])
    with pytest.raises(ValueError, match="1 grad_outputs for 2 outputs"):
        mg.grad([x * x, x.sum()], x, grad_outputs=[Tensor(np.ones(3))])


def test_grad_of_an_intermediate_tensor():
    x = leaf([1.0, 2.0])
    h = x * 3
    (gradient,) = mg.grad((h * h).sum(), h)
    assert_close(gradient.data, [6.0, 12.0])


def test_grad_frees_the_graph_unless_create_graph_or_retain_graph():
    x = leaf([0.5, -1.0])
    y = (x**3).sum()
    mg.grad(y, x)
    with pytest.raises(RuntimeError, match="already freed"):
        mg.grad(y, x)

    y = (x**3).sum()
    mg.grad(y, x, retain_graph=True)
    assert_close(mg.grad(y, x)[0].data, [0.75, 3.0])

    y = (x**3).sum()
    mg.grad(y, x, create_graph=True)  # retain_graph defaults to create_graph
    assert_close(mg.grad(y, x)[0].data, [0.75, 3.0])

    y = (x**3).sum()
    mg.grad(y, x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="already freed"):
        mg.grad(y, x)


def test_hessian_rows_need_retain_graph_on_the_gradient():
    x = leaf([1.0, 2.0])
    (gradient,) = mg.grad((x**3).sum(), x, create_graph=True)
    assert_close(mg.grad(gradient[0], x)[0].data, [6.0, 0.0])
    with pytest.raises(RuntimeError, match="already freed"):
        mg.grad(gradient[1], x)


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def rnn(x: Tensor, kernel: Tensor, recurrent_kernel: Tensor) -> Tensor:
    h0 = Tensor(np.zeros((2, 2)))
    return simple_rnn(x, h0, kernel, recurrent_kernel, Tensor(np.zeros(2)))


@pytest.mark.parametrize(
    ("op", "input_shapes", "name"),
    [
        (attention, [(2, 3, 4), (2, 3, 4), (2, 3, 4)], "attention"),
        (rnn, [(2, 3, 2), (2, 2), (2, 2)], "simple_rnn"),
    ],
    ids=["scaled_dot_product_attention", "simple_rnn"],
)
def test_create_graph_through_op_without_differentiable_rule_raises_naming_it(
    op, input_shapes, name
):
    rng = np.random.default_rng(0)
    inputs = [leaf(rng.standard_normal(shape)) for shape in input_shapes]
    out = op(*inputs).sum()
    with pytest.raises(NotImplementedError, match=f"'{name}'"):
        out.backward(create_graph=True)
    out = op(*inputs).sum()
    with pytest.raises(NotImplementedError, match=f"'{name}'"):
        mg.grad(out, inputs, create_graph=True)
    out = op(*inputs).sum()
    out.backward()  # first order still works
    assert all(x.grad.shape == x.shape for x in inputs)


def test_adam_step_after_create_graph_backward_matches_plain_backward():
    rng = np.random.default_rng(3)
    start, x = rng.standard_normal((2, 3)), Tensor(rng.standard_normal((4, 3)))
    results = []
    for create_graph in (False, True):
        weight = leaf(start)
        optimizer = optim.Adam([weight], lr=0.1)
        for _ in range(3):
            optimizer.zero_grad()
            (x @ weight.T).tanh().sum().backward(create_graph=create_graph)
            assert isinstance(weight.grad, Tensor) == create_graph
            optimizer.step()
        results.append(weight.data.copy())
    assert not np.allclose(results[0], start)
    assert_close(results[1], results[0])


def test_clip_grad_norm_accepts_tensor_gradients():
    weight = leaf([3.0, 4.0])
    (weight * weight).sum().backward(create_graph=True)  # grad 2w = (6, 8), norm 10
    norm = optim.clip_grad_norm_([weight], max_norm=5.0)
    assert norm == pytest.approx(10.0)
    assert isinstance(weight.grad, Tensor)
    assert_close(weight.grad.data, [3.0, 4.0], rtol=1e-6)


def test_clip_grad_norm_scales_shared_and_broadcast_tensor_gradients_once():
    x = Tensor(np.array([3.0, 4.0]))
    first, second = leaf([0.0, 0.0]), leaf([0.0, 0.0])
    (x * (first + second)).sum().backward(create_graph=True)  # both gradients are x
    norm = optim.clip_grad_norm_([first, second], max_norm=1.0)
    assert norm == pytest.approx(math.sqrt(50.0))
    assert_close(first.grad.data, np.array([3.0, 4.0]) / np.sqrt(50.0), rtol=1e-5)
    assert_close(second.grad.data, np.array([3.0, 4.0]) / np.sqrt(50.0), rtol=1e-5)

    summed = leaf([1.0, 1.0])
    summed.sum().backward(create_graph=True)  # gradient: ones broadcast from a scalar
    optim.clip_grad_norm_([summed], max_norm=0.5)
    assert_close(summed.grad.data, [0.5 / np.sqrt(2.0)] * 2, rtol=1e-5)


# ---- against PyTorch -------------------------------------------------------------


def composite_loss(x, weight, bias, projection, target, module):
    """layer_norm -> gelu -> matmul -> log_softmax -> cross_entropy, in either library."""
    hidden = module.gelu(module.layer_norm(x, (x.shape[-1],), weight, bias))
    return module.cross_entropy(module.log_softmax(hidden @ projection, -1), target)


def test_hessian_vector_products_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(shape) for shape in [(5, 4), (4,), (4,), (4, 3)]]
    target = rng.integers(0, 3, 5)
    directions = [rng.standard_normal(a.shape) for a in arrays]

    inputs = [leaf(a) for a in arrays]
    grads = mg.grad(composite_loss(*inputs, target, F), inputs, create_graph=True)
    projected = sum((g * u).sum() for g, u in zip(grads, directions, strict=True))
    ours = [h.data for h in mg.grad(projected, inputs)]

    torch_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss = composite_loss(*torch_inputs, torch.tensor(target), torch.nn.functional)
    torch_grads = torch.autograd.grad(loss, torch_inputs, create_graph=True)
    torch_projected = sum(
        (g * torch.tensor(u)).sum() for g, u in zip(torch_grads, directions, strict=True)
    )
    theirs = [h.detach().numpy() for h in torch.autograd.grad(torch_projected, torch_inputs)]

    for g, t in zip(grads, torch_grads, strict=True):
        assert_close(g.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for h, t in zip(ours, theirs, strict=True):
        assert np.linalg.norm(h - t) <= 1e-8 * np.linalg.norm(t)


# ---- user-defined ops: Function ---------------------------------------------------


def readme_section_code(title: str) -> str:
    """The Python blocks of one README section, joined in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))


def test_readme_custom_op_example_runs_and_its_gradient_passes_gradcheck():
    namespace: dict[str, Any] = {}
    exec(readme_section_code("Custom ops and higher-order gradients"), namespace)
    assert_close(namespace["hvp"].data, [3.0, 0.0, 1.5])

    softplus = namespace["Softplus"].apply
    x = leaf(np.random.default_rng(5).uniform(-30.0, 30.0, (3, 4)))
    softplus(x).sum().backward()
    assert_close(softplus(x).data, np.logaddexp(0.0, x.data))
    assert_close(x.grad, 1 / (1 + np.exp(-x.data)), rtol=1e-14, atol=1e-15)
    assert gradcheck(softplus, [x])


class ScaledProduct(mg.Function):
    """a * b * scale, with a Python number among the arguments."""

    @staticmethod
    def forward(ctx: mg.Context, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale

    @staticmethod
    def backward(ctx: mg.Context, grad: np.ndarray) -> tuple[Any, ...]:
        a, b = ctx.saved_arrays
        return grad * b * ctx.scale, grad * a * ctx.scale, None


@given(operand_shapes=broadcastable_shapes(2), scale=nonzero_floats(), data=st.data())
def test_function_with_two_inputs_and_a_number_argument(operand_shapes, scale, data):
    a, b = (data.draw(smooth_arrays(shape)) for shape in operand_shapes)
    out = ScaledProduct.apply(Tensor(a), Tensor(b), scale)
    assert_close(out.data, a * b * scale)
    assert gradcheck(lambda x, y: ScaledProduct.apply(x, y, scale), [leaf(a), leaf(b)])


def test_function_gradient_flows_to_tensor_arguments_only():
    a, b = leaf([1.0, 2.0]), Tensor(np.array([3.0, -1.0]))
    ScaledProduct.apply(a, b, 2.0).sum().backward()
    assert_close(a.grad, [6.0, -2.0])
    assert b.grad is None


class MissingGradient(mg.Function):
    """A broken op: two tensor arguments, but backward returns one gradient."""

    @staticmethod
    def forward(ctx: mg.Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    @staticmethod
    def backward(ctx: mg.Context, grad: np.ndarray) -> np.ndarray:
        return grad


def test_function_returning_wrong_number_of_gradients_raises_naming_the_class():
    out = MissingGradient.apply(leaf([1.0]), leaf([2.0])).sum()
    with pytest.raises(ValueError, match="MissingGradient.backward returned 1 gradients"):
        out.backward()


def test_create_graph_through_function_raises_naming_the_class():
    x = leaf([0.5, 1.5])
    out = ScaledProduct.apply(x, x, 3.0).sum()
    with pytest.raises(NotImplementedError, match="'ScaledProduct'"):
        out.backward(create_graph=True)


# ---- the graph as DOT text -------------------------------------------------------


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(node name -> its attribute text, [(parent, child) edges]) of to_dot's output."""
    nodes = dict(re.findall(r"^  (t\d+) \[(.*)\];$", text, flags=re.MULTILINE))
    edges = re.findall(r"^  (t\d+) -> (t\d+);$", text, flags=re.MULTILINE)
    return nodes, edges


def first_label_line(attrs: str) -> str:
    """An op's name, or a leaf's shape and dtype: the label's first line."""
    return re.search(r'label="([^"]*)"', attrs).group(1).split("\\n")[0]


def test_graph_has_one_box_per_op_labelled_with_name_and_shape():
    x = leaf(np.ones((2, 3)))
    y = (x.exp() * 2).sum(axis=1)
    nodes, _ = parse_dot(y.graph())
    boxes = [attrs for attrs in nodes.values() if "shape=box" in attrs]
    assert sorted(first_label_line(attrs) for attrs in boxes) == ["exp", "mul", "sum"]
    assert any('label="sum\\n2 float64"' in attrs for attrs in boxes)
    assert any('label="exp\\n2x3 float64"' in attrs for attrs in boxes)


def test_graph_fills_leaves_that_require_grad_only():
    x, constant = leaf(np.ones(3)), Tensor(np.ones(3))
    nodes, _ = parse_dot((x * constant).graph())
    leaves = [attrs for attrs in nodes.values() if "shape=ellipse" in attrs]
    assert len(leaves) == 2
    filled = [attrs for attrs in leaves if "style=filled" in attrs]
    assert len(filled) == 1 and "requires_grad" in filled[0]


def test_graph_of_a_diamond_has_one_edge_per_parent_child_pair():
    x = leaf([0.5, -1.0])
    left, right = x.exp(), x.tanh()
    text = (left * right).graph()
    nodes, edges = parse_dot(text)
    name = {node: first_label_line(attrs) for node, attrs in nodes.items()}
    named = sorted((name[parent], name[child]) for parent, child in edges)
    assert named == [("2 float64", "exp"), ("2 float64", "tanh"), ("exp", "mul"), ("tanh", "mul")]
    assert text.count("->") == 4 == len(edges)
    assert len(nodes) == 4


def test_graph_is_well_formed_dot_text():
    x = leaf(np.ones((2, 2)))
    text = ((x @ x).relu().sum()).graph("my model")
    assert text.startswith('digraph "my model" {')
    assert text.rstrip().endswith("}")
    assert text.count("{") == text.count("}") == 1
    assert text.count('"') % 2 == 0
    for line in text.splitlines()[1:-1]:
        assert line.endswith(";"), line


def test_graph_needs_no_graphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # importing it would fail
    monkeypatch.setenv("PATH", "")  # and no `dot` program can be found
    x = leaf([1.0, 2.0])
    text = (x * x).sum().graph()
    assert text.startswith("digraph") and text.count("->") == 3

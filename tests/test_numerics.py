"""Numerics at the edges: huge logits, saturation, constant rows, zeros and ties.

"No warnings" is checked with `warnings.simplefilter("error")` and
`np.errstate(all="raise", under="ignore")`: overflow, division by zero and
invalid operations raise, while underflow to zero (exp of a very negative
number) is the intended saturation and stays quiet.  Where PyTorch is
installed, the edge values are also compared with it.
"""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import axes, large_logits, shapes, tied_arrays

import minigrad as mg
from minigrad.nn import functional as F

try:
    import torch
except ImportError:  # the comparisons with PyTorch skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


@contextlib.contextmanager
def strict():
    """Turn every NumPy floating-point event but underflow, and every warning, into an error."""
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        yield


def value_and_grad(fn, x, upstream=None):
    """fn(x) and d(sum(upstream * fn(x)))/dx for an array x, computed under `strict()`."""
    t = mg.tensor(np.array(x), requires_grad=True)
    with strict():
        out = fn(t)
        out.backward(np.ones(out.shape, out.dtype) if upstream is None else upstream)
    return out.data, t.grad


def torch_value_and_grad(fn, x, upstream=None):
    t = torch.tensor(np.array(x), requires_grad=True)
    out = fn(t)
    out.backward(torch.ones_like(out) if upstream is None else torch.tensor(upstream))
    return out.detach().numpy(), t.grad.numpy()


def ulps_apart(got, want):
    """How many float32 spacings `got` lies from the float64 reference `want`."""
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / np.maximum(spacing, np.spacing(np.float32(1)))


# ---- huge logits in float32 against a float64 reference ---------------------------


def reference_log_softmax(x):
    """log softmax in float64 of float32 logits, shifted by the row max."""
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


MAGNITUDES = [1e4, 1e6, 1e30]


@pytest.mark.parametrize("magnitude", MAGNITUDES)
@given(data=st.data())
def test_softmax_of_huge_float32_logits_matches_float64_within_two_ulps(magnitude, data):
    x = data.draw(large_logits((3, 5), magnitude))
    upstream = data.draw(large_logits((3, 5), 1.0))
    probs, grad = value_and_grad(lambda t: t.softmax(axis=-1), x, upstream)
    want = np.exp(reference_log_softmax(x))
    want_grad = want * (upstream - (upstream * want).sum(axis=-1, keepdims=True))
    assert probs.dtype == np.float32
    assert np.all(ulps_apart(probs, want) <= 2)
    np.testing.assert_allclose(probs.sum(axis=-1), 1, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, atol=4e-7 * (1 + np.abs(upstream).max()))


@pytest.mark.parametrize("magnitude", MAGNITUDES)
@given(data=st.data())
def test_log_softmax_of_huge_float32_logits_matches_float64_within_two_ulps(magnitude, data):
    x = data.draw(large_logits((3, 5), magnitude))
    logp, grad = value_and_grad(lambda t: t.log_softmax(axis=-1), x)
    want = reference_log_softmax(x)
    assert np.isfinite(logp).all() and np.all(ulps_apart(logp, want) <= 2)
    # d sum(log_softmax) / dx = 1 - C * softmax
    np.testing.assert_allclose(grad, 1 - x.shape[-1] * np.exp(want), atol=3e-6)


@pytest.mark.parametrize("magnitude", MAGNITUDES)
@given(data=st.data())
def test_cross_entropy_of_huge_float32_logits_matches_float64(magnitude, data):
    x = data.draw(large_logits((4, 6), magnitude))
    target = np.array(data.draw(st.lists(st.integers(0, 5), min_size=4, max_size=4)))
    loss, grad = value_and_grad(lambda t: F.cross_entropy(t, target), x)
    logp = reference_log_softmax(x)
    want = -logp[np.arange(4), target].mean()
    want_grad = np.exp(logp) / 4
    want_grad[np.arange(4), target] -= 1 / 4
    assert loss.dtype == np.float32 and np.isfinite(loss)
    assert ulps_apart(loss, want) <= 4
    np.testing.assert_allclose(grad, want_grad, atol=1e-7)


def test_cross_entropy_with_every_row_ignored_is_nan_with_zero_gradients():
    # A mean over no rows is 0/0; no row reaches the loss, so every gradient is 0,
    # as in PyTorch, and neither the loss nor its gradient warns.
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]], dtype=np.float32)
    ignored = np.array([-100, -100])
    loss, grad = value_and_grad(lambda t: F.cross_entropy(t, ignored), x)
    assert np.isnan(loss) and grad.tolist() == [[0.0] * 3] * 2
    t = mg.tensor(x, requires_grad=True)
    (g,) = mg.grad(F.cross_entropy(t, ignored), t, create_graph=True)
    assert g.numpy().tolist() == [[0.0] * 3] * 2
    _, summed = value_and_grad(lambda t: F.cross_entropy(t, ignored, reduction="sum"), x)
    assert summed.tolist() == [[0.0] * 3] * 2


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_an_ignored_row_of_nan_logits_touches_neither_loss_nor_gradient(reduction):
    x = np.array([[0.0, np.log(3.0)], [np.nan, 1.0]])
    target = np.array([1, -100])
    loss, grad = value_and_grad(lambda t: F.cross_entropy(t, target, reduction=reduction), x)
    # Row 0 alone: -log(3/4), with gradient softmax - one_hot = (1/4, -1/4).
    np.testing.assert_allclose(loss.ravel()[0], -np.log(0.75))
    assert grad.tolist() == [[0.25, -0.25], [0.0, 0.0]]
    t = mg.tensor(x, requires_grad=True)
    (g,) = mg.grad(F.cross_entropy(t, target, reduction=reduction).sum(), t, create_graph=True)
    np.testing.assert_allclose(g.numpy(), [[0.25, -0.25], [0.0, 0.0]])


def test_a_nan_gradient_stays_out_of_masked_and_unselected_places():
    # Softmax over a row that is all masked is nan; masked_fill and where route the
    # gradient by selection, so the nan reaches no element they masked out.
    x = mg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    filled = x.masked_fill(np.array([[False, False], [True, True]]), -np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled.softmax(-1).sum().backward()
    assert np.isfinite(x.grad).all() and x.grad[1].tolist() == [0.0, 0.0]
    a = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = mg.tensor(np.array([3.0, 4.0]), requires_grad=True)
    mg.where(np.array([True, False]), a, b).backward(np.array([np.nan, 1.0]))
    assert a.grad.tolist()[1] == 0.0 and b.grad.tolist()[0] == 0.0


@needs_torch
def test_huge_logits_give_pytorchs_softmax_log_softmax_and_cross_entropy():
    x = np.array([[1e4, -1e4, 5e3, 1e4 - 3], [1e30, -1e30, 0, 1]], dtype=np.float32)
    target = np.array([1, 0])
    cases = [
        (lambda t: t.softmax(-1), lambda t: t.softmax(-1)),
        (lambda t: t.log_softmax(-1), lambda t: t.log_softmax(-1)),
        (
            lambda t: F.cross_entropy(t, target),
            lambda t: torch.nn.functional.cross_entropy(t, torch.tensor(target)),
        ),
    ]
    for ours, theirs in cases:
        value, grad = value_and_grad(ours, x)
        want, want_grad = torch_value_and_grad(theirs, x)
        np.testing.assert_allclose(value, want, rtol=1e-6)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-6)


# ---- saturation: tanh, sigmoid, exp ------------------------------------------------

EDGES = [-1e30, -1e4, -100.0, -89.0, -1.0, 0.0, 1.0, 88.0, 89.0, 100.0, 1e4, 1e30]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_and_sigmoid_saturate_without_warnings_nan_or_a_gradient_outside_0_1(dtype):
    x = np.array(EDGES, dtype=dtype)
    for name, low in (("tanh", -1), ("sigmoid", 0)):
        for upstream in (np.ones_like(x), np.zeros_like(x)):
            value, grad = value_and_grad(lambda t, name=name: getattr(t, name)(), x, upstream)
            assert value.dtype == dtype
            assert np.all((low <= value) & (value <= 1)), name
            assert value[0] == low and value[-1] == 1, name
            assert np.all((0 <= grad) & (grad <= upstream)), name


def test_exp_saturates_to_inf_with_gradient_inf_and_no_warning():
    x = np.array(EDGES, dtype=np.float32)
    value, grad = value_and_grad(lambda t: t.exp(), x)
    overflows = x > 88.72  # log of float32's largest value
    assert np.all(np.isinf(value[overflows])) and np.all(np.isfinite(value[~overflows]))
    assert value[0] == 0 and np.array_equal(grad, value)


def test_exp_gradient_is_nan_where_a_zero_upstream_gradient_meets_an_overflow_as_in_pytorch():
    # The gradient is upstream * exp(x); 0 * inf is nan, PyTorch's answer too (see exp's docstring).
    x = np.array([1000.0, 1.0, -1000.0], dtype=np.float32)
    _, grad = value_and_grad(lambda t: t.exp(), x, np.zeros(3, np.float32))
    assert np.isnan(grad[0]) and grad[1] == 0 and grad[2] == 0


@needs_torch
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "exp"])
@pytest.mark.parametrize("upstream", [1.0, 0.0])
def test_saturated_tanh_sigmoid_and_exp_match_pytorch(name, upstream):
    x = np.array(EDGES, dtype=np.float32)
    ones = np.full(x.shape, upstream, np.float32)
    value, grad = value_and_grad(lambda t: getattr(t, name)(), x, ones)
    want, want_grad = torch_value_and_grad(lambda t: getattr(t, name)(), x, ones)
    # Ours keeps sigmoid's subnormal tail (3.8e-44 at -100) that PyTorch flushes to 0.
    np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-37)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-37)


# ---- layer norm of constant rows ---------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [0.0, 3.1, -7.3e-3, 1e4, 1e30])
@pytest.mark.parametrize("width", [4, 128, 1000])
def test_layer_norm_of_constant_rows_is_exactly_the_bias_with_finite_gradients(dtype, value, width):
    x = np.full((3, width), value, dtype=dtype)
    weight = mg.tensor(np.linspace(0.5, 2, width).astype(dtype), requires_grad=True)
    bias = mg.tensor(np.linspace(-1, 1, width).astype(dtype), requires_grad=True)
    upstream = np.random.default_rng(0).standard_normal(x.shape).astype(dtype)
    out, grad = value_and_grad(lambda t: F.layer_norm(t, (width,), weight, bias), x, upstream)
    assert np.array_equal(out, np.broadcast_to(bias.data, x.shape))
    assert np.isfinite(grad).all() and np.isfinite(weight.grad).all()
    assert np.array_equal(weight.grad, np.zeros(width, dtype))  # xhat is exactly 0
    # With xhat = 0 the input gradient is rstd * (g w - mean(g w)), rstd = 1 / sqrt(eps).
    g_w = upstream * weight.data
    want = (g_w - g_w.mean(axis=-1, keepdims=True)) / np.sqrt(dtype(1e-5))
    np.testing.assert_allclose(grad, want, rtol=1e-4 if dtype == np.float32 else 1e-10)


@needs_torch
def test_layer_norm_of_constant_rows_matches_pytorch():
    x = np.full((2, 128), 3.1, dtype=np.float32)
    upstream = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    value, grad = value_and_grad(lambda t: F.layer_norm(t, (128,)), x, upstream)
    want, want_grad = torch_value_and_grad(
        lambda t: torch.nn.functional.layer_norm(t, (128,)), x, upstream
    )
    np.testing.assert_array_equal(value, want)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4)


# ---- sqrt, log and division at zero -------------------------------------------------

AT_ZERO = {
    # name: (fn, x, value, gradient), as PyTorch gives them
    "sqrt(0)": (lambda t: t.sqrt(), 0.0, 0.0, np.inf),
    "sqrt(-1)": (lambda t: t.sqrt(), -1.0, np.nan, np.nan),
    "log(0)": (lambda t: t.log(), 0.0, -np.inf, np.inf),
    "log(-1)": (lambda t: t.log(), -1.0, np.nan, -1.0),
    "1/x at 0": (lambda t: 1 / t, 0.0, np.inf, -np.inf),
    "-1/x at 0": (lambda t: -1 / t, 0.0, -np.inf, np.inf),
    "0/x at 0": (lambda t: 0 / t, 0.0, np.nan, np.nan),
    "x/0 at 1": (lambda t: t / 0, 1.0, np.inf, np.inf),
    "x/0 at 0": (lambda t: t / 0, 0.0, np.nan, np.inf),
    "x**0.5 at 0": (lambda t: t**0.5, 0.0, 0.0, np.inf),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", AT_ZERO)
def test_sqrt_log_and_division_at_zero_give_pytorchs_values_and_gradients_quietly(case, dtype):
    fn, x, value, gradient = AT_ZERO[case]
    got, grad = value_and_grad(fn, np.array([x], dtype=dtype))
    np.testing.assert_array_equal(got, [value])
    np.testing.assert_array_equal(grad, [gradient])


@needs_torch
@pytest.mark.parametrize("case", AT_ZERO)
def test_sqrt_log_and_division_at_zero_match_pytorch(case):
    fn, x, _, _ = AT_ZERO[case]
    x = np.array([x], dtype=np.float32)
    got, grad = value_and_grad(fn, x)
    want, want_grad = torch_value_and_grad(fn, x)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(grad, want_grad)


# ---- ties ------------------------------------------------------------------------


@st.composite
def tied_reductions(draw):
    shape = draw(shapes(min_dims=1))
    return draw(tied_arrays(shape)), draw(axes(len(shape))), draw(st.booleans())


@pytest.mark.parametrize("name", ["max", "min"])
@given(case=tied_reductions(), data=st.data())
def test_max_and_min_split_the_gradient_equally_among_ties_summing_to_the_upstream(
    name, case, data
):
    x, axis, keepdims = case
    reduce = getattr(np, name)
    upstream = data.draw(st.sampled_from([1.0, -2.5])) * np.ones(
        reduce(x, axis=axis, keepdims=keepdims).shape
    )
    value, grad = value_and_grad(
        lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), x, upstream
    )
    reduced = tuple(range(x.ndim)) if axis is None else axis
    extreme = reduce(x, axis=axis, keepdims=True)
    hits = x == extreme
    upstream_kept = upstream.reshape(extreme.shape)
    np.testing.assert_array_equal(value, reduce(x, axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(grad.sum(axis=reduced, keepdims=True), upstream_kept)
    ties = hits.sum(axis=reduced, keepdims=True)
    np.testing.assert_allclose(grad, np.where(hits, upstream_kept / ties, 0))


INF = np.inf


@pytest.mark.parametrize(
    "fn, x, value, grad",
    [
        (lambda t: t.abs().sqrt().sum(), [0.0, 1.0], 1.0, [np.nan, 0.5]),
        (lambda t: t.logsumexp(), [-INF, -INF], -INF, [np.nan, np.nan]),
        (lambda t: t.log_softmax(-1).sum(), [[1e308, -1e308]], -INF, [[-1.0, 1.0]]),
        (lambda t: t.log_softmax(0).sum(), [1e308, -1e308], -INF, [-1.0, 1.0]),
        (lambda t: t.softmax(-1)[0, 0], [[1e308, -1e308]], 1.0, [[0.0, 0.0]]),
    ],
    ids=["sqrt of abs at 0", "logsumexp of -inf", "log_softmax", "log_softmax axis 0", "softmax"],
)
def test_extreme_inputs_give_pytorchs_values_without_warnings(fn, x, value, grad):
    # The values are what PyTorch 2.13 gives for the same inputs in float64.
    got, got_grad = value_and_grad(fn, np.array(x))  # under strict(): a warning fails
    np.testing.assert_array_equal(got, value)
    np.testing.assert_array_equal(got_grad, grad)


def test_a_mean_over_nothing_is_nan_quietly_with_an_empty_gradient():
    value, grad = value_and_grad(lambda t: t.mean(), np.zeros((0, 3), np.float32))
    assert np.isnan(value) and value.dtype == np.float32 and grad.shape == (0, 3)
    columns, _ = value_and_grad(lambda t: t.mean(axis=0), np.zeros((0, 3)))
    assert columns.shape == (3,) and np.isnan(columns).all()


def test_a_value_numpy_refuses_is_not_reported_as_a_shape_mismatch():
    with pytest.raises(ValueError, match=r"pow: Integers to negative integer powers"):
        mg.tensor([2, 3]) ** -1
    with pytest.raises(ValueError, match=r"add: shapes \(2,\) and \(3,\) cannot be broadcast"):
        mg.tensor([2, 3]) + mg.tensor([1, 2, 3])


def test_gelu_at_infinities_gives_pytorchs_float64_values_quietly():
    value, grad = value_and_grad(lambda t: t.gelu(), np.array([INF, -INF, 1.0]))
    np.testing.assert_allclose(value, [INF, np.nan, 0.841344746068543], rtol=1e-12)
    np.testing.assert_allclose(grad, [np.nan, np.nan, 1.0833154705876864], rtol=1e-12)


@pytest.mark.parametrize("name", ["max", "min"])
def test_a_nan_wins_max_and_min_and_takes_the_gradient_quietly(name):
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0], [np.nan, 0.0, np.nan]])
    value, grad = value_and_grad(lambda t: getattr(t, name)(axis=1), x)  # under strict()
    other = 6.0 if name == "max" else 4.0
    assert np.isnan(value[0]) and value[1] == other and np.isnan(value[2])
    want = [[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.5]]
    want[1][2 if name == "max" else 0] = 1.0
    assert grad.tolist() == want


@needs_torch
@pytest.mark.parametrize("axis", [None, 1])
def test_max_with_ties_matches_pytorchs_amax(axis):
    x = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 0.0]])
    value, grad = value_and_grad(lambda t: t.max(axis=axis), x)
    dim = () if axis is None else axis
    want, want_grad = torch_value_and_grad(lambda t: t.amax(dim=dim), x)
    np.testing.assert_array_equal(value, want)
    np.testing.assert_array_equal(grad, want_grad)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_elementwise_maximum_and_minimum_split_a_tie_half_and_half_as_pytorch_does(name):
    a = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = mg.tensor(np.array([1.0, 0.0, 4.0]), requires_grad=True)
    with strict():
        getattr(mg, name)(a, b).backward(np.full(3, 2.0))
    a_share = [0.5, 1.0, 0.0] if name == "maximum" else [0.5, 0.0, 1.0]
    np.testing.assert_array_equal(a.grad, 2.0 * np.array(a_share))
    np.testing.assert_array_equal(a.grad + b.grad, np.full(3, 2.0))


def test_the_variance_of_one_element_is_nan_with_a_nan_gradient_and_of_none_nan():
    x = mg.tensor(np.array([3.0]), requires_grad=True)
    v = x.var()
    v.backward()
    assert np.isnan(v.item()) and np.isnan(x.grad).all()
    assert np.isnan(mg.tensor(np.ones(0)).var().item())


def test_softmax_over_an_empty_axis_is_empty_like_pytorch():
    x = mg.tensor(np.zeros((2, 0)), requires_grad=True)
    out = F.softmax(x, -1)
    out.sum().backward()
    assert out.shape == (2, 0) and x.grad.shape == (2, 0)
    assert F.log_softmax(mg.tensor(np.zeros((0, 3))), -1).shape == (0, 3)

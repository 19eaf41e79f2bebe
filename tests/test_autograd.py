"""The graph walk, grad mode, dtype rules, and gradcheck's own ability to fail."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from numpy.testing import assert_allclose
from strategies import shapes, smooth_arrays

import minigrad as mg
from minigrad import GradcheckError, Tensor, gradcheck


def leaf(values: object, dtype: type = np.float64) -> Tensor:
    """A leaf tensor of `dtype` that requires a gradient."""
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---- the graph walk --------------------------------------------------------------


def test_backward_through_ten_thousand_ops_needs_no_recursion():
    # 10,000 nodes is ten times Python's default recursion limit: a recursive walk
    # (or a recursive topological sort) would raise RecursionError here.
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert_allclose(x.grad, 1.0001**10_000, rtol=1e-9)


def test_backward_through_ten_thousand_ops_twice_with_retained_graph():
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(5_000):
        y = (y + 1.0) - 1.0
    loss = y.sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert_allclose(x.grad, [2.0, 2.0])


def test_node_used_twice_gets_both_gradients():
    x = leaf([1.5, -2.0, 3.0])
    (x * x).sum().backward()
    assert_allclose(x.grad, 2 * x.data)


def test_node_used_three_times_gets_all_gradients():
    x = leaf([0.5, -1.0])
    y = x * 2.0
    z = y + y * y  # y appears three times
    z.sum().backward()
    # dz/dy = 1 + 2y, dy/dx = 2
    assert_allclose(x.grad, (1 + 2 * y.data) * 2)


def test_diamond_graph_sums_both_paths():
    x = leaf([0.3, -0.7])
    top = x * 2.0
    left, right = top * 3.0, top.tanh()
    (left + right).sum().backward()
    # d/dx = 2 * (3 + 1 - tanh(2x)^2)
    assert_allclose(x.grad, 2 * (3 + 1 - np.tanh(2 * x.data) ** 2))


def test_add_of_a_tensor_to_itself_doubles_the_gradient():
    x = leaf([1.0, 2.0])
    (x + x).sum().backward()
    assert_allclose(x.grad, [2.0, 2.0])


def test_gradients_accumulate_across_two_backward_calls():
    x = leaf([1.0, -2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert_allclose(x.grad, 3.0 + 2 * x.data)


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    assert_allclose(x.grad, 4 * x.data)


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        loss.backward()
    assert_allclose(x.grad, 2 * x.data)  # the failed call added nothing


def test_backward_through_freed_intermediate_raises():
    x = leaf([1.0, 2.0])
    middle = x * 2.0
    middle.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        (middle * 3.0).sum().backward()


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    middle = x * 2.0
    middle.retain_grad()
    (middle * middle).sum().backward()
    assert_allclose(middle.grad, 2 * middle.data)
    assert_allclose(x.grad, 4 * middle.data)


def test_intermediate_gradient_is_not_kept_by_default():
    x = leaf([1.0, 2.0])
    middle = x * 2.0
    middle.sum().backward()
    assert middle.grad is None


def test_leaf_not_requiring_grad_gets_no_gradient():
    x = leaf([1.0, 2.0])
    constant = Tensor(np.array([3.0, 4.0]))
    (x * constant).sum().backward()
    assert constant.grad is None
    assert_allclose(x.grad, [3.0, 4.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.array([1.0])).sum().backward()


def test_backward_with_wrong_grad_shape_names_both_shapes():
    y = leaf([[1.0, 2.0, 3.0]]) * 2.0
    with pytest.raises(ValueError, match=r"\(3,\).*\(1, 3\)"):
        y.backward(np.ones(3))


def test_backward_without_grad_on_non_scalar_raises():
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"shape \(2,\)"):
        y.backward()


def test_backward_with_grad_scales_every_path():
    x = leaf([1.0, 2.0])
    (x * 3.0).backward(np.array([10.0, -1.0]))
    assert_allclose(x.grad, [30.0, -3.0])


# ---- grad mode -------------------------------------------------------------------


def test_no_grad_context_records_no_graph_and_restores_mode():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = x * 2.0
    assert mg.is_grad_enabled()
    assert not y.requires_grad
    assert_allclose(y.data, [2.0, 4.0])


def test_no_grad_decorator_records_no_graph_and_restores_mode():
    @mg.no_grad()
    def double(t: Tensor) -> Tensor:
        assert not mg.is_grad_enabled()
        return t * 2.0

    y = double(leaf([1.0, 2.0]))
    assert mg.is_grad_enabled()
    assert not y.requires_grad
    assert_allclose(y.data, [2.0, 4.0])


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(KeyError), mg.no_grad():
        raise KeyError("inside")
    assert mg.is_grad_enabled()


def test_enable_grad_inside_no_grad_records_the_graph():
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        with mg.enable_grad():
            y = x * x
        z = x * x
    assert y.requires_grad and not z.requires_grad
    y.sum().backward()
    assert_allclose(x.grad, [2.0, 4.0])


# ---- dtypes ----------------------------------------------------------------------


def test_python_floats_become_float32():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor([[0.5]]).dtype == np.float32
    assert mg.zeros(2, 3).dtype == np.float32
    assert mg.ones((2,)).dtype == np.float32
    assert mg.exp(0.5).dtype == np.float32  # an op lifts a Python float the same way


def test_float64_arrays_keep_their_dtype_through_ops_and_gradients():
    x = leaf([0.5, 1.5])
    y = (x * 2.0 + 1).exp().log().tanh().sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


SCALAR_OPS = {
    "add": lambda t: t + 2.5,
    "radd": lambda t: 2.5 + t,
    "sub": lambda t: t - 2.5,
    "rsub": lambda t: 2.5 - t,
    "mul": lambda t: t * 2.5,
    "rmul": lambda t: 2.5 * t,
    "div": lambda t: t / 2.5,
    "rdiv": lambda t: 2.5 / t,
    "pow": lambda t: t**2.5,
    "rpow": lambda t: 2.5**t,
    "int_add": lambda t: t + 3,
    "int_pow": lambda t: t**3,
    "numpy_float64": lambda t: t * np.float64(2.5),
    "maximum": lambda t: mg.maximum(t, 0.5),
    "where": lambda t: mg.where(np.array([True, False]), t, 0.5),
}


@pytest.mark.parametrize("name", list(SCALAR_OPS))
def test_python_scalar_never_upcasts_a_float32_tensor(name):
    x = leaf([1.0, 2.0], dtype=np.float32)
    y = SCALAR_OPS[name](x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_data_stays_integer_and_indexes():
    index = Tensor([0, 2, 0])
    assert np.issubdtype(index.dtype, np.integer)
    assert np.issubdtype(mg.arange(3).dtype, np.integer)
    x = leaf([10.0, 20.0, 30.0])
    picked = x[index]
    assert_allclose(picked.data, [10.0, 30.0, 10.0])
    picked.sum().backward()
    assert_allclose(x.grad, [2.0, 0.0, 1.0])


def test_requires_grad_on_integer_tensor_raises():
    with pytest.raises(TypeError, match="floating dtype"):
        Tensor([1, 2], requires_grad=True)


def test_gradient_of_float32_tensor_through_float64_cast_is_float32():
    x = leaf([1.0, 2.0], dtype=np.float32)
    y = x.double() * 3.0
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    assert_allclose(x.grad, [3.0, 3.0])


# ---- gradcheck checks itself -----------------------------------------------------


def triple_with_wrong_rule(x: Tensor) -> Tensor:
    """3x with a backward rule that is right everywhere but at element (1, 2)."""

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        grad = g * 3.0
        grad[1, 2] = 0.0
        return (grad,)

    return Tensor._from_op(x.data * 3.0, (x,), backward, "wrong_triple")


def test_gradcheck_fails_on_a_wrong_rule_and_names_the_element():
    x = leaf(np.arange(12.0).reshape(3, 4))
    named = r"input 0 \(shape \(3, 4\)\) element \(1, 2\)"
    with pytest.raises(GradcheckError, match=named):
        gradcheck(triple_with_wrong_rule, [x])


def test_gradcheck_returns_false_on_a_wrong_rule_without_raising():
    x = leaf(np.arange(12.0).reshape(3, 4))
    assert gradcheck(triple_with_wrong_rule, [x], raise_exception=False) is False


def test_gradcheck_names_the_input_that_is_wrong():
    a, b = leaf(np.ones((3, 4))), leaf(np.ones((3, 4)))
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(3, 4\)\)"):
        gradcheck(lambda p, q: p + triple_with_wrong_rule(q), [a, b])


@given(x=shapes().flatmap(smooth_arrays))
def test_gradcheck_passes_a_correct_rule(x):
    assert gradcheck(lambda t: t * t * 3.0, [leaf(x)])


def test_gradcheck_handles_inputs_that_are_not_contiguous():
    x = Tensor(np.arange(12.0).reshape(3, 4).T, requires_grad=True)  # a strided view
    assert not x.data.flags.c_contiguous
    assert gradcheck(lambda t: t * t, [x])
    assert_allclose(x.data, np.arange(12.0).reshape(3, 4).T)  # left as it was


def test_gradcheck_rejects_float32_inputs():
    with pytest.raises(TypeError, match="float32"):
        gradcheck(lambda t: t * 2.0, [leaf([1.0], dtype=np.float32)])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2.0, [Tensor(np.array([1.0]))])


def test_a_one_element_tensor_has_a_truth_value_and_a_larger_one_is_ambiguous():
    assert bool(mg.tensor([0.5]) > 0.2) is True
    assert bool(mg.tensor([0.0])) is False
    with pytest.raises(ValueError, match=r"shape \(2,\) is ambiguous"):
        bool(mg.tensor([1.0, 2.0]))


def test_comparisons_are_elementwise_masks_and_tensors_hash_as_themselves():
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 0.0, 3.0]))
    assert (a == b).tolist() == [True, False, True]
    assert (a != b).tolist() == [False, True, False]
    assert (a == 2).tolist() == [False, True, False]
    assert (np.array([3.0, 2.0, 1.0]) == a).tolist() == [False, True, False]
    assert (a == b).dtype == np.bool_ and not (a == b).requires_grad
    assert a.eq(b).tolist() == (a == b).tolist() and a.ne(2).tolist() == (a != 2).tolist()
    assert (a == None) is False and (a != None) is True  # noqa: E711
    # Containers look a tensor up by identity first, so dicts and sets still work.
    twin = Tensor(a.data.copy())
    assert {a: "a", twin: "twin"}[twin] == "twin" and len({a, twin, a}) == 2
    assert a in [a] and a in {a}


def test_in_place_arithmetic_under_no_grad_updates_the_same_tensor():
    # The manual gradient step of a PyTorch tutorial: the tensor an optimizer or a
    # model holds must change, not a new tensor bound to the loop's name.
    p = leaf([1.0, -2.0])
    held = [p]
    (p * p).sum().backward()  # gradient 2p
    with mg.no_grad():
        p -= 0.25 * p.grad
        p *= Tensor(np.array([2.0, 4.0]))
        p += 1
        p /= 2
    assert held[0] is p and p.requires_grad and p.is_leaf
    assert_allclose(p.numpy(), [(0.5 * 2 + 1) / 2, (-1.0 * 4 + 1) / 2])
    scaled = mg.tensor(1.0) * 0.5  # a 0-d result holds a 0-d array, not a NumPy scalar
    assert type(scaled.numpy()) is np.ndarray and type(leaf([2.0]).sum().numpy()) is np.ndarray
    scaled += 1.0
    assert scaled.item() == 1.5
    counts = mg.arange(3)  # nothing requires a gradient: in place outside no_grad too
    view = counts.numpy()
    counts += 2
    assert view.tolist() == [2, 3, 4]


def test_in_place_arithmetic_on_the_graph_raises_for_leaves_and_rebinds_results():
    p = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"`-=` on a leaf tensor that requires grad.*no_grad"):
        p -= 1.0
    assert p.numpy().tolist() == [1.0, 2.0]
    h = p * 3.0
    first = h
    h += p * p  # h = 3p + p^2: a new node, so the gradient is right
    assert h is not first and first.numpy().tolist() == [3.0, 6.0]
    h.sum().backward()
    assert_allclose(p.grad, [3.0 + 2.0, 3.0 + 4.0])
    total = mg.zeros(2, dtype=np.float64)
    total += p  # a constant plus a leaf that requires grad joins the graph
    assert total.requires_grad


def test_backward_refuses_a_graph_whose_values_changed_in_place_since():
    # The gradient of sum(x * w) in x is w: after `w *= 10` the graph would give the
    # new w, after `x -= 1` the gradient in w would be the new x. PyTorch raises too.
    stale = "an input of 'mul' .* changed in place after the op ran"
    x, w = leaf([1.0, 2.0]), Tensor(np.array([1.0, 1.0]))
    y = (x * w).sum()
    w *= 10.0
    with pytest.raises(RuntimeError, match=stale):
        y.backward()
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * w).sum()
    with mg.no_grad():
        x -= 1.0
    with pytest.raises(RuntimeError, match=stale):
        y.backward()
    e = leaf([0.0, 1.0]).exp()  # exp's backward reads its own result
    with mg.no_grad():
        e *= 2.0
    with pytest.raises(RuntimeError, match="the result of 'exp'"):
        e.sum().backward()
    for change in ("detached", "view"):  # one memory, whichever tensor changes it
        z = leaf([1.0, 2.0])
        y = (z * z).sum()
        with mg.no_grad():
            other = z.detach() if change == "detached" else z.reshape(2, 1)
            other += 10.0
        with pytest.raises(RuntimeError, match=stale):
            y.backward()
    fresh = (x * w).sum()  # a graph built after the change is fine
    fresh.backward()
    assert x.grad.tolist() == [3.0, 4.0] and w.grad.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW", "RMSprop"])
def test_an_optimizer_step_makes_the_graph_before_it_stale(optimizer):
    w = leaf([1.0, -1.0])
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    getattr(mg.optim, optimizer)([w], lr=0.5).step()
    with pytest.raises(RuntimeError, match="changed in place after the op ran"):
        loss.backward()
    w.grad = None
    (w * w).sum().backward()  # the usual loop: forward, backward, step, forward again
    assert_allclose(w.grad, 2 * w.numpy())


def test_in_place_arithmetic_that_cannot_fit_the_tensor_says_why():
    counts, values = mg.arange(3), mg.zeros(3)
    with pytest.raises(TypeError, match=r"`\+=` in place: the tensor is int64 of shape \(3,\)"):
        counts += 0.5
    with pytest.raises(ValueError, match=r"got float64 of shape \(2, 3\), which must broadcast"):
        values += np.ones((2, 3))
    assert counts.numpy().tolist() == [0, 1, 2] and values.numpy().tolist() == [0, 0, 0]


def test_a_cast_to_integers_or_booleans_ends_the_graph():
    x = leaf([1.5, -2.5])
    rounded = x.astype(np.int64)
    assert not rounded.requires_grad and not x.astype(bool).requires_grad
    assert rounded.numpy().tolist() == [1, -2]
    (x.astype(np.float32) * rounded).sum().backward()  # only the float path carries gradient
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [1.0, -2.0]


def test_pytorchs_small_conveniences_clone_numel_argmax_abs_and_float():
    x = leaf([[1.0, -4.0, 2.0], [-3.0, 0.5, 6.0]])
    copy = x.clone()
    assert copy.numpy() is not x.numpy() and copy.numpy().tolist() == x.numpy().tolist()
    copy.numpy()[0, 0] = 9.0
    assert x.numpy()[0, 0] == 1.0
    (copy * copy).sum().backward()  # the copy's gradient reaches x unchanged: 2 * copy
    assert_allclose(x.grad, 2 * np.array([[9.0, -4.0, 2.0], [-3.0, 0.5, 6.0]]))
    assert x.numel() == 6
    assert x.argmax().item() == 5 and x.argmin(axis=1).tolist() == [1, 0]
    assert x.argmax(axis=0, keepdims=True).tolist() == [[0, 1, 1]]
    assert not x.argmax().requires_grad
    assert abs(x).numpy().tolist() == [[1.0, 4.0, 2.0], [3.0, 0.5, 6.0]] and abs(x).requires_grad
    assert float(x[1, 2]) == 6.0 and int(x[0, 1]) == -4
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element"):
        float(x)


def test_numpy_takes_tensors_without_gradients_and_refuses_the_others():
    counts = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert np.asarray(counts) is counts.numpy() and np.exp(counts).shape == (2, 2)
    assert np.asarray(counts, dtype=np.float32).dtype == np.float32
    assert mg.tensor([mg.tensor(1.0), mg.tensor(2.0)]).tolist() == [1.0, 2.0]
    weights = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match=r"requires grad.*t.exp\(\), not np.exp\(t\)"):
        np.exp(weights)
    assert (np.array([1.0, 1.0]) + weights).requires_grad  # operators still reach the graph


def test_iteration_formatting_and_integer_results_behave_as_in_pytorch():
    rows = leaf([[1.0, 2.0], [3.0, 4.0]])
    first, second = rows  # iterating yields tensors along the first axis, in the graph
    (first * second).sum().backward()
    assert rows.grad.tolist() == [[3.0, 4.0], [1.0, 2.0]]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(mg.tensor(1.0))
    assert f"{rows.sum():.3f}" == "10.000" and f"{rows}" == repr(rows)
    with pytest.raises(TypeError, match=r"format spec '.3f' needs a one-element tensor"):
        f"{rows:.3f}"
    with pytest.raises(TypeError, match="softmax: needs a floating-point tensor, got int64"):
        mg.tensor([1, 2]).softmax()
    with pytest.raises(TypeError, match="log_softmax: needs a floating-point tensor"):
        mg.tensor([1, 2]).log_softmax()
    assert mg.nn.LayerNorm(np.int64(4)).normalized_shape == (4,)
    assert rows.long().dtype == np.int64 and not rows.long().requires_grad
    with pytest.raises(TypeError, match="no complex gradients"):
        rows.astype(np.complex64)
    assert rows.detach().astype(np.complex64).dtype == np.complex64

    class Sign(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return (x > 0).astype(np.int64)

        @staticmethod
        def backward(ctx, grad):
            return None

    signs = Sign.apply(rows)
    assert signs.dtype == np.int64 and not signs.requires_grad


def test_a_zero_dimensional_tensor_indexed_and_used_directly_sums_both_gradients():
    # NumPy gives scalars, not 0-d arrays, for arithmetic on 0-d arrays; the indexed
    # gradient must still be added into the direct one.
    x = leaf(0.5)
    a = -x
    total = (a[()] * 3.0) + a * 2.0  # d/da = 3 + 2
    total.backward()
    assert x.grad.tolist() == -5.0


def test_arange_keeps_fractional_arguments_as_torch_arange_does():
    assert mg.arange(3).dtype == np.int64 and mg.arange(1, 7, 2).tolist() == [1, 3, 5]
    steps = mg.arange(0, 1, 0.25)
    assert steps.dtype == np.float32 and steps.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert mg.arange(0.5, 3).tolist() == [0.5, 1.5, 2.5]
    assert mg.arange(3, dtype=np.float64).dtype == np.float64


def test_reductions_take_pytorchs_dim_and_keepdim_and_max_with_dim_gives_indices():
    t = leaf([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    assert t.sum(dim=1).tolist() == [9.0, 12.0] and t.mean(dim=0, keepdim=True).shape == (1, 3)
    assert_allclose(t.softmax(dim=0).numpy(), t.softmax(axis=0).numpy())
    assert_allclose(t.softmax(dim=0).numpy().sum(axis=0), [1.0, 1.0, 1.0])
    assert t.log_softmax(dim=1).shape == (2, 3) and t.argmax(dim=1).tolist() == [1, 2]
    assert t.var(dim=1).tolist() == [4.0, 4.0] and t.logsumexp(dim=[0, 1]).shape == ()
    values, indices = t.max(dim=1)  # PyTorch's pair; NumPy's axis= gives the values alone
    assert values.tolist() == [5.0, 6.0] and indices.tolist() == [1, 2]
    assert t.min(dim=0, keepdim=True).indices.tolist() == [[0, 1, 0]]
    assert t.max(axis=1).tolist() == [5.0, 6.0]
    values.sum().backward()
    assert t.grad.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    tied = leaf([[1.0, 3.0], [1.0, 3.0]])
    tied.max(dim=0).values.sum().backward()  # PyTorch: all to the index returned
    assert tied.grad.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert t.max(Tensor(np.full((2, 3), 4.0))).tolist() == [[4.0, 5.0, 4.0], [4.0, 4.0, 6.0]]
    assert t.min(np.full((2, 3), 4.0)).tolist() == [[1.0, 4.0, 3.0], [4.0, 2.0, 4.0]]
    with pytest.raises(TypeError, match=r"sum\(\): give axis or dim, not both"):
        t.sum(axis=0, dim=1)
    with pytest.raises(TypeError, match=r"mean\(\) got unexpected keyword arguments \['dims'\]"):
        t.mean(dims=1)


def test_graph_after_backward_says_the_inputs_were_freed():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    assert loss.graph().count("->") == 3  # x enters mul twice
    loss.backward()
    assert "inputs freed by backward" in loss.graph()


@pytest.mark.parametrize("bad", [lambda g: g[:1], lambda g: g[:, :1], lambda g: g.sum()])
def test_a_function_whose_backward_returns_the_wrong_shape_is_named(bad):
    class Wrong(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return bad(g)

    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"gave a gradient of shape .* input of shape \(2, 3\)"):
        Wrong.apply(x).sum().backward()

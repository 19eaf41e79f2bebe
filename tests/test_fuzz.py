"""Random compositions of ops: gradients match central differences, graphs replay.

Hypothesis draws programs of up to six ops (unary, binary with broadcasting,
reductions, reshapes and transposes, indexing, matmul, joins, layer norm,
linear, cross-entropy, embedding, attention) on random float64 inputs; some
values and inputs are used twice and some inputs are constants.  The `ci`
profile runs 25 programs per property; `HYPOTHESIS_PROFILE=thorough` runs
1000.  What larger runs found is kept at the end as named regression tests.
"""

import warnings

import numpy as np
from hypothesis import given
from strategies import OpProgram, Step, op_programs

import minigrad as mg


@given(program=op_programs())
def test_random_op_programs_have_gradients_that_match_finite_differences(program):
    assert mg.gradcheck(program, program.tensors())


@given(program=op_programs())
def test_random_op_programs_give_one_value_with_or_without_the_graph(program):
    inputs = program.tensors()
    with mg.no_grad():
        plain = program(*inputs).data
    traced = program(*inputs)
    assert traced.requires_grad
    np.testing.assert_array_equal(traced.data, plain)


@given(program=op_programs())
def test_a_second_backward_through_a_retained_graph_doubles_every_gradient(program):
    # A backward rule that changed an array it saved from the forward pass, or the
    # upstream gradient it was given, would make the second walk disagree with the first.
    inputs = program.tensors()
    out = program(*inputs)
    before = out.data.copy()
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream, retain_graph=True)
    first = [None if t.grad is None else t.grad.copy() for t in inputs]
    out.backward(upstream)
    for t, grad in zip(inputs, first, strict=True):
        if grad is not None:
            np.testing.assert_allclose(t.grad, 2 * grad, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(out.data, before)


# ---- regressions: what the large fuzz runs found --------------------------------------


def test_a_power_that_overflows_to_inf_is_quiet_and_has_infinite_gradients():
    # A 10,000-program run printed "RuntimeWarning: overflow encountered in power":
    # pow overflowed with a warning where exp, and PyTorch, overflow quietly to inf.
    program = OpProgram(
        inputs=[np.array([30.0]), np.array([200.0])],
        steps=[Step("neg", (("x", 0),)), Step("pow", (("v", 0), ("x", 1)))],
    )  # (x0 * x0 + 0.5) ** x1 = 900.5 ** 200, beyond float64
    inputs = program.tensors()
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        out = program(*inputs)
        out.backward(np.ones(1))
    assert out.data.tolist() == [np.inf]
    assert inputs[0].grad.tolist() == [np.inf] and inputs[1].grad.tolist() == [np.inf]

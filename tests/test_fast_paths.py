"""The shortcuts the training step takes give the answers of the plain computation.

Each test pits a fast path against a reference written the slow, obvious way
in float64: softmax shifted by the array's maximum, slices whose gradients are
added in place, embedding gradients summed by sorting, the flat AdamW step,
GELU's polynomial, and the allocator setting.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import autograd, optim
from minigrad.nn import functional as F
from minigrad.ops import CACHE_CHUNK
from minigrad.ops.elementwise import _flip_where_negative

# ---- softmax with one shift for the whole array ---------------------------------


def softmax_reference(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@given(
    offsets=st.lists(st.floats(-3000, 3000), min_size=2, max_size=6),
    spread=st.floats(0.01, 60),
)
def test_softmax_of_rows_at_far_apart_levels_matches_each_row_alone(offsets, spread):
    """Rows thousands apart are each shifted by their own maximum where the global one fails."""
    base = np.random.default_rng(len(offsets)).standard_normal((len(offsets), 9)) * spread
    x = (base + np.array(offsets)[:, None]).astype(np.float32)
    want = softmax_reference(x)
    np.testing.assert_allclose(F.softmax(mg.Tensor(x), -1).data, want, rtol=2e-4, atol=1e-30)
    log_want = np.log(np.maximum(want, 1e-300))
    got = F.log_softmax(mg.Tensor(x), -1).data
    finite = want > 1e-30
    np.testing.assert_allclose(got[finite], log_want[finite], rtol=1e-5, atol=2e-3)
    target = np.arange(len(offsets)) % 9
    loss = F.cross_entropy(mg.Tensor(x), target).item()
    assert loss == pytest.approx(-np.mean(log_want[np.arange(len(offsets)), target]), rel=1e-4)


def test_a_nan_row_spoils_only_itself_and_an_all_minus_inf_row_gives_nan_like_pytorch():
    x = np.array([[0.0, 1.0, 2.0], [np.nan, 1.0, 0.0], [-np.inf] * 3], dtype=np.float32)
    s = F.softmax(mg.Tensor(x), -1).data
    np.testing.assert_allclose(s[0], softmax_reference(x[:1])[0], rtol=1e-6)
    assert np.isnan(s[1]).all() and np.isnan(s[2]).all()


def test_attention_heads_at_far_apart_scales_match_a_float64_reference():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((3, 5, 4))
    q[1] *= 400.0  # scores near 1e3 in one head, near 1 in the others
    k, v = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 2))
    mask = np.tril(np.ones((5, 5), dtype=bool))
    got = F.scaled_dot_product_attention(
        *(mg.Tensor(a.astype(np.float32)) for a in (q, k, v)), is_causal=True
    ).data
    scores = np.where(mask, q @ k.swapaxes(-1, -2) / 2.0, -np.inf)
    np.testing.assert_allclose(got, softmax_reference(scores) @ v, rtol=1e-4, atol=1e-5)


# ---- gradients of slices, added in place ------------------------------------------


def test_slices_of_one_tensor_and_a_dense_use_sum_their_gradients():
    x = mg.Tensor(np.arange(6.0), requires_grad=True)
    a = x * 2.0
    w = mg.Tensor(np.zeros(6), requires_grad=True)
    out = (a + w).sum() + (a[1:4] * 10.0).sum() + a[[0, 0, 5]].sum() + a[4:].sum()
    out.backward()
    # d/da: 1 everywhere, +10 on 1..3, +2 at 0 and +1 at 5 (picked twice / once), +1 on 4..5
    want_a = np.array([3.0, 11.0, 11.0, 11.0, 2.0, 3.0])
    np.testing.assert_array_equal(x.grad, 2.0 * want_a)
    np.testing.assert_array_equal(w.grad, np.ones(6))  # the dense gradient was not written into


@pytest.mark.parametrize("once", [True, False])
def test_a_slice_gradient_never_writes_into_a_gradient_the_walk_did_not_allocate(once):
    """An op may hand the same gradient array to several inputs (add does): copy, then add."""
    parent = mg.Tensor(np.zeros(4), requires_grad=True)
    shared = np.ones(4)
    pending, owned = {id(parent): shared}, set()
    index = (slice(1, 3),) if once else (np.array([1, 1]),)
    autograd._add_indexed(pending, owned, parent, autograd.IndexedGrad(index, np.ones(2), once))
    np.testing.assert_array_equal(shared, np.ones(4))
    want = [1.0, 2.0, 2.0, 1.0] if once else [1.0, 3.0, 1.0, 1.0]
    np.testing.assert_array_equal(pending[id(parent)], want)
    assert id(parent) in owned  # the copy is the walk's own now: later slices add in place
    autograd._add_indexed(pending, owned, parent, autograd.IndexedGrad(index, np.ones(2), once))
    np.testing.assert_array_equal(pending[id(parent)], np.array(want) + (np.array(want) - 1))


def test_split_pieces_used_unevenly_match_gradcheck(rng):
    x = mg.Tensor(rng.standard_normal((2, 3, 6)), requires_grad=True)

    def f(t):
        q, k, v = t.split(2, axis=2)
        return (q * k).sum() + (v * v).sum() + t[:, :1].sum()

    assert mg.gradcheck(f, [x])


# ---- embedding gradients summed by sorting -----------------------------------------


@given(
    n_rows=st.integers(1, 12),
    indices=st.lists(st.integers(0, 11), min_size=0, max_size=40),
)
def test_embedding_gradient_sums_repeated_rows_like_add_at(n_rows, indices):
    idx = np.array([i % n_rows for i in indices], dtype=np.int64).reshape(-1)
    weight = mg.Tensor(np.random.default_rng(0).standard_normal((n_rows, 3)), requires_grad=True)
    upstream = np.random.default_rng(1).standard_normal((len(idx), 3))
    F.embedding(idx, weight).backward(upstream)
    want = np.zeros((n_rows, 3))
    np.add.at(want, idx, upstream)
    np.testing.assert_allclose(weight.grad, want, rtol=1e-12, atol=1e-12)


# ---- the flat AdamW step -----------------------------------------------------------


def adamw_reference(params, grads_per_step, lr, betas, eps, decay):
    """AdamW written plainly in float64, one parameter at a time."""
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    steps = [0] * len(params)
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            if g is None:
                continue
            steps[i] += 1
            t = steps[i]
            params[i] *= 1 - lr * decay
            m[i] = betas[0] * m[i] + (1 - betas[0]) * g
            v[i] = betas[1] * v[i] + (1 - betas[1]) * g * g
            m_hat, v_hat = m[i] / (1 - betas[0] ** t), v[i] / (1 - betas[1] ** t)
            params[i] -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@pytest.mark.parametrize(
    "missing",
    [
        [],
        [(2, 1)],  # one parameter has no gradient at step 3: its step count falls behind
        [(0, 2), (1, 1), (3, 2), (4, 1)],  # the group alternates between two subsets
    ],
)
@pytest.mark.parametrize(
    "shapes",
    [
        [(3, 4), (4,), (2, 2, 2)],
        [(CACHE_CHUNK + 3,), (7,), (CACHE_CHUNK // 2, 3)],  # updated in four slices
    ],
)
def test_flat_adamw_matches_the_rule_per_parameter(missing, shapes):
    rng = np.random.default_rng(2)
    start = [rng.standard_normal(s) for s in shapes]
    grads_per_step = [[rng.standard_normal(s) for s in shapes] for _ in range(6)]
    for step, index in missing:
        grads_per_step[step][index] = None
    params = [mg.Tensor(p.copy(), requires_grad=True) for p in start]
    opt = optim.AdamW(params, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for grads in grads_per_step:
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else g.copy()
        opt.step()
    want = adamw_reference(start, grads_per_step, 0.01, (0.9, 0.99), 1e-8, 0.1)
    for p, w in zip(params, want, strict=True):
        np.testing.assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


def test_flat_adamw_resumes_from_its_state_dict_exactly():
    rng = np.random.default_rng(3)
    shapes = [(5, 3), (3,)]
    start = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(8)]

    def run(split_at=None):
        params = [mg.Tensor(p.copy(), requires_grad=True) for p in start]
        opt = optim.AdamW(params, lr=0.003)
        for i, step_grads in enumerate(grads):
            if i == split_at:  # a fresh optimizer loaded from the saved state carries on
                saved = opt.state_dict()
                opt = optim.AdamW(params, lr=0.003)
                opt.load_state_dict(saved)
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.copy()
            opt.step()
        return [p.data for p in params]

    for a, b in zip(run(), run(split_at=4), strict=True):
        np.testing.assert_array_equal(a, b)


def test_adam_with_mixed_dtypes_in_one_group_updates_each_parameter():
    a = mg.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = mg.Tensor(np.ones(2, dtype=np.float64), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad, b.grad = np.ones(3, dtype=np.float32), -np.ones(2)
    opt.step()
    # The first step moves each element by lr * g / (|g| + eps), about 0.1 against g.
    np.testing.assert_allclose(a.data, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b.data, 1 + 0.1 / (1 + 1e-8), rtol=1e-12)
    assert a.dtype == np.float32 and b.dtype == np.float64


# ---- GELU's polynomial -------------------------------------------------------------


def test_float32_gelu_and_its_slope_are_within_float32_resolution_of_float64():
    # long enough to be computed in three slices
    x = mg.Tensor(
        np.linspace(-12, 12, 2 * CACHE_CHUNK + 1001, dtype=np.float32), requires_grad=True
    )
    mg.gelu(x).backward(np.ones(x.shape, dtype=np.float32))
    x64 = x.data.astype(np.float64)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(x64 / math.sqrt(2)))
    want = x64 * cdf
    want_slope = cdf + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    # float32 carries about 6e-8 relative; the polynomial adds at most 1.5e-7 to Phi
    assert np.all(np.abs(mg.gelu(x).data - want) <= 1.5e-7 + 1.2e-7 * np.abs(x64))
    assert np.all(np.abs(x.grad - want_slope) <= 6e-7)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("contiguous", [True, False])
@given(pairs=st.lists(st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)), max_size=40))
def test_sign_flip_by_bits_matches_negating_where_the_sign_bit_is_set(dtype, contiguous, pairs):
    pairs = [(0.0, -0.0), (-3.0, -0.0), (2.5, 0.0), (-1.0, np.inf), (4.0, -np.inf), *pairs]
    values, signs = (np.array(column, dtype=dtype) for column in zip(*pairs, strict=True))
    want = np.where(np.signbit(signs), -values, values)
    if not contiguous:  # every other element of arrays twice as long
        values = np.repeat(values, 2)[::2]
        signs = np.repeat(signs, 2)[::2]
    _flip_where_negative(values, signs, scratch=np.empty_like(values))
    np.testing.assert_array_equal(values, want)
    assert np.array_equal(np.signbit(values), np.signbit(want))  # -0.0 kept apart from 0.0


def test_gelu_of_a_strided_view_longer_than_a_slice_matches_its_contiguous_copy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 300)).astype(np.float32).T  # 210,000 elements, transposed
    view = mg.Tensor(x, requires_grad=True)
    copy = mg.Tensor(np.ascontiguousarray(x), requires_grad=True)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    for t in (view, copy):
        mg.gelu(t).backward(upstream)
    np.testing.assert_array_equal(mg.gelu(view).data, mg.gelu(copy).data)
    np.testing.assert_array_equal(view.grad, copy.grad)
    assert mg.gelu(view).shape == (300, 700)


def test_gelu_near_zero_and_at_signed_zeros_is_continuous():
    tiny = np.float32(1e-30)
    x = np.array([-0.0, 0.0, -tiny, tiny, -1e-4, 1e-4], dtype=np.float32)
    t = mg.Tensor(x, requires_grad=True)
    out = mg.gelu(t)
    out.backward(np.ones(x.shape, dtype=np.float32))
    np.testing.assert_array_equal(out.data[:2], 0)
    np.testing.assert_allclose(t.grad[:4], 0.5, atol=2e-7)  # slope Phi(0) = 1/2 from both sides
    np.testing.assert_allclose(
        out.data[4:], x[4:] * 0.5 + x[4:] ** 2 / math.sqrt(2 * math.pi), rtol=1e-6
    )


# ---- the allocator setting ---------------------------------------------------------

RSS_AFTER_FREEING = """
import numpy as np
import minigrad
blocks = [np.ones(1 << 18, dtype=np.float32) for _ in range(200)]  # 200 MiB in 1 MiB blocks
del blocks
with open("/proc/self/statm") as f:
    print(int(f.read().split()[1]) * 4096 // (1 << 20))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or "glibc" not in os.confstr("CS_GNU_LIBC_VERSION"),
    reason="the setting applies to glibc's malloc",
)
def test_freed_blocks_stay_with_the_process_unless_the_system_malloc_is_asked_for():
    def resident_mib(**env):
        result = subprocess.run(
            [sys.executable, "-c", RSS_AFTER_FREEING],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        return int(result.stdout)

    kept = resident_mib()
    returned = resident_mib(MINIGRAD_SYSTEM_MALLOC="1")
    assert kept > returned + 150, (kept, returned)
    assert resident_mib(MINIGRAD_SYSTEM_MALLOC=" True ") < kept - 150

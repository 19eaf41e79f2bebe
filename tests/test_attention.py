"""Attention: the fused scaled dot-product op, MultiHeadAttention, position encodings,
the GPT's attention, the attention viewer and the word-senses demo."""

import math

import numpy as np
import pytest
from hypothesis import given

import minigrad
from minigrad import Tensor, nn
from minigrad.nn import functional as F
from minigrad.ops.nn import scaled_dot_product_attention as attention_op
from models import attention_view, cli, word_senses
from models.gpt import GPT, GPTConfig
from tests.strategies import attention_cases


def composite_attention(q, k, v, mask=None, is_causal=False, scale=None):
    """The reference: matmul, add or masked_fill, softmax, matmul, each its own node."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    allowed = np.ones(scores.shape[-2:], dtype=bool)
    if is_causal:
        allowed = np.tril(allowed)
    if mask is not None and isinstance(mask, Tensor) and mask.dtype != bool:
        scores = scores + mask
    elif mask is not None:
        allowed = allowed & np.asarray(mask)
    scores = scores.masked_fill(~np.broadcast_to(allowed, scores.shape), -np.inf)
    return scores.softmax(axis=-1) @ v


def leaves(*arrays):
    return [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]


# ---- the fused op ---------------------------------------------------------------------


@given(attention_cases())
def test_fused_attention_passes_gradcheck(case):
    q, k, v, mask, is_causal = case
    inputs = leaves(q, k, v)
    if mask is not None and mask.dtype != bool:
        inputs.append(Tensor(mask, requires_grad=True))  # an additive mask gets a gradient too

        def fn(q, k, v, m):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=is_causal)

    else:

        def fn(q, k, v):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)

    assert minigrad.gradcheck(fn, inputs)


@given(attention_cases())
def test_fused_attention_equals_the_composite_in_value_and_gradient(case):
    q, k, v, mask, is_causal = case
    fused_inputs, composite_inputs = leaves(q, k, v), leaves(q, k, v)
    if mask is not None and mask.dtype != bool:
        fused_mask = Tensor(mask, requires_grad=True)
        composite_mask = Tensor(mask, requires_grad=True)
    else:
        fused_mask = composite_mask = mask
    fused = F.scaled_dot_product_attention(*fused_inputs, attn_mask=fused_mask, is_causal=is_causal)
    composite = composite_attention(*composite_inputs, mask=composite_mask, is_causal=is_causal)
    np.testing.assert_allclose(fused.data, composite.data, rtol=1e-10, atol=1e-12)

    upstream = np.random.default_rng(0).standard_normal(fused.shape)
    fused.backward(upstream)
    composite.backward(upstream)
    for a, b in zip(fused_inputs, composite_inputs, strict=True):
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    if isinstance(fused_mask, Tensor):
        np.testing.assert_allclose(fused_mask.grad, composite_mask.grad, rtol=1e-9, atol=1e-12)


def test_attention_weights_are_probabilities_with_their_own_gradient(rng):
    q, k, v = leaves(*(rng.normal(size=s) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 2)]))
    out, weights = F.scaled_dot_product_attention(q, k, v, need_weights=True)
    assert weights.shape == (2, 3, 5)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0)
    np.testing.assert_allclose(out.data, weights.data @ v.data)

    def both(q, k, v):  # a loss that reads the output and the weights
        out, weights = F.scaled_dot_product_attention(q, k, v, need_weights=True)
        return out.sum(axis=-1) + (weights * weights).sum(axis=-1)

    assert minigrad.gradcheck(both, [q, k, v])


def test_a_boolean_mask_is_true_where_a_query_may_attend():
    q = Tensor(np.zeros((1, 4)))
    k = Tensor(np.zeros((3, 4)))
    v = Tensor(np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]))
    only_last = np.array([[False, False, True]])
    np.testing.assert_array_equal(
        F.scaled_dot_product_attention(q, k, v, attn_mask=only_last).data, [[5.0, 5.0]]
    )
    two_first = np.array([[True, True, False]])  # equal scores: the mean of the allowed values
    np.testing.assert_allclose(
        F.scaled_dot_product_attention(q, k, v, attn_mask=two_first).data, [[0.5, 0.5]]
    )


def test_a_float_mask_is_added_to_the_scores(rng):
    q, k, v = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    bias = rng.normal(size=(3, 3))
    scores = q @ k.T / 2 + bias
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), attn_mask=bias)
    np.testing.assert_allclose(out.data, probs @ v)


def test_is_causal_is_top_left_aligned_and_combines_with_a_mask(rng):
    q, k, v = leaves(rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), np.eye(4))
    _, weights = F.scaled_dot_product_attention(q, k, v, is_causal=True, need_weights=True)
    np.testing.assert_array_equal(weights.data > 0, np.tril(np.ones((3, 4), dtype=bool)))
    no_first = np.array([False, True, True, True])
    _, both = F.scaled_dot_product_attention(
        q, k, v, attn_mask=no_first, is_causal=True, need_weights=True
    )
    np.testing.assert_array_equal(
        both.data[1:] > 0, np.tril(np.ones((3, 4), dtype=bool))[1:] & no_first
    )


@pytest.mark.parametrize("kind", ["bool", "float", "causal"])
def test_a_query_with_nothing_to_attend_to_outputs_zeros_and_no_nan_gradient(rng, kind):
    q, k, v = leaves(*(rng.normal(size=s) for s in [(2, 3, 4), (2, 3, 4), (2, 3, 5)]))
    allowed = np.ones((3, 3), dtype=bool)
    allowed[1] = False  # query 1 may see no key at all
    if kind == "bool":
        mask, is_causal = allowed, False
    elif kind == "float":
        mask, is_causal = np.where(allowed, 0.0, -np.inf), False
    else:
        mask, is_causal = allowed, True
    out, weights = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=is_causal, need_weights=True
    )
    np.testing.assert_array_equal(out.data[:, 1], 0.0)
    np.testing.assert_array_equal(weights.data[:, 1], 0.0)
    (out.sum() + weights.sum()).backward()
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad))
    np.testing.assert_array_equal(q.grad[:, 1], 0.0)  # the empty row passes nothing back

    def fn(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)

    assert minigrad.gradcheck(fn, [q, k, v])


def test_attention_dropout_scales_the_kept_probabilities_and_passes_gradcheck(rng):
    q, k, v = leaves(*(rng.normal(size=s) for s in [(2, 4, 3), (2, 4, 3), (2, 4, 2)]))
    p = 0.3

    def dropped(q, k, v):  # a fresh generator per call: the same mask every time
        return attention_op(q, k, v, dropout_p=p, rng=np.random.default_rng(7))

    _, probs = attention_op(q, k, v, need_weights=True)
    keep = np.random.default_rng(7).random((2, 4, 4)) >= p
    np.testing.assert_allclose(dropped(q, k, v).data, (probs.data * keep / (1 - p)) @ v.data)
    assert minigrad.gradcheck(dropped, [q, k, v])


def test_a_custom_scale_replaces_one_over_sqrt_d(rng):
    q, k, v = rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    scaled = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), scale=1.0)
    manual = F.scaled_dot_product_attention(Tensor(q * 2), Tensor(k), Tensor(v))  # sqrt(4) = 2
    np.testing.assert_allclose(scaled.data, manual.data)


@pytest.mark.parametrize(
    "shapes, mask, message",
    [
        (((2, 3), (4, 5), (4, 2)), None, "one width"),
        (((2, 3), (4, 3), (5, 2)), None, "one value"),
        (((3,), (4, 3), (4, 2)), None, "at least 2 dimensions"),
        (((2, 3), (4, 3), (4, 2)), np.ones((3, 4), dtype=bool), r"mask of shape \(3, 4\)"),
        (((2, 3), (4, 3), (4, 2)), np.ones((2, 4), dtype=np.int64), "dtype int64"),
    ],
)
def test_attention_rejects_inputs_that_do_not_fit(shapes, mask, message):
    q, k, v = (Tensor(np.zeros(s)) for s in shapes)
    with pytest.raises((ValueError, TypeError), match=message):
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_attention_rejects_a_dropout_probability_outside_zero_to_one():
    x = Tensor(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"dropout_p must be in \[0, 1\), got 1.5"):
        F.scaled_dot_product_attention(x, x, x, dropout_p=1.5)


def test_attention_takes_torchs_arguments_in_torchs_order(rng):
    # torch: (query, key, value, attn_mask, dropout_p, is_causal, scale)
    q, k, v = (Tensor(rng.normal(size=(2, 3, 4))) for _ in range(3))
    allowed = np.array([[True, True, False], [True, False, True], [False, True, True]])
    by_position = F.scaled_dot_product_attention(q, k, v, allowed, 0.0, True, 0.5)
    by_name = F.scaled_dot_product_attention(
        q, k, v, attn_mask=allowed, dropout_p=0.0, is_causal=True, scale=0.5
    )
    scores = q.data @ k.data.swapaxes(-1, -2) * 0.5
    scores = np.where(allowed & np.tri(3, dtype=bool), scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    expected = weights / weights.sum(axis=-1, keepdims=True) @ v.data
    np.testing.assert_allclose(by_position.data, expected, rtol=1e-12)
    np.testing.assert_array_equal(by_name.data, by_position.data)
    with pytest.raises(TypeError):
        F.scaled_dot_product_attention(q, k, v, None, 0.0, False, None, True)  # need_weights


def test_fused_attention_matches_torch_sdpa_in_value_and_gradient(rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.normal(size=s) for s in [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)]]
    for mask, is_causal in [
        (None, True),
        (rng.random((3, 5)) > 0.3, False),
        (rng.normal(size=(2, 1, 3, 5)), False),
    ]:
        if mask is not None and mask.dtype == bool:
            mask[:, 0] = True
        ours = leaves(*arrays)
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        out = F.scaled_dot_product_attention(*ours, attn_mask=mask, is_causal=is_causal)
        reference = torch.nn.functional.scaled_dot_product_attention(
            *theirs, attn_mask=None if mask is None else torch.tensor(mask), is_causal=is_causal
        )
        np.testing.assert_allclose(out.data, reference.detach().numpy(), rtol=1e-10, atol=1e-12)
        upstream = rng.normal(size=out.shape)
        out.backward(upstream)
        reference.backward(torch.tensor(upstream))
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-9, atol=1e-12)


# ---- MultiHeadAttention -----------------------------------------------------------------


def test_multi_head_attention_attends_across_sequences_of_other_lengths_and_widths(rng):
    minigrad.manual_seed(0)
    mha = nn.MultiHeadAttention(embed_dim=8, num_heads=2, kdim=6, vdim=5)
    query, key, value = (
        Tensor(rng.normal(size=s).astype(np.float32)) for s in [(3, 4, 8), (3, 7, 6), (3, 7, 5)]
    )
    out, weights = mha(query, key, value, need_weights=True)
    assert out.shape == (3, 4, 8) and weights.shape == (3, 2, 4, 7)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-6)
    assert mha.k_proj.weight.shape == (8, 6) and mha.v_proj.weight.shape == (8, 5)
    # Each projection is an ordinary Linear: the output is out_proj of the mixed values.
    v_heads = mha.v_proj(value).data.reshape(3, 7, 2, 4).transpose(0, 2, 1, 3)
    mixed = (weights.data @ v_heads).transpose(0, 2, 1, 3).reshape(3, 4, 8)
    np.testing.assert_allclose(out.data, mha.out_proj(Tensor(mixed)).data, rtol=1e-5, atol=1e-6)


def test_multi_head_attention_takes_one_mask_per_batch_element(rng):
    minigrad.manual_seed(0)
    mha = nn.MultiHeadAttention(4, 2)
    x = Tensor(rng.normal(size=(2, 3, 4)).astype(np.float32))
    mask = np.ones((2, 3, 3), dtype=bool)
    mask[1, :, 2] = False  # in the second sequence no query sees position 2
    _, weights = mha(x, x, x, mask=mask, need_weights=True)
    np.testing.assert_array_equal(weights.data[1, :, :, 2], 0.0)
    assert np.all(weights.data[0, :, :, 2] > 0)
    _, causal = mha(x, x, x, is_causal=True, need_weights=True)
    np.testing.assert_array_equal(np.triu(causal.data[0, 0], k=1), 0.0)


def test_multi_head_attention_gradients_pass_gradcheck(rng):
    minigrad.manual_seed(0)
    mha = nn.MultiHeadAttention(4, 2, kdim=3, vdim=2).double()
    query, key, value = leaves(
        rng.normal(size=(2, 2, 4)), rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 2))
    )
    bias = np.where(rng.random((2, 3)) > 0.3, 0.0, -1.5)

    def fn(query, key, value, *params):
        return mha(query, key, value, mask=bias)

    params = [mha.q_proj.weight, mha.k_proj.bias, mha.v_proj.weight, mha.out_proj.weight]
    assert minigrad.gradcheck(fn, [query, key, value, *params])


def test_multi_head_attention_matches_torch_with_the_boolean_mask_inverted(rng):
    torch = pytest.importorskip("torch")
    minigrad.manual_seed(0)
    ours = nn.MultiHeadAttention(6, 3, kdim=4, vdim=5).double()
    theirs = torch.nn.MultiheadAttention(6, 3, kdim=4, vdim=5, batch_first=True).double()
    with torch.no_grad():
        theirs.q_proj_weight.copy_(torch.tensor(ours.q_proj.weight.data))
        theirs.k_proj_weight.copy_(torch.tensor(ours.k_proj.weight.data))
        theirs.v_proj_weight.copy_(torch.tensor(ours.v_proj.weight.data))
        theirs.in_proj_bias.copy_(
            torch.tensor(
                np.concatenate(
                    [ours.q_proj.bias.data, ours.k_proj.bias.data, ours.v_proj.bias.data]
                )
            )
        )
        theirs.out_proj.weight.copy_(torch.tensor(ours.out_proj.weight.data))
        theirs.out_proj.bias.copy_(torch.tensor(ours.out_proj.bias.data))
    query, key, value = (rng.normal(size=s) for s in [(2, 3, 6), (2, 4, 4), (2, 4, 5)])
    allowed = rng.random((3, 4)) > 0.4
    allowed[:, 0] = True
    out, weights = ours(Tensor(query), Tensor(key), Tensor(value), mask=allowed, need_weights=True)
    reference, reference_weights = theirs(
        torch.tensor(query),
        torch.tensor(key),
        torch.tensor(value),
        attn_mask=torch.tensor(~allowed),  # torch's MultiheadAttention: True = blocked
        need_weights=True,
        average_attn_weights=False,
    )
    np.testing.assert_allclose(out.data, reference.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, reference_weights.detach().numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, call, message",
    [
        (dict(embed_dim=6, num_heads=4), None, "divisible by num_heads"),
        (dict(embed_dim=4, num_heads=2, dropout=1.0), None, "dropout"),
        (dict(embed_dim=4, num_heads=2), [(2, 3, 5), (2, 3, 4), (2, 3, 4)], r"query has shape"),
        (dict(embed_dim=4, num_heads=2), [(2, 3, 4), (2, 5, 4), (2, 4, 4)], "share the batch"),
    ],
)
def test_multi_head_attention_rejects_sizes_that_do_not_fit(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        mha = nn.MultiHeadAttention(**kwargs)
        mha(*(Tensor(np.zeros(s, dtype=np.float32)) for s in call))


# ---- position encodings -----------------------------------------------------------------


@pytest.mark.parametrize("d_model", [6, 7])
def test_sinusoidal_encoding_holds_sines_and_cosines_of_geometric_frequencies(d_model):
    encoding = nn.SinusoidalPositionalEncoding(d_model, max_len=10)
    table = encoding(np.arange(10)).data
    assert table.shape == (10, d_model)
    for i in range(0, d_model, 2):
        frequency = 10000.0 ** (-i / d_model)
        np.testing.assert_allclose(table[:, i], np.sin(np.arange(10) * frequency), atol=1e-6)
        if i + 1 < d_model:
            cosine = np.cos(np.arange(10) * frequency)
            np.testing.assert_allclose(table[:, i + 1], cosine, atol=1e-6)
    assert list(encoding.parameters()) == [] and encoding.state_dict() == {}


def test_sinusoidal_positions_an_offset_apart_differ_by_one_fixed_rotation():
    table = nn.SinusoidalPositionalEncoding(8, max_len=20).table.astype(np.float64)
    offset = 3
    for pair in range(4):  # columns (2i, 2i + 1) turn at one frequency
        angle = offset * 10000.0 ** (-2 * pair / 8)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        columns = table[:, 2 * pair : 2 * pair + 2]
        np.testing.assert_allclose(columns[:-offset] @ rotation, columns[offset:], atol=1e-6)


def test_learned_encoding_is_a_trained_table_of_positions(rng):
    minigrad.manual_seed(0)
    encoding = nn.LearnedPositionalEncoding(max_len=5, d_model=3)
    assert dict(encoding.named_parameters())["weight"].shape == (5, 3)
    assert encoding.weight.data.std() < 0.05  # N(0, 0.02)
    out = encoding(np.array([4, 1]))
    np.testing.assert_array_equal(out.data, encoding.weight.data[[4, 1]])
    out.sum().backward()
    np.testing.assert_array_equal(encoding.weight.grad.sum(axis=1), [0, 3, 0, 0, 3])


@pytest.mark.parametrize(
    "module", [nn.SinusoidalPositionalEncoding(4, 5), nn.LearnedPositionalEncoding(5, 4)]
)
def test_position_encodings_reject_positions_past_max_len(module):
    with pytest.raises(IndexError, match=r"position 5 is outside \[0, max_len=5\)"):
        module(np.arange(6))


# ---- the GPT's attention ----------------------------------------------------------------


def test_gpt_attention_equals_the_composite_nanogpt_attention(rng):
    minigrad.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=8, block_size=6, vocab_size=7)).double()
    attn = model.transformer.h[0].attn
    x = leaves(rng.normal(size=(2, 5, 8)))[0]
    fused = attn(x)
    q, k, v = attn.c_attn(x).split(8, axis=2)
    q, k, v = (t.reshape(2, 5, 2, 4).transpose(1, 2) for t in (q, k, v))
    y = composite_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 5, 8)
    np.testing.assert_allclose(fused.data, attn.c_proj(y).data, rtol=1e-12)


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_gpt_position_encoding_is_chosen_by_the_config(pos_encoding):
    minigrad.manual_seed(0)
    model = GPT(
        GPTConfig(
            n_layer=1, n_head=2, n_embd=7 * 2, block_size=4, vocab_size=5, pos_encoding=pos_encoding
        )
    )
    names = model.state_dict().keys()
    assert ("transformer.wpe.weight" in names) == (pos_encoding == "learned")
    total = sum(p.size for p in model.parameters())
    assert model.num_parameters() == total - (4 * 14 if pos_encoding == "learned" else 0)
    logits, loss = model(np.zeros((1, 4), dtype=np.int64), np.zeros((1, 4), dtype=np.int64))
    assert logits.shape == (1, 4, 5) and np.isfinite(loss.item())


def test_gpt_config_rejects_an_unknown_position_encoding():
    with pytest.raises(ValueError, match=r"pos_encoding must be one of .* got 'rotary'"):
        GPTConfig(pos_encoding="rotary")


def test_attention_weights_are_causal_probabilities_for_every_layer_and_head():
    minigrad.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=3, n_embd=12, block_size=8, vocab_size=5))
    model.train()
    weights = model.attention_weights(np.array([[1, 2, 3, 4, 0]]))
    assert len(weights) == 2 and all(w.shape == (1, 3, 5, 5) for w in weights)
    for w in weights:
        np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(np.triu(w[0, 0], k=1), 0.0)
    assert model.training and not model.transformer.h[0].attn.record_weights


# ---- the viewer and the demo ------------------------------------------------------------


@pytest.fixture
def trained_dir(tmp_path):
    from models.train import TrainConfig, train

    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 30, encoding="utf-8")
    config = TrainConfig(
        data=str(text),
        out_dir=str(tmp_path / "run"),
        n_layer=2,
        n_head=2,
        n_embd=8,
        block_size=16,
        batch_size=2,
        max_iters=2,
        eval_interval=2,
        eval_iters=1,
    )
    train(config, log=lambda line: None)
    return tmp_path / "run"


def test_attention_command_prints_the_most_attended_positions_without_matplotlib(
    trained_dir, capsys, monkeypatch
):
    def no_matplotlib(*args, **kwargs):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(attention_view, "draw_attention", no_matplotlib)
    assert cli.main(["attention", "--out_dir", str(trained_dir), "--text", "to be"]) == 0
    printed = capsys.readouterr().out
    assert "5 tokens, 2 layers of 2 heads" in printed
    assert "layer 1 head 1:" in printed
    assert "    0 't' <- 't'@0 1.00" in printed  # the first position can only see itself
    assert "pip install '.[plot]' from the checkout" in printed
    assert not (trained_dir / "attention.png").exists()


def test_attention_command_draws_one_png_grid(trained_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    argv = [
        "attention",
        "--out_dir",
        str(trained_dir),
        "--text",
        "that is",
        "--plot_dir",
        str(plots),
    ]
    assert cli.main(argv) == 0
    png = plots / "attention.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"attention heatmaps: {png}" in capsys.readouterr().out


def test_attention_command_names_a_character_the_model_does_not_know(trained_dir, capsys):
    assert cli.main(["attention", "--out_dir", str(trained_dir), "--text", "to bZ"]) == 2
    assert "--text: character 'Z' at position 4" in capsys.readouterr().err


def test_word_senses_attention_pulls_the_two_senses_apart_and_keeps_each_together():
    result = word_senses.run(steps=60, log=lambda line: None)
    (before_different, after_different) = result["mean"]["different senses"]
    (before_same, after_same) = result["mean"]["same sense"]
    assert before_different == pytest.approx(1.0) and before_same == pytest.approx(1.0)
    assert after_different < 0.6
    assert after_same > 0.85
    assert after_same - after_different > 0.4
    label, a, b, before, after = result["pairs"][0]
    assert label == "fruit vs company" and "apple" in a and "apple" in b


def test_senses_command_prints_similarities_before_and_after_attention(capsys):
    assert cli.main(["senses", "--steps", "20", "--batch_size", "16"]) == 0
    printed = capsys.readouterr().out
    assert "before   after attention" in printed
    assert "different senses" in printed and "same sense" in printed

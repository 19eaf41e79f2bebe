"""Sampling: the key/value cache against full recomputation, top-k, top-p, the sample command."""

import warnings

import numpy as np
import pytest

import minigrad
from models import cli
from models import sample as sample_command
from models.gpt import GPT, GPTConfig, KVCache, nucleus, sample_next
from models.train import TrainConfig, train


def tiny_gpt(**overrides) -> GPT:
    minigrad.manual_seed(0)
    config = dict(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11, **overrides)
    model = GPT(GPTConfig(**config))
    rng = np.random.default_rng(1)
    for p in model.parameters():  # larger weights than the init, so positions matter
        p.data += rng.normal(0.0, 0.3, p.shape).astype(p.dtype)
    return model


# ---- the key/value cache ----------------------------------------------------------------


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
def test_cached_logits_equal_full_recomputation_at_every_position(pos_encoding):
    model = tiny_gpt(pos_encoding=pos_encoding).eval()
    idx = np.random.default_rng(0).integers(0, 11, (2, 8))
    cache = KVCache(model.config)
    with minigrad.no_grad():
        prefix, _ = model(idx[:, :3], kv_cache=cache)  # a prompt of three tokens at once
        steps = [prefix.data[:, -1]]
        for t in range(3, 8):
            logits, _ = model(idx[:, t : t + 1], kv_cache=cache)
            steps.append(logits.data[:, -1])
        for t, cached in zip(range(3, 9), steps, strict=True):
            full, _ = model(idx[:, :t])
            np.testing.assert_allclose(cached, full.data[:, -1], rtol=1e-4, atol=1e-5)
    assert cache.length == 8


@pytest.mark.parametrize(
    "settings",
    [
        dict(temperature=0),
        dict(temperature=1.0),
        dict(temperature=0.7, top_k=4),
        dict(temperature=1.3, top_p=0.8),
    ],
    ids=["greedy", "temperature", "top_k", "top_p"],
)
def test_generation_with_the_cache_gives_the_tokens_of_full_recomputation(settings):
    model = tiny_gpt()
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    # 20 new tokens with block_size 8: the window fills, then slides for 15 tokens.
    cached = model.generate(prompt, 20, rng=np.random.default_rng(5), use_cache=True, **settings)
    full = model.generate(prompt, 20, rng=np.random.default_rng(5), use_cache=False, **settings)
    np.testing.assert_array_equal(cached, full)
    assert cached.shape == (2, 23)


def test_generation_past_block_size_conditions_on_the_last_block_size_tokens_only():
    model = tiny_gpt()
    prompt = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1]])  # longer than block_size 8
    out = model.generate(prompt, 6, temperature=0)
    expected = prompt
    for _ in range(6):
        logits, _ = model(expected[:, -8:])
        expected = np.concatenate([expected, logits.data[:, -1].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(out, expected)


def test_a_kv_cache_refuses_to_run_while_gradients_are_recorded():
    model = tiny_gpt()
    with pytest.raises(RuntimeError, match="no_grad"):
        model(np.zeros((1, 2), dtype=np.int64), kv_cache=KVCache(model.config))


def test_a_kv_cache_refuses_more_positions_than_block_size():
    model = tiny_gpt()
    cache = KVCache(model.config)
    with minigrad.no_grad():
        model(np.zeros((1, 6), dtype=np.int64), kv_cache=cache)
        with pytest.raises(ValueError, match="3 new tokens after 6 cached ones exceed block"):
            model(np.zeros((1, 3), dtype=np.int64), kv_cache=cache)


# ---- top-k and top-p --------------------------------------------------------------------


def test_top_k_larger_than_the_vocabulary_is_clamped_to_all_of_it():
    logits = np.random.default_rng(0).normal(size=(50, 11))
    wide = sample_next(logits, 1.0, 1000, np.random.default_rng(3))
    plain = sample_next(logits, 1.0, None, np.random.default_rng(3))
    np.testing.assert_array_equal(wide, plain)


def test_nucleus_keeps_the_smallest_set_of_likeliest_tokens_reaching_top_p():
    probs = np.array([[0.1, 0.5, 0.05, 0.3, 0.05]])
    np.testing.assert_array_equal(nucleus(probs, 0.45) > 0, [[False, True, False, False, False]])
    np.testing.assert_array_equal(nucleus(probs, 0.75) > 0, [[False, True, False, True, False]])
    np.testing.assert_array_equal(nucleus(probs, 0.85) > 0, [[True, True, False, True, False]])
    np.testing.assert_array_equal(nucleus(probs, 1.0) > 0, probs > 0)
    np.testing.assert_array_equal(nucleus(probs, 0.75), [[0.0, 0.5, 0.0, 0.3, 0.0]])


def test_top_p_draws_only_from_the_nucleus_in_proportion():
    logits = np.log(np.tile([[0.1, 0.5, 0.05, 0.3, 0.05]], (4000, 1)))
    draws = sample_next(logits, 1.0, None, np.random.default_rng(0), top_p=0.75)
    assert set(draws.tolist()) == {1, 3}
    assert np.mean(draws == 1) == pytest.approx(0.5 / 0.8, abs=0.03)


def test_a_tiny_top_p_draws_only_the_most_likely_token():
    logits = np.random.default_rng(0).normal(size=(300, 11))
    draws = sample_next(logits, 1.5, None, np.random.default_rng(1), top_p=1e-9)
    np.testing.assert_array_equal(draws, logits.argmax(axis=-1))


@pytest.mark.parametrize("top_k", [None, 3])
def test_a_temperature_too_small_to_divide_by_samples_the_most_likely_token(top_k):
    logits = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draws = sample_next(logits, 1e-310, top_k, np.random.default_rng(1))
    np.testing.assert_array_equal(draws, logits.argmax(axis=-1))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_sampling_from_logits_that_overflowed_raises_instead_of_drawing_token_0(bad):
    logits = np.zeros((3, 5))
    logits[1, 2] = bad
    with pytest.raises(ValueError, match=r"logits hold NaN or inf \(in row 1 of 3\)"):
        sample_next(logits, 1.0, None, np.random.default_rng(0))


@pytest.mark.parametrize("top_p", [0.0, 1.5, -0.1])
def test_generate_rejects_top_p_outside_zero_to_one(top_p):
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        tiny_gpt().generate(np.zeros((1, 1), dtype=np.int64), 2, top_p=top_p)


@pytest.mark.parametrize(
    "prompt, arguments, error, message",
    [
        ([[0]], dict(max_new_tokens=2, temperature=float("nan")), ValueError, "temperature"),
        ([[0]], dict(max_new_tokens=-1), ValueError, "max_new_tokens must be >= 0, got -1"),
        ([[0]], dict(max_new_tokens=2.0), TypeError, "max_new_tokens must be a whole number"),
        ([[1.7]], dict(max_new_tokens=2), TypeError, "idx must hold integer token ids"),
        ([[0]], dict(max_new_tokens=2, top_k=2.5), ValueError, "top_k must be a whole number"),
    ],
)
def test_generate_refuses_arguments_it_would_misread(prompt, arguments, error, message):
    with pytest.raises(error, match=message):
        tiny_gpt().generate(np.array(prompt), **arguments)


# ---- the sample command -----------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample")
    text = folder / "text.txt"
    text.write_text("the cat sat on the mat. " * 60, encoding="utf-8")
    config = TrainConfig(
        data=str(text),
        out_dir=str(folder / "run"),
        n_layer=1,
        n_head=2,
        n_embd=16,
        block_size=8,
        batch_size=4,
        max_iters=30,
        eval_interval=30,
        eval_iters=1,
        learning_rate=1e-2,
        warmup_iters=0,
    )
    train(config, log=lambda line: None)
    return folder / "run"


def test_sample_with_a_tiny_top_p_is_greedy(checkpoint, capsys):
    common = [
        "sample",
        "--out_dir",
        str(checkpoint),
        "--start",
        "the",
        "--num_samples",
        "2",
        "--max_new_tokens",
        "20",
    ]
    assert cli.main([*common, "--top_p", "1e-9", "--seed", "1"]) == 0
    nucleus_text = capsys.readouterr().out
    assert cli.main([*common, "--temperature", "0"]) == 0
    assert nucleus_text == capsys.readouterr().out


def test_sample_without_the_cache_prints_the_same_text(checkpoint, capsys):
    common = [
        "sample",
        "--out_dir",
        str(checkpoint),
        "--start",
        "the",
        "--max_new_tokens",
        "30",
        "--top_p",
        "0.9",
        "--seed",
        "3",
    ]
    assert cli.main(common) == 0
    cached = capsys.readouterr().out
    assert cli.main([*common, "--no_cache"]) == 0
    assert capsys.readouterr().out == cached


def test_sample_rejects_top_p_above_one(checkpoint, capsys):
    assert cli.main(["sample", "--out_dir", str(checkpoint), "--top_p", "2"]) == 2
    assert "--top_p must be in (0, 1], got 2.0" in capsys.readouterr().err


def test_sampling_out_of_memory_exits_2_naming_the_flags(checkpoint, capsys, monkeypatch):
    def exhausted(args):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (1000000000, 10)")

    monkeypatch.setattr(sample_command, "sample", exhausted)
    flags = ["--start", "the", "--num_samples", "1000000000", "--max_new_tokens", "1"]
    assert cli.main(["sample", "--out_dir", str(checkpoint), *flags]) == 2
    err = capsys.readouterr().err
    assert "error: out of memory (Unable to allocate 74.5 GiB" in err
    assert "--num_samples 1000000000 sequences of up to --max_new_tokens 1" in err

"""Tokenizers: byte-pair encoding trained here and served by tiktoken, and the trainer using it."""

import json
import re

import numpy as np
import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from models import cli
from models.checkpoint import load_checkpoint
from models.data import load_text
from models.sample import load_model
from models.tokenizers import (
    SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    tokenizer_from_dict,
    train_bpe,
)

VERSE = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun. 1597 quartos, 1623 folio.\n"
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n"
) * 20


@pytest.fixture(scope="module")
def verse_tokenizer():
    return BPETokenizer.train(VERSE, 300)


def reference_encode(tokenizer: BPETokenizer, text: str) -> list[int]:
    """Byte-pair encoding written out in Python: in each piece, merge the lowest-ranked pair."""
    rank = {token: i for i, token in enumerate(tokenizer.tokens)}
    ids = []
    for piece in regex.findall(tokenizer.pattern, text):
        parts = [bytes([b]) for b in piece.encode("utf-8")]
        while len(parts) > 1:
            ranks = [rank.get(a + b, len(rank)) for a, b in zip(parts, parts[1:], strict=False)]
            best = int(np.argmin(ranks))
            if ranks[best] == len(rank):
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        ids.extend(rank[p] for p in parts)
    return ids


@given(st.text())
def test_any_unicode_text_round_trips_through_encode_and_decode(verse_tokenizer, text):
    ids = verse_tokenizer.encode(text)
    assert ids.dtype == np.int64
    assert verse_tokenizer.decode(ids) == text


def test_merges_are_learned_most_frequent_pair_first():
    # Pieces: "abababab" (a b: 4, b a: 3), " cdcd" (c d: 2), " ef".
    tokens = train_bpe("abababab cdcd ef", 260)
    assert tokens[:256] == [bytes([b]) for b in range(256)]
    # 'ab' (4), then 'abab' (the pair ab ab now occurs 3 times), then 'cd' (2); then
    # every pair left occurs once, and the tie goes to the smallest ids: (' ', 'e').
    assert tokens[256:] == [b"ab", b"abab", b"cd", b" e"]


def test_training_stops_with_a_warning_when_no_pairs_are_left():
    with pytest.warns(UserWarning, match="no pairs left to merge after 258 tokens"):
        tokens = train_bpe("abc", 300)
    assert tokens[256:] == [b"ab", b"abc"]


def test_merges_never_cross_a_piece_of_the_split_pattern(verse_tokenizer):
    pieces = set(regex.findall(SPLIT_PATTERN, VERSE))
    for token in verse_tokenizer.tokens[256:]:
        text = token.decode("utf-8")
        assert any(text in piece for piece in pieces)
        assert not re.search(r"\w[ \n]", text)  # a word never takes the space after it


def test_tiktoken_encodes_exactly_as_applying_the_learned_merges(verse_tokenizer):
    for text in [VERSE[:300], "Romeo, wherefore? 12345 windows", "naïve café, 東京 ✓"]:
        assert verse_tokenizer.encode(text).tolist() == reference_encode(verse_tokenizer, text)


@pytest.mark.parametrize("vocab_size", [0, 255, -1])
def test_a_vocab_size_below_256_is_rejected(vocab_size):
    with pytest.raises(ValueError, match=f"vocab_size must be at least 256.*got {vocab_size}"):
        BPETokenizer.train(VERSE, vocab_size)


@pytest.mark.parametrize("vocab_size", [300.0, "512", True, None])
def test_a_vocab_size_that_is_not_an_integer_is_rejected(vocab_size):
    with pytest.raises(TypeError, match="vocab_size must be an integer"):
        BPETokenizer.train(VERSE, vocab_size)


def test_saving_and_loading_gives_identical_encodings(verse_tokenizer):
    state = json.loads(json.dumps(verse_tokenizer.to_dict()))
    assert state["kind"] == "bpe" and len(state["tokens"]) == 300
    assert bytes.fromhex(state["tokens"][256]) == verse_tokenizer.tokens[256]
    loaded = tokenizer_from_dict(state)
    assert loaded.tokens == verse_tokenizer.tokens
    for text in [VERSE, "unseen words: zebra, quokka; 42", "é\n\n  x"]:
        np.testing.assert_array_equal(loaded.encode(text), verse_tokenizer.encode(text))


def test_decode_names_a_token_id_outside_the_vocabulary(verse_tokenizer):
    with pytest.raises(ValueError, match=r"token id 300 is outside the vocabulary \[0, 300\)"):
        verse_tokenizer.decode([5, 300])


def test_tokens_must_begin_with_the_256_bytes():
    with pytest.raises(ValueError, match="256 single bytes"):
        BPETokenizer([b"a", b"b"])


def test_bpe_on_the_bundled_corpus_learns_256_merges_that_compress_it():
    text = load_text()
    tokenizer = BPETokenizer.train(text, 512)
    assert tokenizer.vocab_size == 512
    assert b" the" in tokenizer.tokens[256:300]  # among the first merges of English
    ids = tokenizer.encode(text)
    assert len(text) / len(ids) > 1.8
    assert tokenizer.decode(ids[:1000]) == text[: len(tokenizer.decode(ids[:1000]))]


def test_char_tokenizer_and_bpe_restore_from_their_dicts():
    char = CharTokenizer.from_text("hello")
    assert tokenizer_from_dict(char.to_dict()).chars == char.chars
    with pytest.raises(ValueError, match="unknown tokenizer kind 'words'"):
        tokenizer_from_dict({"kind": "words"})


# ---- end to end: train and sample with BPE ----------------------------------------------


def test_train_with_bpe_then_sample_from_the_checkpoint(tmp_path, capsys):
    corpus = tmp_path / "verse.txt"
    corpus.write_text(VERSE, encoding="utf-8")
    out_dir = tmp_path / "bpe"
    argv = [
        "train",
        "--data",
        str(corpus),
        "--out_dir",
        str(out_dir),
        "--tokenizer",
        "bpe",
        "--vocab_size",
        "300",
        "--n_layer",
        "1",
        "--n_head",
        "2",
        "--n_embd",
        "16",
        "--block_size",
        "16",
        "--batch_size",
        "4",
        "--max_iters",
        "4",
        "--eval_interval",
        "4",
        "--eval_iters",
        "1",
        "--pos_encoding",
        "sinusoidal",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "trained a BPE tokenizer of 300 tokens in" in printed
    assert "vocab size 300" in printed

    _, metadata = load_checkpoint(out_dir)
    assert metadata["tokenizer"]["kind"] == "bpe"
    assert metadata["model"]["vocab_size"] == 300
    assert metadata["model"]["pos_encoding"] == "sinusoidal"
    model, tokenizer = load_model(str(out_dir))
    assert tokenizer.encode(VERSE).tolist() == BPETokenizer.train(VERSE, 300).encode(VERSE).tolist()
    assert model.config.pos_encoding == "sinusoidal"

    argv = [
        "sample",
        "--out_dir",
        str(out_dir),
        "--start",
        "ROMEO: wherefore",
        "--num_samples",
        "1",
        "--max_new_tokens",
        "12",
        "--seed",
        "2",
    ]
    assert cli.main(argv) == 0
    sample = capsys.readouterr().out.split("---------------")[0]
    assert sample.startswith("ROMEO: wherefore") and len(sample) > len("ROMEO: wherefore")


def test_resuming_a_bpe_run_keeps_its_tokenizer(tmp_path, capsys):
    corpus = tmp_path / "verse.txt"
    corpus.write_text(VERSE, encoding="utf-8")
    common = [
        "train",
        "--data",
        str(corpus),
        "--out_dir",
        str(tmp_path / "run"),
        "--tokenizer",
        "bpe",
        "--vocab_size",
        "290",
        "--n_layer",
        "1",
        "--n_head",
        "2",
        "--n_embd",
        "8",
        "--block_size",
        "8",
        "--batch_size",
        "2",
        "--eval_interval",
        "2",
        "--eval_iters",
        "1",
    ]
    assert cli.main([*common, "--max_iters", "2"]) == 0
    first = load_checkpoint(tmp_path / "run")[1]["tokenizer"]
    assert cli.main([*common, "--max_iters", "4", "--resume"]) == 0
    assert "resuming from iteration 2" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "run")[1]["tokenizer"] == first


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tokenizer", "bpe", "--vocab_size", "100"], "--vocab_size must be at least 256"),
        (["--pos_encoding", "rotary"], "invalid choice: 'rotary'"),
        (["--tokenizer", "words"], "invalid choice: 'words'"),
    ],
)
def test_bad_tokenizer_and_position_flags_are_named(tmp_path, capsys, flags, message):
    argv = ["train", "--out_dir", str(tmp_path / "x"), *flags]
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse rejects a value outside `choices` itself
        code = exit.code
    assert code == 2
    assert message in capsys.readouterr().err

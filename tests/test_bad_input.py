"""Bad input across the public API and damaged files: a specific exception naming the problem.

Each case checks the exception's type and that its message names the argument
(or op), the value or shape it got, and what was expected.
"""

import re

import numpy as np
import pytest
from hypothesis import given
from strategies import non_broadcastable_shapes

import minigrad as mg
import models.train as train_module
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.serialization import load_metadata
from models import cli, rnn_cli
from models.checkpoint import load_checkpoint
from models.data import load_text, split_ids
from models.gpt import GPT, GPTConfig, KVCache
from models.tokenizers import CharTokenizer
from models.train import TrainConfig, train

BINARY_OPS = {
    "add": mg.add,
    "sub": mg.sub,
    "mul": mg.mul,
    "div": mg.div,
    "pow": mg.pow,
    "maximum": mg.maximum,
    "minimum": mg.minimum,
}
OPERATORS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


def ones(shape):
    return mg.tensor(np.ones(shape))


# ---- shapes in elementwise ops and matmul ---------------------------------------


@pytest.mark.parametrize("name", BINARY_OPS)
@given(shapes=non_broadcastable_shapes())
def test_every_binary_op_names_itself_and_both_shapes_when_they_do_not_broadcast(name, shapes):
    a, b = shapes
    expected = f"{name}: shapes {a} and {b} cannot be broadcast together"
    with pytest.raises(ValueError, match=re.escape(expected)):
        BINARY_OPS[name](ones(a), ones(b))


@pytest.mark.parametrize("name", OPERATORS)
def test_the_arithmetic_operators_name_the_op_and_both_shapes(name):
    expected = f"{name}: shapes (2, 3) and (4,) cannot be broadcast together"
    with pytest.raises(ValueError, match=re.escape(expected)):
        OPERATORS[name](ones((2, 3)), ones((4,)))


def test_where_names_both_operand_shapes_and_the_condition_shape():
    with pytest.raises(ValueError, match=re.escape("where: shapes (2, 3) and (4,) and condition")):
        mg.where(np.ones((2, 3), dtype=bool), ones((2, 3)), ones((4,)))
    with pytest.raises(ValueError, match=re.escape("and condition (5,) cannot be broadcast")):
        mg.where(np.ones(5, dtype=bool), ones((2, 3)), ones((2, 3)))


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ((2, 3), (4, 5), "shapes (2, 3) and (4, 5) do not chain: a's last axis (3) must equal "
         "b's second-to-last axis"),
        ((2, 3), (4,), "shapes (2, 3) and (4,) do not chain: a's last axis (3) must equal "
         "b's only axis"),
        ((3,), (2, 5), "shapes (3,) and (2, 5) do not chain"),
        ((2, 2, 3), (3, 3, 2), "shapes (2, 2, 3) and (3, 3, 2) have batch axes that cannot be "
         "broadcast"),
        ((), (2, 3), "shapes () and (2, 3) include a scalar"),
    ],
)  # fmt: skip
def test_matmul_names_itself_both_shapes_and_the_axes_that_disagree(a, b, expected):
    with pytest.raises(ValueError, match=re.escape(f"matmul: {expected}")):
        ones(a) @ ones(b)


# ---- class targets and token ids -------------------------------------------------


@pytest.mark.parametrize(
    "target, error, expected",
    [
        ([0.0, 1.0, 2.0], TypeError, "target must hold integer class indices, got dtype float"),
        ([True, False, True], TypeError, "target must hold integer class indices, got dtype bool"),
        ([0, 1, 5], IndexError, "target holds class 5, expected classes in [0, 5)"),
        ([0, -2, 1], IndexError, "target holds class -2, expected classes in [0, 5)"),
        ([0, 1], ValueError, "target has shape (2,), expected (3,) for logits (3, 5)"),
    ],
)
def test_cross_entropy_names_a_target_of_the_wrong_dtype_range_or_shape(target, error, expected):
    logits = mg.tensor(np.zeros((3, 5)), requires_grad=True)
    with pytest.raises(error, match=re.escape(f"cross_entropy: {expected}")):
        F.cross_entropy(logits, np.array(target))


@pytest.mark.parametrize(
    "indices, error, expected",
    [
        ([1, 10], IndexError, "index 10 is outside the table's 10 rows [0, 10)"),
        ([-1], IndexError, "index -1 is outside the table's 10 rows [0, 10)"),
        ([1.0], TypeError, "indices must be integers, got dtype float64"),
    ],
)
def test_embedding_names_an_index_outside_its_table(indices, error, expected):
    mg.manual_seed(0)
    with pytest.raises(error, match=re.escape(f"embedding: {expected}")):
        nn.Embedding(10, 4)(np.array(indices))


@pytest.mark.parametrize("column", [-1, 3])
def test_gather_refuses_an_index_outside_the_axis_without_wrapping(column):
    table = mg.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(IndexError, match=r"gather: index values must lie in \[0, 3\) along"):
        table.gather(1, np.array([[column], [0]]))


def test_optimizer_state_for_a_parameter_it_does_not_have_is_refused():
    p = nn.Parameter(np.ones(2))
    saved = mg.optim.Adam([p]).state_dict()
    for index in (5, -1, "x"):
        saved["state"] = {index: {"step": 1}}
        with pytest.raises(ValueError, match=r"state for parameter .* expected indices 0 to 0"):
            mg.optim.Adam([nn.Parameter(np.ones(2))]).load_state_dict(saved)


@pytest.fixture(scope="module")
def gpt():
    mg.manual_seed(0)
    return GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))


@pytest.mark.parametrize(
    "idx, error, expected",
    [
        ([[1, 12]], IndexError, "idx holds token id 12, expected ids in [0, vocab_size=10)"),
        ([[1, -1]], IndexError, "idx holds token id -1, expected ids in [0, vocab_size=10)"),
        ([[1.5, 2.0]], TypeError, "idx must hold integer token ids, got dtype float64"),
        ([[0] * 9], ValueError, "idx's sequence of length 9 is longer than block_size 8"),
        ([0, 1], ValueError, "idx must be (batch, time) token ids, got shape (2,)"),
    ],
)
def test_gpt_forward_names_token_ids_outside_the_vocabulary_and_overlong_contexts(
    gpt, idx, error, expected
):
    with pytest.raises(error, match=re.escape(f"GPT: {expected}")):
        gpt(np.array(idx))


@pytest.mark.parametrize(
    "targets, error, expected",
    [
        ([[1, 10]], IndexError, "targets holds token id 10, expected ids in [0, vocab_size=10)"),
        ([[1, -2]], IndexError, "targets holds token id -2"),
        ([[1, 2, 3]], ValueError, "targets has shape (1, 3), expected idx's shape (1, 2)"),
    ],
)
def test_gpt_forward_names_targets_outside_the_vocabulary_or_of_another_shape(
    gpt, targets, error, expected
):
    with pytest.raises(error, match=re.escape(f"GPT: {expected}")):
        gpt(np.array([[1, 2]]), np.array(targets))


def test_gpt_forward_accepts_the_ignored_target_minus_one(gpt):
    _, loss = gpt(np.array([[1, 2]]), np.array([[3, -1]]))
    _, only_first = gpt(np.array([[1]]), np.array([[3]]))
    assert loss.item() == pytest.approx(only_first.item(), rel=1e-6)


def test_a_key_value_cache_that_would_overflow_block_size_is_named(gpt):
    cache = KVCache(gpt.config)
    with mg.no_grad():
        gpt(np.zeros((1, 6), dtype=np.int64), kv_cache=cache)
        with pytest.raises(ValueError, match=re.escape("GPT: 3 new tokens after 6 cached ones")):
            gpt(np.zeros((1, 3), dtype=np.int64), kv_cache=cache)


def test_generate_names_a_prompt_token_outside_the_vocabulary(gpt):
    with pytest.raises(IndexError, match=re.escape("GPT: idx holds token id 11")):
        gpt.generate(np.array([[1, 11]]), max_new_tokens=2)


# ---- corpora and prompts ------------------------------------------------------------


def test_an_empty_corpus_is_named(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"--data: {path} is empty")):
        load_text(path)


def test_a_corpus_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=re.escape(f"--data: {path} is not UTF-8 text")):
        load_text(path)


def test_a_corpus_shorter_than_block_size_plus_one_names_both_lengths(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("to be or not to be, " * 5, encoding="utf-8")
    config = TrainConfig(data=str(path), out_dir=str(tmp_path / "o"), block_size=16)
    with pytest.raises(ValueError, match=re.escape("split has 10 tokens, fewer than block_size")):
        train(config, log=lambda line: None)
    with pytest.raises(ValueError, match=re.escape("the training split has 3 tokens")):
        split_ids(np.arange(4), block_size=3)


def test_a_prompt_with_a_character_the_tokenizer_never_saw_is_named():
    tokenizer = CharTokenizer.from_text("to be or not")
    expected = "character 'Z' at position 3 is not in the tokenizer's vocabulary of 7 characters"
    with pytest.raises(ValueError, match=re.escape(expected)):
        tokenizer.encode("to Zee")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint of two iterations on a small corpus: (corpus, out_dir)."""
    root = tmp_path_factory.mktemp("trained")
    corpus = root / "verse.txt"
    corpus.write_text("But soft, what light through yonder window breaks?\n" * 20)
    config = TrainConfig(
        data=str(corpus), out_dir=str(root / "out"), n_layer=1, n_head=1, n_embd=8,
        block_size=8, batch_size=2, max_iters=2, eval_interval=2, eval_iters=1,
    )  # fmt: skip
    train(config, log=lambda line: None)
    return corpus, root / "out"


def test_sampling_a_prompt_with_an_unseen_character_exits_2_naming_it(trained, capsys):
    _, out_dir = trained
    assert cli.main(["sample", "--out_dir", str(out_dir), "--start", "But Z"]) == 2
    assert "--start: character 'Z' at position 4 is not in" in capsys.readouterr().err


# ---- command-line values ------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--n_layer", "-1"], "--n_layer must be positive, got -1"),
        (["--n_embd", "-8"], "--n_embd must be positive, got -8"),
        (["--n_head", "0"], "--n_head must be positive, got 0"),
        (["--block_size", "0"], "--block_size must be positive, got 0"),
        (["--batch_size", "-4"], "--batch_size must be positive, got -4"),
        (["--eval_interval", "0"], "--eval_interval must be positive, got 0"),
        (["--max_iters", "-5"], "--max_iters must be >= 0, got -5"),
        (["--learning_rate", "-0.001"], "--learning_rate must be >= 0, got -0.001"),
        (["--learning_rate", "nan"], "--learning_rate must be a finite number, got nan"),
        (["--grad_clip", "inf"], "--grad_clip must be a finite number, got inf"),
        (["--n_embd", "30", "--n_head", "4"], "--n_embd (30) must be divisible by --n_head (4)"),
        (["--dropout", "1.0"], "--dropout must be in [0, 1), got 1.0"),
        (["--beta2", "1.5"], "--beta2 must be in [0, 1), got 1.5"),
        (["--tokenizer", "bpe", "--vocab_size", "100"], "--vocab_size must be at least 256"),
        (["--vocab_size", "300"], "--vocab_size 300: it sizes the BPE tokenizer, and this run's"),
        (["--vocab_size=300"], "add --tokenizer bpe or leave --vocab_size out"),
        (["--block_size", "4000"], "fewer than block_size + 1 = 4001"),
        (["--block_size", "1000000"], "GiB for the attention weights alone, more than this"),
        (["--min_lr", "0.01"], "--min_lr (0.01) is above --learning_rate (0.001)"),
        (["--lr_decay_iters", "10"], "--lr_decay_iters (10) ends before --warmup_iters (100)"),
    ],
)
def test_nonsensical_training_flags_exit_2_naming_the_flag_and_value(
    trained, tmp_path, capsys, flags, expected
):
    corpus, _ = trained
    argv = ["train", "--data", str(corpus), "--out_dir", str(tmp_path / "new"), *flags]
    assert cli.main(argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_bad_flag_into_a_folder_with_a_checkpoint_is_named_before_the_checkpoint(trained, capsys):
    corpus, out_dir = trained
    before = (out_dir / "ckpt.npz").read_bytes()
    argv = ["train", "--data", str(corpus), "--out_dir", str(out_dir), "--learning_rate", "nan"]
    assert cli.main(argv) == 2
    assert "--learning_rate must be a finite number, got nan" in capsys.readouterr().err
    assert (out_dir / "ckpt.npz").read_bytes() == before


@pytest.mark.parametrize(
    "main, argv, usage",
    [
        (cli.main, ["sample", "--no-cache"], "minigrad-gpt sample"),
        (cli.main, ["train", "--max_iters", "3", "--no-cache"], "minigrad-gpt train"),
        (rnn_cli.main, ["lorenz", "--no-cache"], "minigrad-rnn lorenz"),
    ],
)
def test_an_unknown_flag_is_reported_with_its_commands_usage(main, argv, usage, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {usage} ") and "unrecognized arguments: --no-cache" in err


def test_resume_without_a_checkpoint_in_out_dir_exits_2_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "never-trained"
    assert cli.main(["train", "--resume", "--out_dir", str(missing)]) == 2
    expected = f"--out_dir: no checkpoint at {missing / 'ckpt.npz'}; train one first"
    assert expected in capsys.readouterr().err


def test_a_flag_that_is_not_a_number_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--n_layer", "four"])
    assert exited.value.code == 2
    assert "argument --n_layer: invalid int value: 'four'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--num_samples", "0"], "--num_samples must be positive, got 0"),
        (["--top_k", "0"], "--top_k must be positive, got 0"),
        (["--max_new_tokens", "-1"], "--max_new_tokens must be >= 0, got -1"),
        (["--temperature", "-0.5"], "--temperature must be a number >= 0, got -0.5"),
        (["--top_p", "0"], "--top_p must be in (0, 1], got 0.0"),
        (["--start", ""], "--start is empty"),
    ],
)
def test_nonsensical_sampling_flags_exit_2_naming_the_flag_and_value(
    trained, capsys, flags, expected
):
    _, out_dir = trained
    assert cli.main(["sample", "--out_dir", str(out_dir), *flags]) == 2
    assert expected in capsys.readouterr().err


def test_sampling_from_a_folder_without_a_checkpoint_exits_2_naming_the_path(tmp_path, capsys):
    assert cli.main(["sample", "--out_dir", str(tmp_path)]) == 2
    assert f"no checkpoint at {tmp_path / 'ckpt.npz'}" in capsys.readouterr().err


# ---- damaged checkpoints --------------------------------------------------------------


def drop_model_array(arrays, metadata):
    del arrays["model.lm_head.weight"]


def drop_optimizer_arrays(arrays, metadata):
    for name in [n for n in arrays if n.startswith("optim.")]:
        del arrays[name]


DAMAGE = {
    "a missing parameter": (
        drop_model_array,
        "does not fit the model it describes: load_state_dict: missing keys ['lm_head.weight']",
    ),
    "a parameter of another shape": (
        lambda arrays, metadata: arrays.update({"model.lm_head.weight": np.zeros((3, 3))}),
        "'lm_head.weight' has shape (3, 3), expected",
    ),
    "a NaN parameter": (
        lambda arrays, metadata: arrays["model.lm_head.weight"].__setitem__((0, 0), np.nan),
        "is damaged: array 'model.lm_head.weight' holds NaN or inf",
    ),
    "no iteration": (
        lambda arrays, metadata: metadata.pop("iter_num"),
        "is damaged: metadata field 'iter_num' is None, expected a whole number at least 0",
    ),
    "a negative iteration": (
        lambda arrays, metadata: metadata.update(iter_num=-3),
        "is damaged: metadata field 'iter_num' is -3, expected a whole number at least 0",
    ),
    "a nonsensical model": (
        lambda arrays, metadata: metadata["model"].update(n_head="four"),
        "GPTConfig: n_head must be a positive integer, got 'four'",
    ),
    "a tokenizer without characters": (
        lambda arrays, metadata: metadata["tokenizer"].pop("chars"),
        "its model or tokenizer description is unusable (KeyError: 'chars')",
    ),
    "a tokenizer with a repeated character": (
        lambda arrays, metadata: metadata["tokenizer"]["chars"].__setitem__(1, "a"),
        "CharTokenizer: chars must be distinct single characters",
    ),
    "a tokenizer that does not fit the model": (
        lambda arrays, metadata: metadata["tokenizer"]["chars"].append("\u00e9"),
        "its tokenizer has 24 tokens and its model a vocabulary of 23; they must be equal",
    ),
    "a complex parameter": (
        lambda arrays, metadata: arrays.update(
            {"model.lm_head.weight": arrays["model.lm_head.weight"].astype(np.complex64)}
        ),
        "array 'model.lm_head.weight' has dtype complex64, expected floating point",
    ),
    "a learning rate that is a string": (
        lambda arrays, metadata: metadata["train"].update(learning_rate="fast"),
        "its training setting 'learning_rate' is 'fast', expected a number",
    ),
    "a fractional batch size": (
        lambda arrays, metadata: metadata["train"].update(batch_size=2.5),
        "its training setting 'batch_size' is 2.5, expected a whole number",
    ),
    "missing optimizer moments": (
        drop_optimizer_arrays,
        "is damaged: optimizer arrays ['optim.0.exp_avg', 'optim.0.exp_avg_sq'] and",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_resuming_from_a_damaged_checkpoint_exits_2_naming_the_file_and_the_damage(
    trained, tmp_path, capsys, damage
):
    _, out_dir = trained
    arrays = mg.load(out_dir / "ckpt.npz")
    metadata = load_metadata(out_dir / "ckpt.npz")
    mutate, expected = DAMAGE[damage]
    mutate(arrays, metadata)
    damaged = tmp_path / "damaged" / "ckpt.npz"
    mg.save(arrays, damaged, metadata=metadata)
    before = damaged.read_bytes()

    resume = ["train", "--resume", "--max_iters", "4", "--out_dir", str(damaged.parent)]
    assert cli.main(resume) == 2

    err = capsys.readouterr().err
    assert f"error: {damaged}" in err and expected in err
    assert damaged.read_bytes() == before


def test_a_checkpoint_whose_metadata_is_no_object_is_refused_as_damaged(trained, tmp_path):
    _, out_dir = trained
    mg.save(mg.load(out_dir / "ckpt.npz"), tmp_path / "ckpt.npz", metadata=[1, 2])
    with pytest.raises(ValueError, match=r"is damaged: its metadata is a list, expected a JSON"):
        load_checkpoint(tmp_path)


def test_a_single_tensor_is_clipped_whole_and_refused_by_optimizers():
    w = mg.tensor(np.ones((2, 3)), requires_grad=True)
    (w * w * 100).sum().backward()
    norm = mg.optim.clip_grad_norm_(w, 1.0)
    np.testing.assert_allclose(norm, np.sqrt(6) * 200)
    np.testing.assert_allclose(np.linalg.norm(w.grad), 1.0, rtol=1e-5)
    with pytest.raises(TypeError, match=r"SGD: params must be an iterable.*got a Tensor"):
        mg.optim.SGD(w, lr=0.1)


def test_resuming_with_optimizer_settings_out_of_range_exits_2_naming_them(
    trained, tmp_path, capsys
):
    _, out_dir = trained
    arrays = mg.load(out_dir / "ckpt.npz")
    metadata = load_metadata(out_dir / "ckpt.npz")
    metadata["optimizer"]["param_groups"][0]["betas"] = [2, 3]
    mg.save(arrays, tmp_path / "ckpt.npz", metadata=metadata)

    assert cli.main(["train", "--resume", "--max_iters", "4", "--out_dir", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert f"--resume: {tmp_path / 'ckpt.npz'} is damaged: its optimizer" in err
    assert "group 0 are unusable: AdamW: betas[0] must be in [0, 1), got 2" in err


def test_resuming_with_a_generator_state_of_another_kind_exits_2_naming_the_file(
    trained, tmp_path, capsys
):
    _, out_dir = trained
    arrays = mg.load(out_dir / "ckpt.npz")
    metadata = load_metadata(out_dir / "ckpt.npz")
    metadata["rng"]["data"] = {"bit_generator": "MT19937", "state": {}}
    mg.save(arrays, tmp_path / "ckpt.npz", metadata=metadata)

    assert cli.main(["train", "--resume", "--max_iters", "4", "--out_dir", str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert f"--resume: {tmp_path / 'ckpt.npz'} is damaged: its optimizer or generator" in err


def test_a_corpus_path_that_is_a_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--data: .* is a folder; expected a UTF-8"):
        load_text(tmp_path)


def test_a_corpus_path_that_is_no_regular_file_is_named_and_a_bom_is_no_character(tmp_path):
    with pytest.raises(ValueError, match=r"--data: /dev/null is not a regular file"):
        load_text("/dev/null")
    marked = tmp_path / "marked.txt"
    marked.write_bytes("\ufeffTo be".encode())
    assert load_text(marked) == "To be"


def test_training_out_of_memory_exits_2_naming_the_sizes(tmp_path, capsys, monkeypatch):
    def exhausted(config, log=print):
        raise MemoryError("Unable to allocate 3.7 GiB for an array with shape (100000000, 64)")

    monkeypatch.setattr(train_module, "train", exhausted)
    assert cli.main(["train", "--out_dir", str(tmp_path), "--batch_size", "100000000"]) == 2
    err = capsys.readouterr().err
    assert "error: out of memory (Unable to allocate 3.7 GiB" in err
    assert "--batch_size 100000000, --block_size 64" in err and "nothing holds the last" in err


@pytest.mark.parametrize(
    "content, expected",
    [
        (bytes(range(256)) * 4, "is not a .npz archive (it does not begin like a zip file)"),
        (b"", "is not a .npz archive"),
        (b"PK\x03\x04 and then nothing", "is not a readable .npz file"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_named_without_mention_of_unpickling(
    tmp_path, content, expected
):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(expected)) as raised:
        mg.load(path)
    assert "allow_pickle" not in str(raised.value)
    with pytest.raises(ValueError, match="is a folder; expected a .npz file"):
        mg.load(tmp_path)


def test_an_archive_of_pickled_objects_is_refused_as_such(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, a=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickled Python objects, which are never loaded"):
        mg.load(path)


def test_a_plot_folder_that_is_a_file_is_named_by_its_flag(tmp_path):
    plotting = pytest.importorskip("models.plotting")
    plt = pytest.importorskip("matplotlib.pyplot")
    blocker = tmp_path / "plots"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ValueError, match=r"--out_dir '.*plots': cannot write .*menu.png"):
        plotting.save_figure(plt.figure(), blocker, "menu.png")


@pytest.mark.parametrize(
    "state, error, expected",
    [
        ({"__metadata__": np.arange(3)}, ValueError, "'__metadata__' is reserved"),
        ({"opt": {"lr": 0.1}}, TypeError, "save: 'opt' is an object array (dict)"),
        ({"ragged": [[1.0], [1.0, 2.0]]}, TypeError, "save: 'ragged' is not an array"),
    ],
)
def test_save_names_an_entry_it_cannot_store(tmp_path, state, error, expected):
    with pytest.raises(error, match=re.escape(expected)):
        mg.save(state, tmp_path / "out.npz")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_save_to_a_folder_names_the_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match=re.escape(f"save: {tmp_path} is a folder")):
        mg.save({"x": np.ones(2)}, tmp_path)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda ps: mg.optim.Adam(ps, lr=float("nan")), "Adam: lr must be a finite number >= 0"),
        (lambda ps: mg.optim.SGD(ps, lr=float("inf")), "SGD: lr must be a finite number >= 0"),
        (lambda ps: mg.optim.AdamW(ps, eps=float("nan")), "AdamW: eps must be >= 0, got nan"),
        (lambda ps: mg.optim.SGD(ps, momentum=float("nan")), "SGD: momentum must be >= 0"),
    ],
)
def test_optimizers_refuse_hyperparameters_that_are_not_numbers(make, expected):
    with pytest.raises(ValueError, match=re.escape(expected)):
        make([mg.Tensor(np.ones(2), requires_grad=True)])


@pytest.mark.parametrize("kind", [mg.optim.SGD, mg.optim.Adam, mg.optim.AdamW])
def test_a_gradient_of_another_shape_is_named_before_anything_changes(kind):
    first = mg.Tensor(np.ones(2), requires_grad=True)
    second = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    optimizer = kind([first, second], lr=0.1)
    first.grad, second.grad = np.ones(2), np.ones(3)  # (3,) would broadcast over (2, 3)
    with pytest.raises(ValueError, match=re.escape("parameter 1 has shape (2, 3) but its .grad")):
        optimizer.step()
    np.testing.assert_array_equal(first.data, np.ones(2))
    np.testing.assert_array_equal(second.data, np.ones((2, 3)))


def test_an_adam_state_dict_is_refused_by_sgd():
    params = [mg.Tensor(np.ones(2), requires_grad=True)]
    saved = mg.optim.Adam(params).state_dict()
    with pytest.raises(ValueError, match=r"settings \['betas', 'eps'\] that SGD does not take"):
        mg.optim.SGD(params).load_state_dict(saved)


@pytest.mark.parametrize(
    "call, error, expected",
    [
        (lambda: mg.manual_seed(-1), ValueError, "manual_seed: seed must be an integer >= 0"),
        (lambda: mg.save([1, 2], "never.npz"), TypeError, "save: state must map names"),
        (
            lambda: mg.save({"a": np.ones(1)}, "never.npz", metadata={"x": object()}),
            TypeError,
            "save: metadata must be JSON-serialisable",
        ),
        (
            lambda: mg.optim.SGD([mg.Tensor(np.ones(1), requires_grad=True)]).load_state_dict(
                {"foo": 1}
            ),
            ValueError,
            "load_state_dict: expected what state_dict() returns",
        ),
    ],
)
def test_api_calls_with_the_wrong_kind_of_argument_name_it(call, error, expected, tmp_path):
    with pytest.raises(error, match=re.escape(expected)):
        call()


def test_a_checkpoint_path_taken_by_a_folder_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "run" / "ckpt.npz").mkdir(parents=True)
    for extra in ([], ["--overwrite"]):
        assert cli.main(["train", "--out_dir", str(tmp_path / "run"), *extra]) == 2
        assert "ckpt.npz is a folder; expected room for the checkpoint" in capsys.readouterr().err


def test_a_save_that_fails_midway_ends_with_one_line_and_keeps_the_last_checkpoint(
    trained, tmp_path, capsys, monkeypatch
):
    corpus, _ = trained
    out = tmp_path / "full"
    argv = ["train", "--data", str(corpus), "--out_dir", str(out), "--n_layer", "1"]
    argv += ["--n_head", "2", "--n_embd", "16", "--block_size", "16", "--batch_size", "4"]
    argv += ["--eval_iters", "2", "--eval_interval", "2", "--warmup_iters", "1"]
    argv += ["--lr_decay_iters", "4", "--max_iters", "4"]
    real_save = train_module.save_checkpoint
    calls = []

    def disk_full_on_second_save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(train_module, "save_checkpoint", disk_full_on_second_save)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: cannot save the checkpoint in" in err and "No space left on device" in err
    assert err.count("\n") == 1
    _, metadata = load_checkpoint(out)
    assert metadata["iter_num"] == 2  # the first save, intact


def test_resuming_on_a_text_with_unseen_characters_names_the_data_flag(trained, capsys):
    corpus, out_dir = trained
    other = corpus.parent / "other.txt"
    other.write_text("ünïcödé " * 200, encoding="utf-8")
    argv = ["train", "--resume", "--out_dir", str(out_dir), "--data", str(other)]
    assert cli.main([*argv, "--max_iters", "4"]) == 2
    assert f"--data {other}: character" in capsys.readouterr().err


@pytest.mark.parametrize("data", ["abc", None, [1, "a"], {"a": 1}])
def test_a_tensor_of_something_other_than_numbers_is_refused(data):
    with pytest.raises(TypeError, match="Tensor: data must be numbers or booleans"):
        mg.Tensor(data)


def test_a_run_that_diverges_over_an_earlier_one_says_the_earlier_checkpoint_remains(
    trained, capsys
):
    corpus, out_dir = trained
    argv = ["train", "--data", str(corpus), "--out_dir", str(out_dir), "--overwrite"]
    argv += ["--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--block_size", "16"]
    argv += ["--learning_rate", "1e30", "--min_lr", "0", "--grad_clip", "0"]
    before = (out_dir / "ckpt.npz").read_bytes()
    assert cli.main(argv) == 1
    assert "still holds the earlier run it was to replace" in capsys.readouterr().err
    assert (out_dir / "ckpt.npz").read_bytes() == before

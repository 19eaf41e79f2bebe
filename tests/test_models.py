"""The trainer, the sampler and the command line, end to end on tiny configurations."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from models import cli, sample
from models.checkpoint import load_checkpoint
from models.data import default_corpus, get_batch, load_text, split_ids
from models.tokenizers import CharTokenizer
from models.train import TrainConfig, train

TINY = dict(
    n_layer=1,
    n_head=2,
    n_embd=16,
    block_size=16,
    batch_size=4,
    eval_iters=2,
    log_interval=5,
    learning_rate=3e-3,
    warmup_iters=2,
)


@pytest.fixture
def corpus(tmp_path):
    """A small text with structure a model can learn quickly."""
    verse = "ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
    verse += "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n\n"
    path = tmp_path / "verse.txt"
    path.write_text(verse * 40, encoding="utf-8")
    return path


def run(tmp_path, corpus, name="run", **overrides):
    settings = {**TINY, "data": str(corpus), "out_dir": str(tmp_path / name), **overrides}
    lines = []
    result = train(TrainConfig(**settings), log=lines.append)
    return result, lines


def test_training_lowers_the_validation_loss_and_saves_a_checkpoint(tmp_path, corpus):
    result, lines = run(tmp_path, corpus, max_iters=60, eval_interval=30, lr_decay_iters=60)
    (_, _, val_start), _, (_, _, val_end) = result["history"]
    assert val_end < val_start - 0.5
    assert result["checkpoint"].exists()
    assert any(line.startswith("step 30: train loss ") for line in lines)
    assert any(line.startswith("iter 5: loss ") and line.endswith("ms") for line in lines)
    arrays, metadata = load_checkpoint(tmp_path / "run")
    assert metadata["iter_num"] == 60
    assert "model.lm_head.weight" in arrays and "optim.0.exp_avg" in arrays
    readable = json.loads((tmp_path / "run" / "ckpt.json").read_text())
    assert readable["model"]["n_embd"] == 16


def test_resume_continues_from_the_saved_iteration_with_identical_losses(tmp_path, corpus):
    common = dict(eval_interval=10, lr_decay_iters=20)
    straight, _ = run(tmp_path, corpus, name="straight", max_iters=20, **common)
    run(tmp_path, corpus, name="stopped", max_iters=10, **common)
    resumed, lines = run(tmp_path, corpus, name="stopped", max_iters=20, resume=True, **common)
    assert "resuming from iteration 10" in " ".join(lines)
    assert resumed["iter_num"] == 20
    assert resumed["history"][0][0] == 20  # no second evaluation at the resumed iteration
    assert resumed["val_loss"] == straight["val_loss"]
    assert resumed["train_loss"] == straight["train_loss"]


def test_a_new_run_refuses_to_overwrite_an_existing_checkpoint(tmp_path, corpus):
    run(tmp_path, corpus, max_iters=2, eval_interval=2)
    before = (tmp_path / "run" / "ckpt.npz").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        run(tmp_path, corpus, max_iters=2, eval_interval=2)
    assert (tmp_path / "run" / "ckpt.npz").read_bytes() == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n_embd", "30", "--n_head", "4"], "divisible"),
        (["--batch_size", "-1"], "--batch_size must be positive"),
        (["--block_size", "0"], "--block_size must be positive"),
        (["--dropout", "1.5"], "--dropout"),
        (["--resume"], "no checkpoint"),
    ],
)
def test_nonsensical_command_line_values_fail_with_a_named_flag(
    tmp_path, corpus, capsys, flags, message
):
    argv = ["train", "--data", str(corpus), "--out_dir", str(tmp_path / "x"), *flags]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_corpus_shorter_than_one_block_is_rejected(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be", encoding="utf-8")
    with pytest.raises(ValueError, match="block_size"):
        train(TrainConfig(**{**TINY, "data": str(short), "out_dir": str(tmp_path / "o")}))


def test_an_empty_corpus_is_rejected(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_text(empty)


def test_sample_prints_continuations_of_the_prompt(tmp_path, corpus, capsys):
    run(tmp_path, corpus, max_iters=30, eval_interval=30)
    argv = [
        "sample",
        "--out_dir",
        str(tmp_path / "run"),
        "--start",
        "ROMEO:",
        "--num_samples",
        "2",
        "--max_new_tokens",
        "40",
        "--seed",
        "1",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    samples = printed.split("---------------\n")
    assert len(samples) == 3 and samples[2] == ""
    assert all(s.startswith("ROMEO:") and len(s) == len("ROMEO:") + 40 + 1 for s in samples[:2])


def test_sampling_is_reproducible_for_a_seed(tmp_path, corpus):
    run(tmp_path, corpus, max_iters=10, eval_interval=10)
    args = sample.build_parser().parse_args(
        ["--out_dir", str(tmp_path / "run"), "--start", "O", "--max_new_tokens", "30"]
    )
    assert sample.sample(args) == sample.sample(args)


def test_a_prompt_with_an_unknown_character_is_rejected(tmp_path, corpus, capsys):
    run(tmp_path, corpus, max_iters=2, eval_interval=2)
    argv = ["sample", "--out_dir", str(tmp_path / "run"), "--start", "ROMEO§"]
    assert cli.main(argv) == 2
    assert "'§' at position 5" in capsys.readouterr().err


def test_char_tokenizer_round_trips_and_names_unknown_characters():
    tokenizer = CharTokenizer.from_text("hello world")
    assert tokenizer.vocab_size == 8
    assert tokenizer.decode(tokenizer.encode("low world")) == "low world"
    with pytest.raises(ValueError, match="'z' at position 2"):
        tokenizer.encode("loz")
    with pytest.raises(ValueError, match="token id 8"):
        tokenizer.decode([8])


def test_batches_are_windows_and_their_next_token_targets(rng):
    ids = np.arange(100)
    x, y = get_batch(ids, block_size=8, batch_size=5, rng=rng)
    assert x.shape == y.shape == (5, 8)
    assert np.array_equal(y, x + 1)
    train_ids, val_ids = split_ids(ids, block_size=8)
    assert len(train_ids) == 90 and val_ids[0] == 90


def test_the_bundled_corpus_is_the_shakespeare_text():
    text = load_text()
    assert default_corpus().name == "shakespeare.txt"
    assert len(text) == 1_158_000 and len(set(text)) == 75
    assert text.startswith("THE TRAGEDY OF CORIOLANUS")


def test_the_module_entry_point_shows_every_flag():
    help_text = subprocess.run(
        [sys.executable, "-m", "models.train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--max_iters",
        "--lr_decay_iters",
        "--eval_interval",
        "--eval_iters",
        "--seed",
        "--data",
        "--resume",
        "--out_dir",
    ):
        assert flag in help_text


def test_resume_alone_continues_with_the_settings_the_run_started_with(tmp_path, corpus, capsys):
    sizes = "--n_layer 1 --n_head 2 --n_embd 16 --block_size 16 --batch_size 4"
    schedule = "--eval_interval 10 --eval_iters 2 --lr_decay_iters 20 --warmup_iters 2"
    flags = ["--data", str(corpus), *sizes.split(), *schedule.split()]
    straight, stopped = str(tmp_path / "straight"), str(tmp_path / "stopped")
    assert cli.main(["train", "--out_dir", straight, "--max_iters", "20", *flags]) == 0
    assert cli.main(["train", "--out_dir", stopped, "--max_iters", "10", *flags]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--out_dir", stopped, "--resume", "--max_iters", "20"]) == 0
    resumed_log = capsys.readouterr().out
    _, straight_meta = load_checkpoint(straight)
    _, resumed_meta = load_checkpoint(stopped)
    assert resumed_meta["train"]["batch_size"] == 4 and resumed_meta["iter_num"] == 20
    assert resumed_meta["best_val_loss"] == straight_meta["best_val_loss"]
    assert "step 20:" in resumed_log


def test_flags_must_be_spelled_out_and_resume_writes_where_it_read(tmp_path, corpus, capsys):
    # A prefix is refused: `--lr` would otherwise quietly be --lr_decay_iters, and `--out`
    # --out_dir.  Spelled out, `--resume` writes the folder it was given.
    run(tmp_path, corpus, name="first", max_iters=2, eval_interval=2)
    shutil.copytree(tmp_path / "first", tmp_path / "copy")
    first_bytes = (tmp_path / "first" / "ckpt.npz").read_bytes()
    for prefix in (["--out", str(tmp_path / "copy")], ["--lr", "500"]):
        with pytest.raises(SystemExit) as refused:
            cli.main(["train", "--out_dir", str(tmp_path / "copy"), "--resume", *prefix])
        assert refused.value.code == 2
        assert f"unrecognized arguments: {prefix[0]}" in capsys.readouterr().err
    resume = ["train", "--out_dir", str(tmp_path / "copy"), "--resume", "--max_iters", "4"]
    assert cli.main([*resume, "--learning_rate=0.002"]) == 0
    _, resumed = load_checkpoint(tmp_path / "copy")
    assert resumed["iter_num"] == 4 and resumed["train"]["learning_rate"] == 0.002
    assert (tmp_path / "first" / "ckpt.npz").read_bytes() == first_bytes


def test_resume_keeps_the_runs_dropout_unless_told_another_as_nanogpt_allows(tmp_path, corpus):
    run(tmp_path, corpus, max_iters=2, eval_interval=2, dropout=0.2)
    out = str(tmp_path / "run")
    assert cli.main(["train", "--out_dir", out, "--resume", "--max_iters", "4"]) == 0
    _, kept = load_checkpoint(out)
    assert kept["model"]["dropout"] == 0.2 and kept["iter_num"] == 4
    again = ["train", "--out_dir", out, "--resume", "--max_iters", "6", "--dropout", "0"]
    assert cli.main(again) == 0
    _, changed = load_checkpoint(out)
    assert changed["model"]["dropout"] == 0.0 and changed["train"]["dropout"] == 0.0


def test_resume_refuses_a_different_model_shape_or_overwrite(tmp_path, corpus, capsys):
    out = str(tmp_path / "run")
    run(tmp_path, corpus, max_iters=2, eval_interval=2)
    assert cli.main(["train", "--out_dir", out, "--resume", "--n_layer", "3"]) == 2
    assert "--n_layer: a resumed run keeps the checkpoint's model (n_layer=1)" in (
        capsys.readouterr().err
    )
    assert cli.main(["train", "--out_dir", out, "--resume", "--overwrite"]) == 2
    assert "pick one" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--tokenizer", "bpe"], "--tokenizer: a resumed run keeps the checkpoint's tokenizer"),
        (["--seed", "5"], "--seed: a resumed run keeps the checkpoint's random generators"),
        (["--max_iters", "2"], "--max_iters 2: the checkpoint in"),
    ],
)
def test_resume_refuses_another_tokenizer_or_seed_and_a_run_with_nothing_left(
    tmp_path, corpus, capsys, flags, expected
):
    out = str(tmp_path / "run")
    run(tmp_path, corpus, max_iters=2, eval_interval=2)
    before = (tmp_path / "run" / "ckpt.npz").read_bytes()
    grow = [] if "--max_iters" in flags else ["--max_iters", "4"]
    assert cli.main(["train", "--out_dir", out, "--resume", *grow, *flags]) == 2
    assert expected in capsys.readouterr().err
    assert (tmp_path / "run" / "ckpt.npz").read_bytes() == before


def test_zero_iterations_evaluate_the_initial_model_and_save_it(tmp_path, corpus):
    _, lines = run(tmp_path, corpus, max_iters=0, eval_interval=2)
    _, metadata = load_checkpoint(tmp_path / "run")
    assert metadata["iter_num"] == 0
    assert any(line.startswith("step 0: train loss ") for line in lines)


def test_sampling_refuses_a_temperature_that_is_not_a_number(tmp_path, corpus, capsys):
    run(tmp_path, corpus, max_iters=2, eval_interval=2)
    argv = ["sample", "--out_dir", str(tmp_path / "run"), "--temperature", "nan"]
    assert cli.main(argv) == 2
    assert "--temperature must be a number >= 0, got nan" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["train", "--seed", "-3"], ["sample", "--seed", "-1"], ["senses", "--seed", "-5"]],
)
def test_a_negative_seed_is_refused_naming_the_flag(tmp_path, argv, capsys):
    assert cli.main([*argv, "--out_dir", str(tmp_path / "o")] if argv[0] != "senses" else argv) == 2
    assert "--seed must be >= 0" in capsys.readouterr().err

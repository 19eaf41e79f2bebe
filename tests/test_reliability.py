"""A run is never lost: divergence stops it cleanly, Ctrl-C saves a checkpoint that resumes."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import models.train as train_module
from minigrad import Tensor, optim
from models import cli
from models.checkpoint import load_checkpoint
from models.gpt import GPT
from models.train import TrainConfig, TrainingDiverged, TrainingInterrupted, train

TINY = dict(
    n_layer=1,
    n_head=2,
    n_embd=16,
    block_size=16,
    batch_size=4,
    eval_iters=2,
    log_interval=1,
    learning_rate=3e-3,
    warmup_iters=2,
    lr_decay_iters=20,
)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "verse.txt"
    path.write_text("But soft, what light through yonder window breaks?\n" * 60, encoding="utf-8")
    return path


def config(tmp_path, corpus, **overrides):
    return TrainConfig(
        **{**TINY, "data": str(corpus), "out_dir": str(tmp_path / "out"), **overrides}
    )


def training_forward_hook(monkeypatch, at_call, corrupt):
    """Call corrupt(model, loss) on training forward pass number `at_call`, counting from 0.

    Evaluation passes (in eval mode) are not counted, so pass k is iteration k.
    """
    original = GPT.forward
    calls = []

    def forward(self, idx, targets=None, kv_cache=None):
        logits, loss = original(self, idx, targets, kv_cache)
        if self.training and targets is not None:
            calls.append(None)
            if len(calls) == at_call + 1:
                loss = corrupt(self, loss)
        return logits, loss

    monkeypatch.setattr(GPT, "forward", forward)


def snapshot_checkpoint_at(line_start, out_dir, into):
    """A log function that copies out_dir/ckpt.npz's bytes when a line starts with line_start."""

    def log(line):
        into.setdefault("lines", []).append(line)
        if line.startswith(line_start):
            into["bytes"] = (out_dir / "ckpt.npz").read_bytes()

    return log


def test_a_nan_loss_exits_non_zero_naming_the_iteration_and_keeps_the_last_checkpoint(
    tmp_path, corpus, monkeypatch, capsys
):
    training_forward_hook(monkeypatch, 7, lambda model, loss: loss * float("nan"))
    out_dir = tmp_path / "out"
    argv = ["train", "--data", str(corpus), "--out_dir", str(out_dir), "--eval_interval", "5"]
    for name, value in TINY.items():
        argv += [f"--{name}", str(value)]
    saved = {}
    original_save = train_module.save_checkpoint

    def save_and_remember(*args, **kwargs):
        path = original_save(*args, **kwargs)
        saved["bytes"] = path.read_bytes()
        return path

    monkeypatch.setattr(train_module, "save_checkpoint", save_and_remember)

    assert cli.main(argv) == 1

    err = capsys.readouterr().err
    assert "iteration 7: the loss is nan" in err
    assert "gradient holds NaN or inf is transformer.wte.weight" in err
    assert f"{out_dir / 'ckpt.npz'} (iteration 5), is unchanged" in err
    assert (out_dir / "ckpt.npz").read_bytes() == saved["bytes"]
    assert load_checkpoint(out_dir)[1]["iter_num"] == 5


def test_an_infinite_gradient_in_one_parameter_stops_training_naming_that_parameter(
    tmp_path, corpus, monkeypatch
):
    # The loss of iteration 3 is finite; its backward leaves one gradient element infinite.
    marked = {}
    original_backward = Tensor.backward

    def backward(self, *args, **kwargs):
        original_backward(self, *args, **kwargs)
        if self is marked.get("loss"):
            marked["model"].transformer.h[0].mlp.c_fc.weight.grad[0, 0] = np.inf

    def mark(model, loss):
        marked.update(loss=loss, model=model)
        return loss

    training_forward_hook(monkeypatch, 3, mark)
    monkeypatch.setattr(Tensor, "backward", backward)
    seen = {}
    cfg = config(tmp_path, corpus, eval_interval=2, max_iters=10)

    with pytest.raises(TrainingDiverged) as caught:
        train(cfg, log=snapshot_checkpoint_at("iter 3:", tmp_path / "out", seen))

    message = str(caught.value)
    assert message.startswith("iteration 3: a gradient is not finite;")
    assert "gradient holds NaN or inf is transformer.h.0.mlp.c_fc.weight" in message
    assert not any(line.startswith("iter 3:") for line in seen["lines"])
    assert load_checkpoint(tmp_path / "out")[1]["iter_num"] == 2


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_parameter_made_infinite_by_a_step_is_caught_by_the_evaluation_and_not_saved(
    tmp_path, corpus, monkeypatch
):
    # The step of iteration 5 leaves a LayerNorm gain infinite; the evaluation at 6 finds it.
    original_step = optim.AdamW.step
    steps = []

    def step(self):
        original_step(self)
        steps.append(None)
        if len(steps) == 6:
            self.param_groups[1]["params"][0].data[0] = np.inf

    monkeypatch.setattr(optim.AdamW, "step", step)
    seen = {}
    cfg = config(tmp_path, corpus, eval_interval=3, max_iters=10)

    with pytest.raises(TrainingDiverged) as caught:
        train(cfg, log=snapshot_checkpoint_at("iter 5:", tmp_path / "out", seen))

    message = str(caught.value)
    assert message.startswith("iteration 6: the evaluated loss is not finite;")
    assert "the first parameter holding NaN or inf is transformer.h.0.ln_1.weight" in message
    assert seen["lines"][-1] == "step 6: train loss nan, val loss nan"
    assert (tmp_path / "out" / "ckpt.npz").read_bytes() == seen["bytes"]
    assert load_checkpoint(tmp_path / "out")[1]["iter_num"] == 3


def interrupt_at(line_start, times=1):
    """A log function that sends this process SIGINT `times` times when a line starts so."""
    lines = []

    def log(line):
        lines.append(line)
        if line.startswith(line_start):
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return log, lines


@pytest.mark.parametrize("signalled_at, stopped_at", [("iter 6:", 7), ("iter 4:", 5)])
def test_ctrl_c_saves_a_checkpoint_from_which_resume_matches_an_uninterrupted_run(
    tmp_path, corpus, signalled_at, stopped_at
):
    # Stopping at 5 runs that iteration's evaluation first, which --resume then skips.
    common = dict(max_iters=12, eval_interval=5)
    straight = train(
        config(tmp_path, corpus, out_dir=str(tmp_path / "straight"), **common),
        log=lambda line: None,
    )
    handlers_before = [signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)]
    log, lines = interrupt_at(signalled_at)

    with pytest.raises(TrainingInterrupted) as caught:
        train(config(tmp_path, corpus, **common), log=log)

    assert caught.value.iter_num == stopped_at
    assert lines[-1] == (
        f"interrupted at iteration {stopped_at}: saved {caught.value.checkpoint}; "
        "continue with --resume"
    )
    assert [signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)] == handlers_before
    assert load_checkpoint(tmp_path / "out")[1]["iter_num"] == stopped_at
    resumed = train(config(tmp_path, corpus, resume=True, **common), log=lambda line: None)
    assert resumed["iter_num"] == 12
    assert [step for step, _, _ in resumed["history"]] == [10, 12]
    assert resumed["history"] == straight["history"][-2:]
    final_straight, _ = load_checkpoint(tmp_path / "straight")
    final_resumed, _ = load_checkpoint(tmp_path / "out")
    assert final_resumed.keys() == final_straight.keys()
    for name, array in final_straight.items():
        np.testing.assert_array_equal(final_resumed[name], array, err_msg=name)


def test_a_second_ctrl_c_stops_at_once_without_saving(tmp_path, corpus):
    log, lines = interrupt_at("iter 6:", times=2)
    seen = {}

    def log_and_snapshot(line):
        snapshot_checkpoint_at("iter 6:", tmp_path / "out", seen)(line)
        log(line)

    with pytest.raises(KeyboardInterrupt) as caught:
        train(config(tmp_path, corpus, max_iters=12, eval_interval=5), log=log_and_snapshot)

    assert not isinstance(caught.value, TrainingInterrupted)
    assert lines[-1].startswith("iter 6:")
    assert (tmp_path / "out" / "ckpt.npz").read_bytes() == seen["bytes"]
    assert load_checkpoint(tmp_path / "out")[1]["iter_num"] == 5


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_training_command_saves_and_resume_continues_from_there(
    tmp_path, corpus, signum, status
):
    out_dir = tmp_path / "out"
    argv = [sys.executable, "-u", "-m", "models.train", "--data", str(corpus)]
    argv += ["--out_dir", str(out_dir), "--max_iters", "100000", "--eval_interval", "1000"]
    for name, value in TINY.items():
        argv += [f"--{name}", str(value)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        printed = []
        deadline = time.monotonic() + 120
        for line in child.stdout:
            printed.append(line)
            if line.startswith("iter "):
                child.send_signal(signum)
                break
            assert time.monotonic() < deadline, "the trainer printed no iteration line"
        remaining, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    printed += remaining.splitlines(keepends=True)

    assert child.returncode == status, err
    last = printed[-1].strip()
    assert last.startswith("interrupted at iteration ") and last.endswith("continue with --resume")
    stopped_at = int(last.split()[3].rstrip(":"))
    assert f"saved {out_dir / 'ckpt.npz'}" in last
    arrays, metadata = load_checkpoint(out_dir)
    assert metadata["iter_num"] == stopped_at >= 1
    assert all(np.isfinite(a).all() for a in arrays.values())

    lines = []
    resumed = train(
        config(tmp_path, corpus, max_iters=stopped_at + 3, eval_interval=1000, resume=True),
        log=lines.append,
    )
    assert f"resuming from iteration {stopped_at} in {out_dir}" in lines
    assert lines[lines.index(f"resuming from iteration {stopped_at} in {out_dir}") + 1].startswith(
        f"iter {stopped_at}: loss "
    )
    assert resumed["iter_num"] == stopped_at + 3


END_QUIETLY = """
import sys
from models.commands import end_quietly

def talk():
    for i in range(1_000_000):
        print("line", i)
    return 0

sys.exit(end_quietly(talk))
"""


def test_a_command_whose_reader_goes_away_stops_with_status_1_and_no_traceback():
    process = subprocess.Popen(
        [sys.executable, "-c", END_QUIETLY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # what `| head -1` does after its line
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err == b""


def test_ctrl_c_in_a_command_gives_status_130_and_one_line(capsys):
    from models.commands import end_quietly

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert end_quietly(interrupted) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_save_has_the_usual_file_mode_and_clears_leftovers_of_killed_saves(tmp_path):
    from minigrad import serialization

    path = tmp_path / "ckpt.npz"
    old = tmp_path / ".ckpt.npz.dead1234.tmp"
    recent = tmp_path / ".ckpt.npz.busy5678.tmp"
    for leftover in (old, recent):
        leftover.write_bytes(b"half a checkpoint")
    long_ago = time.time() - serialization.STALE_SECONDS - 10
    os.utime(old, (long_ago, long_ago))
    umask = os.umask(0o022)
    try:
        serialization.save({"x": np.ones(3)}, path)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert not old.exists()  # a killed save's leftover
    assert recent.exists()  # may belong to a save still writing


def test_training_whose_log_reader_goes_away_stops_quietly(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question. " * 200, encoding="utf-8")
    command = [sys.executable, "-m", "models.cli", "train", "--data", str(corpus)]
    command += ["--out_dir", str(tmp_path / "run"), "--n_layer", "1", "--n_head", "2"]
    command += ["--n_embd", "16", "--block_size", "16", "--batch_size", "4", "--eval_iters", "2"]
    command += ["--log_interval", "1", "--max_iters", "2000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # what `| head -1` does after its line
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert err == b""

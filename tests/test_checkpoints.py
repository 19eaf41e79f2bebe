"""Checkpoints survive a crash mid-save, and loading never runs code."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import minigrad
from models.checkpoint import load_checkpoint

# Runs the trainer in a child process whose third save stops half-way: the
# temporary file is partly written when the child announces it and waits to be killed.
CHILD = textwrap.dedent(
    """
    import pathlib, sys, time
    import minigrad.serialization as serialization

    marker = pathlib.Path(sys.argv[1])
    saves = 0
    original = serialization._write_npz

    def write_then_hang(file, arrays):
        global saves
        saves += 1
        if saves < 3:
            return original(file, arrays)
        file.write(b"PK\\x03\\x04 half a zip")
        file.flush()
        marker.write_text("in the middle of a save")
        time.sleep(120)

    serialization._write_npz = write_then_hang
    from models.train import main
    sys.exit(main(sys.argv[2:]))
    """
)


def test_a_training_process_killed_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    out_dir = tmp_path / "out"
    marker = tmp_path / "marker"
    argv = [
        sys.executable,
        "-c",
        CHILD,
        str(marker),
        "--data",
        str(corpus),
        "--out_dir",
        str(out_dir),
        "--n_layer",
        "1",
        "--n_head",
        "1",
        "--n_embd",
        "8",
        "--block_size",
        "8",
        "--batch_size",
        "2",
        "--max_iters",
        "10",
        "--eval_interval",
        "2",
        "--eval_iters",
        "1",
    ]
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never reached its third save"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    leftovers = [p.name for p in out_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the killed save should have left its temporary file behind"
    arrays, metadata = load_checkpoint(out_dir)
    assert metadata["iter_num"] == 4  # the second save, at iteration 4, is intact
    assert arrays["model.lm_head.weight"].shape == (len(set(corpus.read_text())), 8)


def test_loading_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, payload=np.array([{"run": "code"}], dtype=object))
    with pytest.raises(ValueError, match="evil.npz"):
        minigrad.load(path)


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "empty"), (b"this is not a zip archive", "foreign"), (None, "truncated")],
)
def test_a_damaged_checkpoint_gives_an_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / f"{problem}.npz"
    if content is None:
        minigrad.save({"w": np.arange(10_000, dtype=np.float32)}, path, metadata={"a": 1})
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{problem}.npz"):
        minigrad.load(path)


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt.npz"):
        load_checkpoint(tmp_path)


def test_save_round_trips_arrays_and_metadata(tmp_path):
    path = tmp_path / "state.npz"
    state = {"w": minigrad.tensor([[1.0, 2.0]]), "step": np.array(7)}
    minigrad.save(state, path, metadata={"note": "two arrays", "lr": 1e-3})
    loaded = minigrad.load(path)
    assert set(loaded) == {"w", "step"}
    assert loaded["w"].dtype == np.float32 and loaded["w"].tolist() == [[1.0, 2.0]]
    assert minigrad.serialization.load_metadata(path) == {"note": "two arrays", "lr": 1e-3}
    assert zipfile.is_zipfile(path)
    assert [p for p in os.listdir(tmp_path)] == ["state.npz"]


def test_save_keeps_any_name_numpy_reads_and_an_empty_state(tmp_path):
    # np.savez takes names as keyword arguments: 'file' and 'allow_pickle' clash there.
    state = {"file": np.arange(3), "allow_pickle": np.ones(2), "a/b": np.zeros((2, 2))}
    minigrad.save(state, tmp_path / "odd.npz")
    loaded = minigrad.load(tmp_path / "odd.npz")
    assert sorted(loaded) == sorted(state)
    assert all(np.array_equal(loaded[k], v) for k, v in state.items())
    with np.load(tmp_path / "odd.npz") as archive:  # still a plain .npz to NumPy
        assert archive["file"].tolist() == [0, 1, 2]
    minigrad.save({}, tmp_path / "empty.npz")
    assert minigrad.load(tmp_path / "empty.npz") == {}
    with pytest.raises(ValueError, match=r"not ending in '.npy'.*got 'x.npy'"):
        minigrad.save({"x": np.ones(1), "x.npy": np.zeros(1)}, tmp_path / "clash.npz")
    assert not (tmp_path / "clash.npz").exists()

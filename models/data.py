"""The training corpus: loading, the train/validation split, random batches."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np


def default_corpus() -> Path:
    """The Shakespeare text that ships with the package."""
    return Path(str(resources.files("models") / "data" / "shakespeare.txt"))


def load_text(path: str | os.PathLike | None = None) -> str:
    """Read a UTF-8 text file (the bundled corpus when `path` is None), without a BOM."""
    path = Path(path) if path is not None else default_corpus()
    if path.is_dir():
        raise FileNotFoundError(f"--data: {path} is a folder; expected a UTF-8 text file")
    if not path.exists():
        raise FileNotFoundError(f"--data: no file at {path}")
    if not path.is_file():
        raise ValueError(f"--data: {path} is not a regular file; expected a UTF-8 text file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is no character
    except UnicodeDecodeError as error:
        raise ValueError(f"--data: {path} is not UTF-8 text ({error})") from None
    if not text:
        raise ValueError(f"--data: {path} is empty")
    return text


def split_ids(
    ids: np.ndarray, block_size: int, val_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """The first (1 - val_fraction) of the ids for training, the rest for validation.

    Raises:
        ValueError: when either part is too short for one block of
            `block_size` inputs plus its shifted targets.
    """
    n_train = int(len(ids) * (1 - val_fraction))
    train, val = ids[:n_train], ids[n_train:]
    for name, part in (("training", train), ("validation", val)):
        if len(part) < block_size + 1:
            raise ValueError(
                f"the {name} split has {len(part)} tokens, fewer than block_size + 1 = "
                f"{block_size + 1}; use a longer text (the whole has {len(ids)} tokens) "
                "or a smaller --block_size"
            )
    return train, val


def get_batch(
    ids: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`batch_size` random windows of `block_size` tokens and the same windows shifted by one."""
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)
    offsets = np.arange(block_size)
    x = ids[starts[:, None] + offsets]
    y = ids[starts[:, None] + offsets + 1]
    return x, y

"""Position encodings: a vector per position, added to token embeddings.

Attention by itself ignores order: permuting the keys permutes nothing in
the result.  These modules give each position 0, 1, ..., max_len - 1 a vector
that the model adds to the token at that position.  Both map integer
positions to vectors, like `Embedding`, so a caller can ask for any range
(a generator with a key/value cache asks for `arange(past, past + T)`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigrad import random
from minigrad.nn.layers import _check_positive
from minigrad.nn.module import Module, Parameter
from minigrad.ops.nn import embedding
from minigrad.tensor import DEFAULT_DTYPE, Tensor, as_array


def _positions(positions: Any, max_len: int, layer: str) -> np.ndarray:
    """Integer positions as an array, each checked to lie in [0, max_len)."""
    index = as_array(positions)
    if not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"{layer}: positions must be integers, got dtype {index.dtype}")
    if index.size and (index.min() < 0 or index.max() >= max_len):
        bad = index[(index < 0) | (index >= max_len)].flat[0]
        raise IndexError(f"{layer}: position {bad} is outside [0, max_len={max_len})")
    return index


def sinusoidal_table(max_len: int, d_model: int) -> np.ndarray:
    """The (max_len, d_model) table of "Attention Is All You Need".

    Column 2i holds sin(pos / 10000^(2i / d_model)) and column 2i + 1 the
    cosine at the same frequency; an odd d_model ends on a sine column.
    """
    position = np.arange(max_len, dtype=np.float64)[:, None]  # (max_len, 1)
    frequency = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (ceil(d/2),)
    angle = position * frequency  # (max_len, ceil(d/2))
    table = np.empty((max_len, d_model))
    table[:, 0::2] = np.sin(angle)
    table[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return table


class SinusoidalPositionalEncoding(Module):
    """Fixed sine and cosine waves per position; nothing to learn, nothing saved.

    Each pair of columns turns at its own frequency, so position p + k is a
    fixed rotation of position p in every pair, which lets attention express
    relative offsets.  Works for odd `d_model` too (the last column is a sine).

    Args:
        d_model: the width of each vector.
        max_len: how many positions the table covers.
    """

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        _check_positive("SinusoidalPositionalEncoding", d_model=d_model, max_len=max_len)
        self.d_model, self.max_len = d_model, max_len
        # A plain float32 array, not a Parameter: it is neither trained nor saved,
        # and adding it to float64 embeddings gives float64, so double() still works.
        self.table = sinusoidal_table(max_len, d_model).astype(DEFAULT_DTYPE)

    def forward(self, positions: Any) -> Tensor:
        """The vectors of integer `positions` in [0, max_len): positions.shape + (d_model,)."""
        index = _positions(positions, self.max_len, "SinusoidalPositionalEncoding")
        return Tensor(self.table[index])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(Module):
    """A trained vector per position: a table `weight` of shape (max_len, d_model).

    The same as an `Embedding` looked up with positions (GPT-2's `wpe`),
    initialised N(0, 0.02) as GPT-2 does rather than N(0, 1).

    Args:
        max_len: how many positions the table covers.
        d_model: the width of each vector.
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        _check_positive("LearnedPositionalEncoding", max_len=max_len, d_model=d_model)
        self.max_len, self.d_model = max_len, d_model
        weight = random.generator().normal(0.0, 0.02, (max_len, d_model))
        self.weight = Parameter(weight.astype(DEFAULT_DTYPE))

    def forward(self, positions: Any) -> Tensor:
        """The vectors of integer `positions` in [0, max_len): positions.shape + (d_model,)."""
        index = _positions(positions, self.max_len, "LearnedPositionalEncoding")
        return embedding(index, self.weight)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"

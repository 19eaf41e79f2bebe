"""Tokenizers: text to integer ids and back."""

from __future__ import annotations

from typing import Any

import numpy as np


class CharTokenizer:
    """One token per distinct character of the training text, in sorted order."""

    kind = "char"

    def __init__(self, chars: list[str]) -> None:
        if not chars:
            raise ValueError("CharTokenizer: the vocabulary is empty; train on a non-empty text")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of `text`; raises ValueError naming the first unknown character."""
        try:
            return np.fromiter((self.stoi[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError:
            position = next(i for i, c in enumerate(text) if c not in self.stoi)
            raise ValueError(
                f"character {text[position]!r} at position {position} is not in the "
                f"tokenizer's vocabulary of {self.vocab_size} characters"
            ) from None

    def decode(self, ids: Any) -> str:
        """The text of a sequence of token ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.vocab_size})")
        return "".join(self.chars[i] for i in ids.tolist())

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "chars": self.chars}


def tokenizer_from_dict(state: dict[str, Any]) -> CharTokenizer:
    """Rebuild a tokenizer saved with `to_dict`."""
    if state.get("kind") != "char":
        raise ValueError(f"unknown tokenizer kind {state.get('kind')!r}; expected 'char'")
    return CharTokenizer(state["chars"])

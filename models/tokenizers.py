"""Tokenizers: text to integer ids and back.

`CharTokenizer` gives each distinct character of the training text an id.
`BPETokenizer` learns byte-level byte-pair-encoding merges on a corpus and
serves them through `tiktoken`, whose Rust encoder is far faster than a
Python loop; training is ours, so nothing is ever downloaded.
"""

from __future__ import annotations

import heapq
import warnings
from collections import Counter, defaultdict
from typing import Any, Sequence

import numpy as np
import regex
import tiktoken


class CharTokenizer:
    """One token per distinct character of the training text, in sorted order."""

    kind = "char"

    def __init__(self, chars: list[str]) -> None:
        if not chars:
            raise ValueError("CharTokenizer: the vocabulary is empty; train on a non-empty text")
        odd = [c for c in chars if not (isinstance(c, str) and len(c) == 1)]
        if odd or len(set(chars)) != len(chars):
            shown = odd[:3] or sorted(c for c in set(chars) if list(chars).count(c) > 1)[:3]
            raise ValueError(
                "CharTokenizer: chars must be distinct single characters, one per token id; "
                f"got {shown!r} among {len(chars)}"
            )
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


# How text is cut before merging: merges never cross these pieces, so a token
# never spans a word and the space or punctuation around it.  A word keeps one
# leading space (" king"), digits come in runs of at most three, punctuation
# and symbols cluster, and a run of whitespace leaves its last space to the
# word that follows.  \p{L} letters, \p{M} combining marks, \p{N} digits.
SPLIT_PATTERN = "|".join(
    [
        r" ?[\p{L}\p{M}]+",
        r" ?\p{N}{1,3}",
        r" ?[^\s\p{L}\p{M}\p{N}]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """`ids` with every non-overlapping occurrence of `pair`, left to right, replaced by new_id."""
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def train_bpe(text: str, vocab_size: int, pattern: str = SPLIT_PATTERN) -> list[bytes]:
    """Learn byte-pair merges on `text` until the vocabulary has `vocab_size` tokens.

    The text is cut into pieces by `pattern` and each distinct piece is kept
    once with its count.  Every step merges the most frequent adjacent pair
    of tokens (ties: the pair of smallest ids) into a new token.  Pair counts
    are updated incrementally: only the pieces that hold the merged pair are
    recounted, and a heap with lazily discarded stale entries finds the next
    most frequent pair.

    Args:
        text: the corpus.
        vocab_size: 256 byte tokens plus the number of merges wanted.
        pattern: the regular expression that cuts the text into pieces.

    Returns:
        The tokens' bytes in rank order: the 256 single bytes, then one per merge.
        Fewer than vocab_size when the corpus runs out of pairs (with a warning).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size must be an integer, got {vocab_size!r}")
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (one token per byte), got {vocab_size}")
    pieces = Counter(regex.findall(pattern, text))
    words = [list(piece.encode("utf-8")) for piece in pieces]
    counts = list(pieces.values())
    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    holders: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> pieces that held it
    for w, ids in enumerate(words):
        for pair in zip(ids, ids[1:], strict=False):
            pair_counts[pair] += counts[w]
            holders[pair].add(w)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)

    tokens = [bytes([b]) for b in range(256)]
    rank = {token: i for i, token in enumerate(tokens)}
    while len(tokens) < vocab_size and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count:
            continue  # stale: the count changed after this entry was pushed
        merged = tokens[pair[0]] + tokens[pair[1]]
        if merged not in rank:  # two different pairs can spell the same bytes
            rank[merged] = len(tokens)
            tokens.append(merged)
        new_id = rank[merged]
        touched = set()
        for w in holders.pop(pair):
            ids, n = words[w], counts[w]
            new_ids = _merge(ids, pair, new_id)
            if len(new_ids) == len(ids):
                continue  # an earlier merge already took this piece's occurrences
            for old in zip(ids, ids[1:], strict=False):
                pair_counts[old] -= n
                touched.add(old)
            for new in zip(new_ids, new_ids[1:], strict=False):
                pair_counts[new] += n
                holders[new].add(w)
                touched.add(new)
            words[w] = new_ids
        for changed in touched:
            if pair_counts[changed] > 0:
                heapq.heappush(heap, (-pair_counts[changed], changed))
            else:
                del pair_counts[changed]
    if len(tokens) < vocab_size:
        warnings.warn(
            f"train_bpe: the text has no pairs left to merge after {len(tokens)} tokens; "
            f"the vocabulary is smaller than the {vocab_size} asked for",
            stacklevel=2,
        )
    return tokens


class BPETokenizer:
    """Byte-level byte-pair encoding: any text encodes, no character is unknown.

    Ids 0-255 are the single bytes; each later id is a merge of two earlier
    tokens, learned by `BPETokenizer.train`.  Encoding and decoding run in
    `tiktoken`, built from these tokens and the split pattern.

    Args:
        tokens: every token's bytes in rank order, the 256 single bytes first.
        pattern: the regular expression that cut the training text.
    """

    kind = "bpe"

    def __init__(self, tokens: Sequence[bytes], pattern: str = SPLIT_PATTERN) -> None:
        tokens = [bytes(t) for t in tokens]
        if tokens[:256] != [bytes([b]) for b in range(256)]:
            raise ValueError("BPETokenizer: tokens must start with the 256 single bytes, in order")
        if len(set(tokens)) != len(tokens):
            raise ValueError("BPETokenizer: tokens must be distinct byte strings")
        self.tokens, self.pattern = tokens, pattern
        self.encoding = tiktoken.Encoding(
            name=f"minigrad-bpe-{len(tokens)}",
            pat_str=pattern,
            mergeable_ranks={token: i for i, token in enumerate(tokens)},
            special_tokens={},
        )

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = SPLIT_PATTERN) -> BPETokenizer:
        """Learn merges on `text` up to `vocab_size` tokens (at least 256); see `train_bpe`."""
        return cls(train_bpe(text, vocab_size, pattern), pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        """Token ids of `text`."""
        return np.asarray(self.encoding.encode_ordinary(text), dtype=np.int64)

    def decode(self, ids: Any) -> str:
        """The text of token ids; bytes that are not valid UTF-8 become U+FFFD."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.vocab_size})")
        return self.encoding.decode(ids.tolist())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state: the split pattern and each token's bytes in hex, in rank order."""
        tokens = [t.hex() for t in self.tokens]
        return {"kind": self.kind, "pattern": self.pattern, "tokens": tokens}


def tokenizer_from_dict(state: dict[str, Any]) -> CharTokenizer | BPETokenizer:
    """Rebuild a tokenizer saved with `to_dict`."""
    kind = state.get("kind")
    if kind == "char":
        return CharTokenizer(state["chars"])
    if kind == "bpe":
        return BPETokenizer([bytes.fromhex(t) for t in state["tokens"]], state["pattern"])
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected 'char' or 'bpe'")


def build_tokenizer(kind: str, text: str, vocab_size: int = 512) -> CharTokenizer | BPETokenizer:
    """A tokenizer of `kind` ('char' or 'bpe') fitted to `text`; vocab_size is for 'bpe'."""
    if kind == "char":
        return CharTokenizer.from_text(text)
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size)
    raise ValueError(f"--tokenizer must be 'char' or 'bpe', got {kind!r}")

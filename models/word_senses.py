"""Attention gives one word different vectors in different contexts: a demo in seconds.

`python -m models.word_senses` (or `minigrad-gpt senses`) writes sentences in
which "apple" is a fruit ("she peeled a ripe apple pie .") or a company
("investors sold shares of apple stock ."), trains a tiny word-level
language model on them (an embedding, ONE causal attention layer, a linear
head) and compares the vectors of "apple" across contexts.

Before attention "apple" is one row of the embedding table wherever it
appears (the model has no position vectors), so any two of its vectors have
cosine similarity 1.  After attention each occurrence has mixed in the
words before it.  The word after "apple" ("pie" or "stock") depends on the
sense, so training pushes the two senses apart, while two fruit contexts
(or two company contexts) stay close.
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

import minigrad
from minigrad import Tensor, nn, optim
from minigrad.nn import functional as F
from models.commands import DefaultsShown

WORD = "apple"
# Each sense: who, what they did, the words just before "apple", what follows it.
SENSES: dict[str, dict[str, list[str]]] = {
    "fruit": {
        "subject": ["she", "he", "the child", "my friend", "the baker"],
        "verb": ["ate", "peeled", "sliced", "picked", "washed", "baked"],
        "before": ["a ripe", "a sweet", "a juicy", "a green", "the red"],
        "after": ["pie", "juice", "tart", "cider", "sauce"],
    },
    "company": {
        "subject": ["investors", "analysts", "the trader", "my friend", "the bank"],
        "verb": ["bought", "sold", "praised", "watched", "doubted", "valued"],
        "before": ["shares of", "stock in", "the new", "a stake in", "bonds of"],
        "after": ["stock", "earnings", "phones", "profits", "software"],
    },
}
PAD, END = "<pad>", "."


def sentence(sense: str, rng: np.random.Generator) -> list[str]:
    """One random sentence using WORD in `sense`, as a list of words ending in '.'."""
    parts = SENSES[sense]
    pick = {slot: parts[slot][rng.integers(len(parts[slot]))] for slot in parts}
    text = f"{pick['subject']} {pick['verb']} {pick['before']} {WORD} {pick['after']}"
    return text.split() + [END]


def vocabulary() -> list[str]:
    """Every word the sentences can use, PAD first."""
    words = {END, WORD}
    for parts in SENSES.values():
        for options in parts.values():
            words.update(w for option in options for w in option.split())
    return [PAD] + sorted(words)


class SenseModel(nn.Module):
    """Embedding, one causal self-attention layer with a residual, and a next-word head."""

    def __init__(self, vocab_size: int, width: int = 32, num_heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.attn = nn.MultiHeadAttention(width, num_heads)
        self.head = nn.Linear(width, vocab_size)

    def contextual(self, ids: np.ndarray) -> tuple[Tensor, Tensor]:
        """(before, after) attention: the embeddings and x + attention(x), both (B, T, width)."""
        x = self.embed(ids)
        return x, x + self.attn(x, x, x, is_causal=True)

    def forward(self, ids: np.ndarray) -> Tensor:
        """Next-word logits (B, T, vocab) for (B, T) word ids."""
        return self.head(self.contextual(ids)[1])


def encode(sentences: Sequence[list[str]], stoi: dict[str, int]) -> np.ndarray:
    """(N, longest) ids, padded at the end with PAD."""
    longest = max(len(s) for s in sentences)
    ids = np.full((len(sentences), longest), stoi[PAD], dtype=np.int64)
    for row, words in enumerate(sentences):
        ids[row, : len(words)] = [stoi[w] for w in words]
    return ids


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """cos of the angle between two vectors: 1 when they point the same way."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(
    steps: int = 200, batch_size: int = 64, seed: int = 0, log: Callable[[str], Any] = print
) -> dict[str, Any]:
    """Train the model, then measure how alike "apple" is across contexts.

    Returns:
        {"loss", "seconds", "pairs": [(label, sentence a, sentence b, before, after)],
        "mean": {"different senses" | "same sense": (before, after)}}, where
        before and after are cosine similarities of the word's vectors.
    """
    minigrad.manual_seed(seed)
    rng = np.random.default_rng(seed)
    words = vocabulary()
    stoi = {w: i for i, w in enumerate(words)}
    model = SenseModel(len(words))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    senses = list(SENSES)

    started = time.perf_counter()
    for step in range(steps):
        batch = [sentence(senses[rng.integers(2)], rng) for _ in range(batch_size)]
        ids = encode(batch, stoi)
        targets = np.where(ids[:, 1:] == stoi[PAD], -100, ids[:, 1:])  # padding teaches nothing
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(words)), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step}: loss {loss.item():.4f}")
    seconds = time.perf_counter() - started

    # Fresh sentences, 12 per sense; the vectors of WORD before and after attention.
    held_out = {sense: [sentence(sense, rng) for _ in range(12)] for sense in senses}
    vectors: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    with minigrad.no_grad():
        for sense, sentences in held_out.items():
            before, after = model.contextual(encode(sentences, stoi))
            where = [s.index(WORD) for s in sentences]
            vectors[sense] = [
                (" ".join(sentences[i]), before.data[i, w], after.data[i, w])
                for i, w in enumerate(where)
            ]

    def compare(a: tuple, b: tuple) -> tuple[float, float]:
        return cosine(a[1], b[1]), cosine(a[2], b[2])

    fruit, company = vectors["fruit"], vectors["company"]
    pairs = [
        ("fruit vs company", fruit[0], company[0]),
        ("fruit vs company", fruit[1], company[1]),
        ("fruit vs fruit", fruit[0], fruit[1]),
        ("company vs company", company[0], company[1]),
    ]
    different = [compare(a, b) for a in fruit for b in company]
    same = [compare(a, b) for group in (fruit, company) for a, b in combinations(group, 2)]
    return {
        "loss": loss.item(),
        "seconds": seconds,
        "pairs": [(label, a[0], b[0], *compare(a, b)) for label, a, b in pairs],
        "mean": {
            "different senses": tuple(np.mean(different, axis=0)),
            "same sense": tuple(np.mean(same, axis=0)),
        },
    }


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-gpt senses`."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-gpt senses",
        description="Train one attention layer and watch it separate two senses of 'apple'.",
    )
    parser.formatter_class = DefaultsShown
    parser.add_argument("--steps", type=int, default=200, help="training steps")
    parser.add_argument("--batch_size", type=int, default=64, help="sentences per step")
    parser.add_argument("--seed", type=int, default=0, help="seed for sentences and weights")
    parser.allow_abbrev = False  # no prefixes: `--lr` would quietly stand for another flag
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Train, then print the similarity table; returns the exit status."""
    args = build_parser().parse_args(argv)
    for name in ("steps", "batch_size"):
        if getattr(args, name) < 1:
            print(f"error: --{name} must be positive, got {getattr(args, name)}", file=sys.stderr)
            return 2
    if args.seed < 0:
        print(f"error: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return 2
    result = run(args.steps, args.batch_size, args.seed)
    print(f"trained in {result['seconds']:.1f}s, final loss {result['loss']:.4f}\n")
    print(f"cosine similarity of {WORD!r} in two sentences      before   after attention")
    for label, a, b, before, after in result["pairs"]:
        print(f"{label}\n  {a}\n  {b:<46}{before:6.3f}{after:10.3f}")
    print("\nmean over held-out sentence pairs (12 per sense)")
    for label, (before, after) in result["mean"].items():
        print(f"  {label:<46}{before:6.3f}{after:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

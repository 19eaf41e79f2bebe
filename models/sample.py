"""Sample text from a trained GPT: `minigrad-gpt sample` or `python -m models.sample`."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

from models.checkpoint import load_checkpoint, restore_model
from models.commands import DefaultsShown
from models.gpt import GPT, GPTConfig
from models.tokenizers import BPETokenizer, CharTokenizer, tokenizer_from_dict


def load_model(out_dir: str) -> tuple[GPT, CharTokenizer | BPETokenizer]:
    """The model and tokenizer saved in `out_dir`."""
    arrays, metadata = load_checkpoint(out_dir)
    model = GPT(GPTConfig(**metadata["model"]))
    restore_model(model, arrays, out_dir)
    model.eval()
    return model, tokenizer_from_dict(metadata["tokenizer"])


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-gpt sample`."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-gpt sample", description="Generate text from a trained GPT."
    )
    parser.formatter_class = DefaultsShown
    parser.add_argument("--out_dir", default="out-shakespeare-char", help="folder holding ckpt.npz")
    parser.add_argument(
        "--start",
        default="\n",
        metavar="TEXT",
        help="the prompt to continue (default: %(default)r)",
    )
    parser.add_argument("--num_samples", type=int, default=3, help="how many samples to draw")
    parser.add_argument("--max_new_tokens", type=int, default=500, help="tokens per sample")
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="below 1 sharpens, above 1 flattens; 0 is greedy",
    )
    parser.add_argument(
        "--top_k", type=int, default=200, help="sample among the k likeliest tokens"
    )
    parser.add_argument(
        "--top_p",
        type=float,
        default=None,
        help="then keep the fewest likeliest tokens whose probability reaches p",
    )
    parser.add_argument(
        "--no_cache",
        action="store_true",
        help="recompute the whole context for every token (same output, slower)",
    )
    parser.add_argument("--seed", type=int, default=1337, help="seed of the sampling generator")
    parser.allow_abbrev = False  # no prefixes: `--lr` would quietly stand for another flag
    return parser


def sample(args: argparse.Namespace) -> list[str]:
    """Draw `num_samples` continuations of `start`; returns them as text."""
    for name in ("num_samples", "top_k"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.max_new_tokens < 0:
        raise ValueError(f"--max_new_tokens must be >= 0, got {args.max_new_tokens}")
    if not args.temperature >= 0 or args.temperature == float("inf"):  # refuses nan too
        raise ValueError(f"--temperature must be a number >= 0, got {args.temperature}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise ValueError(f"--top_p must be in (0, 1], got {args.top_p}")
    model, tokenizer = load_model(args.out_dir)
    if not args.start:
        raise ValueError("--start is empty; give at least one character to continue")
    try:
        prompt = tokenizer.encode(args.start)
    except ValueError as error:
        raise ValueError(f"--start: {error}") from None
    rng = np.random.default_rng(args.seed)
    idx = np.tile(prompt, (args.num_samples, 1))
    out = model.generate(
        idx,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        rng=rng,
        top_p=args.top_p,
        use_cache=not args.no_cache,
    )
    return [tokenizer.decode(row) for row in out]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        texts = sample(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:  # NumPy's names the array it could not allocate
        print(
            f"error: out of memory ({error}); --num_samples {args.num_samples} sequences "
            f"of up to --max_new_tokens {args.max_new_tokens} more tokens: lower them",
            file=sys.stderr,
        )
        return 2
    for text in texts:
        print(text)
        print("---------------")
    return 0


if __name__ == "__main__":
    sys.exit(main())

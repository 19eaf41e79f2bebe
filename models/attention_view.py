"""Look inside a trained GPT: where every head of every layer attends, for one text.

`minigrad-gpt attention --out_dir out-shakespeare-char --text "ROMEO:"` runs
the model on the text and draws one heatmap per layer and head into a
single PNG (rows are layers, columns are heads; row i of a heatmap is query
position i, and its colours are how much it draws from each position j <= i).
Without matplotlib it prints, for each layer and head, the positions every
query attends to most.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from models.commands import DefaultsShown
from models.gpt import GPT
from models.sample import load_model

INSTALL_HINT = "for heatmaps install matplotlib: pip install '.[plot]' from the checkout"


def attention_maps(model: GPT, tokenizer: Any, text: str) -> tuple[list[str], list[np.ndarray]]:
    """Token labels of `text` and each layer's (n_head, T, T) attention weights.

    Only the last block_size tokens are used when the text is longer.
    """
    if not text:
        raise ValueError("--text is empty; give the text whose attention to show")
    try:
        ids = tokenizer.encode(text)
    except ValueError as error:
        raise ValueError(f"--text: {error}") from None
    ids = ids[-model.config.block_size :]
    labels = [tokenizer.decode([i]) for i in ids.tolist()]
    weights = model.attention_weights(ids[None, :])
    return labels, [w[0] for w in weights]


def describe_attention(
    labels: Sequence[str], weights: Sequence[np.ndarray], top: int = 3
) -> list[str]:
    """Lines naming, for every layer, head and query, its `top` most attended positions."""
    lines = []
    for layer, heads in enumerate(weights):
        for head, grid in enumerate(heads):  # grid: (T, T), rows are queries
            lines.append(f"layer {layer} head {head}:")
            for query, row in enumerate(grid):
                best = np.argsort(-row, kind="stable")[: min(top, query + 1)]
                picks = ", ".join(f"{labels[key]!r}@{key} {row[key]:.2f}" for key in best)
                lines.append(f"  {query:3d} {labels[query]!r} <- {picks}")
    return lines


def draw_attention(labels: Sequence[str], weights: Sequence[np.ndarray], path: Path) -> Path:
    """Draw every layer's and head's weights as a grid of heatmaps into the PNG `path`.

    Raises:
        ImportError: when matplotlib is not installed.
    """
    from matplotlib.figure import Figure  # optional: the `plot` extra

    n_layer, n_head = len(weights), weights[0].shape[0]
    T = len(labels)
    side = 2.2 + 0.08 * T
    figure = Figure(figsize=(side * n_head, side * n_layer), layout="constrained")
    axes = figure.subplots(n_layer, n_head, squeeze=False)
    ticks = [repr(label)[1:-1].replace(" ", "\u00b7") for label in labels]  # a visible space
    for layer in range(n_layer):
        for head in range(n_head):
            ax = axes[layer][head]
            image = ax.imshow(weights[layer][head], cmap="viridis", vmin=0.0, vmax=1.0)
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            if T <= 48:  # beyond that the labels overlap into a grey band
                ax.set_xticks(range(T), ticks, fontsize=6, rotation=90)
                ax.set_yticks(range(T), ticks, fontsize=6)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    figure.supxlabel("key position (attended to)")
    figure.supylabel("query position")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The flags of `minigrad-gpt attention`."""
    parser = parser or argparse.ArgumentParser(
        prog="minigrad-gpt attention",
        description="Draw the attention weights of a trained GPT on a text.",
    )
    parser.formatter_class = DefaultsShown
    parser.add_argument("--out_dir", default="out-shakespeare-char", help="folder holding ckpt.npz")
    parser.add_argument("--text", default="ROMEO:\nBut soft, what light", help="the text to run")
    parser.add_argument(
        "--plot_dir", default=None, help="folder for attention.png (default: --out_dir)"
    )
    parser.add_argument(
        "--top", type=int, default=3, help="without matplotlib: positions printed per query"
    )
    parser.allow_abbrev = False  # no prefixes: `--lr` would quietly stand for another flag
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (2 for a bad flag or checkpoint)."""
    args = build_parser().parse_args(argv)
    try:
        if args.top < 1:
            raise ValueError(f"--top must be positive, got {args.top}")
        model, tokenizer = load_model(args.out_dir)
        labels, weights = attention_maps(model, tokenizer, args.text)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    given = len(tokenizer.encode(args.text))
    if given > len(labels):
        print(
            f"note: --text is {given} tokens long; showing its last {len(labels)}, the "
            "model's context (block_size)"
        )
    print(f"{len(labels)} tokens, {len(weights)} layers of {weights[0].shape[0]} heads")
    path = Path(args.plot_dir or args.out_dir) / "attention.png"
    try:
        draw_attention(labels, weights, path)
    except OSError as error:
        flag = "--plot_dir" if args.plot_dir else "--out_dir"
        print(
            f"error: {flag} {str(path.parent)!r}: cannot write {path.name} there "
            f"({error.strerror or error}); expected a folder that can be created or written",
            file=sys.stderr,
        )
        return 2
    except ImportError:
        for line in describe_attention(labels, weights, args.top):
            print(line)
        print(f"matplotlib is not installed, so no heatmap was drawn; {INSTALL_HINT}")
        return 0
    print(f"attention heatmaps: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

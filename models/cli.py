"""The `minigrad-gpt` command: `train` a GPT, `sample` from it, look at its `attention`.

`senses` runs a separate few-second demo of what attention does to word vectors.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from models import attention_view, sample, train, word_senses
from models.commands import end_quietly


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="minigrad-gpt", description="Train and sample a GPT built on minigrad."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train.build_parser(commands.add_parser("train", help="train a GPT on a text file"))
    sample.build_parser(commands.add_parser("sample", help="generate text from a trained GPT"))
    attention_view.build_parser(
        commands.add_parser("attention", help="draw a trained GPT's attention weights on a text")
    )
    word_senses.build_parser(
        commands.add_parser("senses", help="demo: attention separates two senses of one word")
    )
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        parser.print_help()
        return 2
    command, rest = args[0], args[1:]
    # Unknown flags are left to the command's own parser, whose usage line is the useful one.
    parsed, _ = parser.parse_known_args(args)
    module = {"train": train, "sample": sample, "attention": attention_view, "senses": word_senses}[
        parsed.command
    ]
    return end_quietly(lambda: module.main(rest if command == parsed.command else args[1:]))


if __name__ == "__main__":
    sys.exit(main())

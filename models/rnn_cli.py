"""The `minigrad-rnn` command: the lecture's four recurrent-network examples.

    minigrad-rnn lorenz         forecast the chaotic Lorenz signal with SimpleRNN(5)
    minigrad-rnn hidden-space   compare a SimpleRNN's hidden states with the attractor
    minigrad-rnn menu           a recurrent network set by hand, then trained (BPTT)
    minigrad-rnn vanishing      the gradient through time, SimpleRNN against LSTM

Each prints its numbers and writes a plot to --out_dir (default out-rnn) when
matplotlib is installed; `minigrad-rnn <example> --help` lists its flags.  Each is
also `python -m models.<module>`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from models import hidden_space, lorenz, menu, vanishing
from models.commands import end_quietly

EXAMPLES = {
    "lorenz": (lorenz, "forecast the Lorenz system's x coordinate with a SimpleRNN"),
    "hidden-space": (hidden_space, "compare a SimpleRNN's hidden states with the attractor"),
    "menu": (menu, "the menu of the day: a recurrent network set by hand, then trained"),
    "vanishing": (vanishing, "how the gradient fades through time, SimpleRNN and LSTM"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser, one subcommand per example."""
    parser = argparse.ArgumentParser(
        prog="minigrad-rnn",
        description="The recurrent-network examples of the lecture, built on minigrad.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="EXAMPLE")
    for name, (module, summary) in EXAMPLES.items():
        module.build_parser(commands.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not args:
        parser.print_help()
        return 2
    # Checks the example's name and answers --help; the example's own parser, whose usage
    # line is the useful one, reports unknown flags.
    parser.parse_known_args(args)
    module, _ = EXAMPLES[args[0]]
    return end_quietly(lambda: module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())

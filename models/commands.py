"""What every command in models/ shares: flags made from a settings dataclass, checks, errors.

Each command keeps its settings in a dataclass whose fields are its flags
(`--name`, the field's default shown in --help); `run_command` parses them,
runs the command and turns a bad value into one `error: ...` line and exit
status 2, as argparse does for malformed flags.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


def parse_floats(text: str) -> tuple[float, ...]:
    """Parse a comma-separated list of numbers, e.g. `0.5,1,1.5`."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


class DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each flag's default, except a None, which its text explains."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_flags(
    parser: argparse.ArgumentParser,
    settings: type,
    help: Mapping[str, str],
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> argparse.ArgumentParser:
    """Add one flag per field of the dataclass `settings`, with its default and help text.

    A bool field becomes a switch; a tuple of numbers, a comma-separated list;
    a field whose default is None takes a string.
    """
    parser.formatter_class = DefaultsShown
    defaults = settings()
    for f in fields(settings):
        default = getattr(defaults, f.name)
        flag, text = f"--{f.name}", help[f.name]
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=text)
        elif isinstance(default, tuple):
            shown = ",".join(f"{d:g}" for d in default)
            parser.add_argument(flag, type=parse_floats, default=default, help=text, metavar=shown)
        else:
            kind = str if default is None else type(default)
            parser.add_argument(
                flag, type=kind, default=default, help=text, choices=(choices or {}).get(f.name)
            )
    parser.allow_abbrev = False  # no prefixes: `--lr` would quietly stand for another flag
    return parser


def require_positive(settings: Any, names: Sequence[str]) -> None:
    """Raise ValueError naming the first of `names` whose value is not a finite number > 0."""
    for name in names:
        value = getattr(settings, name)
        if not 0 < value < float("inf"):  # also refuses nan
            raise ValueError(f"--{name} must be positive, got {value}")


def run_command(
    run: Callable[[Any], Any],
    settings: type,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    errors: tuple[type[BaseException], ...] = (ValueError,),
) -> int:
    """Parse `argv` into `settings`, call `run` with them, and return the exit status.

    A plot folder (`--out_dir`) is checked before the work starts, when matplotlib
    is there to draw into it.
    """
    args = parser.parse_args(argv)
    try:
        if getattr(args, "seed", 0) < 0:  # NumPy's generators take only seeds >= 0
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
        out_dir = getattr(args, "out_dir", None)
        if out_dir is not None and importlib.util.find_spec("matplotlib") is not None:
            require_writable_folder(out_dir, "--out_dir")
        run(settings(**{f.name: getattr(args, f.name) for f in fields(settings)}))
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def require_writable_folder(folder: str, flag: str) -> None:
    """Create `folder` if need be and make sure a file can be written there."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"{flag} {folder!r}: cannot write there ({error.strerror or error}); expected a "
            "folder that can be created or written"
        ) from None


def end_quietly(main: Callable[[], int]) -> int:
    """Run a command's `main`, turning Ctrl-C and a closed output into exit statuses.

    Ctrl-C prints one line and gives 130, as a shell does (training catches it
    earlier, to save a checkpoint first).  When the reader of the output goes
    away, as `| head` does, the command stops without a traceback and gives 1.
    """
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Point stdout at /dev/null so that flushing it at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1

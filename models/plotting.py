"""Plots for the recurrent-network examples, when matplotlib is installed.

matplotlib is an optional extra (`pip install ".[plot]"` from the checkout): every example
computes and prints its numbers without it, and only the figure is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

INSTALL_HINT = 'pip install ".[plot]" from the checkout (or pip install matplotlib)'


def pyplot() -> Any | None:
    """matplotlib.pyplot drawing to files only (the Agg backend), or None when not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # no window: the examples run on servers and in tests
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, out_dir: str | Path, name: str) -> Path:
    """Write `figure` to out_dir/name (creating the folder), close it, and return the path.

    Raises ValueError naming --out_dir when the folder cannot be made or written.
    """
    import matplotlib.pyplot as plt

    path = Path(out_dir) / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as error:
        raise ValueError(
            f"--out_dir {str(out_dir)!r}: cannot write {path} there "
            f"({error.strerror or error}); expected a folder that can be created or written"
        ) from None
    finally:
        plt.close(figure)
    return path


def missing_message(what: str) -> str:
    """The line a command prints instead of a plot when matplotlib is missing."""
    return f"no plot of {what}: matplotlib is not installed; {INSTALL_HINT} to draw it"

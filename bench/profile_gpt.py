"""Where minigrad's time goes in one training iteration of the default GPT, op by op.

    python bench/profile_gpt.py [--iters 20] [--warmup 3] [--save gpt.prof]

The iteration is bench/gpt_step.py's `minigrad_step` (forward with loss,
backward, clip the gradient norm to 1.0, AdamW, zero the gradients) on the
default configuration and random batches.  After `--warmup` iterations, the
script times `--iters` iterations without a profiler (for reference), then
runs `--iters` more under cProfile and splits their time into rows:

- an op's forward: the cumulative time of each function defined at the top
  level of minigrad/ops/*.py, counting only calls from outside minigrad/ops
  and minigrad/optim, so an op that calls another op (split calls getitem)
  is counted once, under the outer name.  Calls through a
  wrapper that is itself called from inside ops (a Tensor method used by an
  op) are discounted by the share of the wrapper's calls that came from ops.
- an op's backward: the cumulative time of the closures (nested functions
  and lambdas) defined inside that op function, as the graph walk in
  minigrad/autograd.py calls them.
- graph walk: the cumulative time of `Tensor.backward` minus the closures
  above: ordering the nodes, summing broadcast gradients back to shape,
  adding gradients that meet, storing them in `.grad`, freeing the graph.
- each function of minigrad/optim/ called from outside it (the AdamW
  step, zero_grad, clip_grad_norm_), by name.
- other: the rest of the iteration: the model's own Python (Module calls,
  Tensor method wrappers, argument checks), `loss.item()`, and so on.

Which op a closure belongs to is read from the source with `ast` (each
top-level function's line range), so renamed or new ops need no change
here.  An op built from another op has its backward under the inner op's
name: split's pieces are getitem nodes, so their backward shows as getitem.

cProfile slows Python calls much more than NumPy's arithmetic, so the
profiled iteration is longer than the real one and small, frequent ops look
more expensive than they are: read the table for proportions.  PyTorch is
not used (nor imported).
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import minigrad.ops
import minigrad.optim
from minigrad import Tensor, autograd
from models.gpt import GPTConfig

HERE = Path(__file__).resolve().parent
FuncKey = tuple[str, int, str]  # cProfile's (filename, first line, name); ("~", 0, ...) for C


@dataclass
class SourceFunction:
    """A function defined at the top level of an ops module (or a method of a top-level class)."""

    label: str
    path: str
    first_line: int  # of its decorators, else of its `def`
    def_line: int
    last_line: int


def real(path: str) -> str:
    """`path` with symbolic links resolved, so that the profiler's names compare equal."""
    return os.path.realpath(path)


def source_functions(package: Any) -> list[SourceFunction]:
    """Every top-level function and method in a package's *.py files, with its line range."""
    found = []
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        module = package.__name__.rsplit(".", 1)[-1] if path.stem == "__init__" else path.stem
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            members = node.body if isinstance(node, ast.ClassDef) else [node]
            prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
            for item in members:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    first = min([item.lineno] + [d.lineno for d in item.decorator_list])
                    label = f"{module}.{prefix}{item.name}"
                    last = item.end_lineno or item.lineno
                    found.append(SourceFunction(label, real(str(path)), first, item.lineno, last))
    # Bare names where they are unique, module-qualified where two modules share one.
    bare = [function.label.split(".", 1)[1] for function in found]
    for function, name in zip(found, bare, strict=True):
        if bare.count(name) == 1:
            function.label = name
    return found


class SourceMap:
    """Find which ops function a profiled code object is, or is nested in."""

    def __init__(self, functions: list[SourceFunction]) -> None:
        self.by_path: dict[str, list[SourceFunction]] = {}
        for function in functions:
            self.by_path.setdefault(function.path, []).append(function)
        self.paths: dict[str, str] = {}

    def locate(self, key: FuncKey) -> tuple[SourceFunction | None, bool]:
        """(the enclosing ops function or None, whether `key` is that function itself)."""
        path = self.real(key[0])
        for function in self.by_path.get(path, ()):
            if function.first_line <= key[1] <= function.last_line:
                return function, key[1] in (function.first_line, function.def_line)
        return None, False

    def real(self, path: str) -> str:
        """`real(path)`, remembered; C functions' "~" stays as it is."""
        if path not in self.paths:
            self.paths[path] = real(path) if path != "~" else path
        return self.paths[path]


def package_dir(module: Any) -> str:
    """The folder of a package, ending in a separator, for prefix tests."""
    return real(str(Path(module.__file__).parent)) + os.sep


@dataclass
class Row:
    """One line of the table; times are seconds summed over all profiled iterations."""

    label: str
    calls: float = 0.0
    forward: float | None = None
    backward: float | None = None
    other: float = 0.0  # time that is neither forward nor backward (optimizer, rest)

    @property
    def total(self) -> float:
        return (self.forward or 0.0) + (self.backward or 0.0) + self.other


def attribute(stats: dict[FuncKey, Any], loop_key: FuncKey) -> tuple[list[Row], float]:
    """Split the profiled loop's time into rows; returns (rows, the loop's total seconds)."""
    ops = SourceMap(source_functions(minigrad.ops))
    optim = SourceMap(source_functions(minigrad.optim))
    ops_dir, optim_dir = package_dir(minigrad.ops), package_dir(minigrad.optim)
    autograd_file = real(autograd.__file__)

    def in_dir(key: FuncKey, directory: str) -> bool:
        return ops.real(key[0]).startswith(directory)

    def from_outside(caller: FuncKey) -> bool:
        """A call from outside ops and optim; a call from C code could come from anywhere."""
        return caller[0] != "~" and not (in_dir(caller, ops_dir) or in_dir(caller, optim_dir))

    def share_from_ops(caller: FuncKey) -> float:
        """The fraction of `caller`'s own calls that came from inside minigrad/ops."""
        entry = stats.get(caller)
        if entry is None or not entry[1]:
            return 0.0
        from_ops = sum(c[0] for key, c in entry[4].items() if in_dir(key, ops_dir))
        return from_ops / entry[1]

    rows: dict[str, Row] = {}
    closures_total = 0.0
    for key, (_, _, _, _, callers) in stats.items():
        if in_dir(key, ops_dir):
            function, is_itself = ops.locate(key)
            if function is None:
                continue
            row = rows.setdefault(function.label, Row(function.label))
            for caller, (calls, _, _, cumulative) in callers.items():
                if is_itself and from_outside(caller):
                    keep = 1.0 - share_from_ops(caller)
                    row.forward = (row.forward or 0.0) + cumulative * keep
                    row.calls += calls * keep
                elif not is_itself and ops.real(caller[0]) == autograd_file:
                    row.backward = (row.backward or 0.0) + cumulative
                    closures_total += cumulative
        elif in_dir(key, optim_dir):
            function, is_itself = optim.locate(key)
            if function is None or not is_itself:
                continue
            for caller, (calls, _, _, cumulative) in callers.items():
                if from_outside(caller):
                    row = rows.setdefault(function.label, Row(function.label))
                    row.calls += calls
                    row.other += cumulative

    walk_code = Tensor.backward.__code__
    walk = stats.get((walk_code.co_filename, walk_code.co_firstlineno, walk_code.co_name))
    if walk is not None:
        rows["graph walk"] = Row("graph walk", walk[1], None, walk[3] - closures_total)
    loop_total = stats[loop_key][3]
    rest = loop_total - sum(row.total for row in rows.values())
    rows["other"] = Row("other", other=rest)
    return [row for row in rows.values() if row.total > 0 or row.label == "other"], loop_total


def run_iterations(step: Callable[[np.ndarray, np.ndarray], float], batches: list[Any]) -> None:
    """The profiled loop: one training iteration per batch."""
    for x, y in batches:
        step(x, y)


def format_table(rows: list[Row], iters: int, loop_total: float) -> str:
    """The rows, largest total first, as a Markdown table in milliseconds per iteration."""

    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds / iters * 1000:.2f}"

    lines = [
        [
            "op",
            "calls/iter",
            "forward ms/iter",
            "backward ms/iter",
            "total ms/iter",
            "% of iteration",
        ]
    ]
    for row in sorted(rows, key=lambda r: r.total, reverse=True):
        calls = f"{row.calls / iters:.0f}" if row.calls else "-"
        share = f"{100 * row.total / loop_total:.1f}"
        lines.append([row.label, calls, ms(row.forward), ms(row.backward), ms(row.total), share])
    lines.append(["iteration (profiled)", "1", "", "", ms(loop_total), "100.0"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("| " + " | ".join(cells) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def run(iters: int, warmup: int, seed: int, save: str | None) -> list[Row]:
    """Warm up, time, profile, and print the table; returns its rows."""
    sys.modules.setdefault("torch", None)  # gpt_step's `import torch` fails: torch never loads
    sys.path.insert(0, str(HERE))
    from gpt_step import BATCH_SIZE, minigrad_step

    config = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=75)
    _, step = minigrad_step(config)
    rng = np.random.default_rng(seed)
    shape = (BATCH_SIZE, config.block_size)
    batches = [
        (rng.integers(0, config.vocab_size, shape), rng.integers(0, config.vocab_size, shape))
        for _ in range(warmup + 2 * iters)
    ]
    print(
        f"default GPT (n_layer {config.n_layer}, n_head {config.n_head}, n_embd {config.n_embd}, "
        f"block_size {config.block_size}, vocab_size {config.vocab_size}, batch_size "
        f"{BATCH_SIZE}, float32); numpy {np.__version__}"
    )
    print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    run_iterations(step, batches[:warmup])
    times = []
    for x, y in batches[warmup : warmup + iters]:
        start = time.perf_counter()
        step(x, y)
        times.append((time.perf_counter() - start) * 1000)
    profiler = cProfile.Profile()
    profiler.runcall(run_iterations, step, batches[warmup + iters :])
    profiler.create_stats()

    code = run_iterations.__code__
    rows, loop_total = attribute(
        profiler.stats, (code.co_filename, code.co_firstlineno, code.co_name)
    )
    print(f"without profiler: median {statistics.median(times):.2f} ms/iter ({iters} iters)")
    print(f"under cProfile:   {loop_total / iters * 1000:.2f} ms/iter ({iters} iters)")
    print(format_table(rows, iters, loop_total))
    if save:
        profiler.dump_stats(save)
        print(f"saved the raw profile to {save} (python -m pstats {save})")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20, help="iterations timed, then profiled")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batches")
    parser.add_argument("--save", help="also write the raw cProfile stats to this file")
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error(f"need --iters >= 1 and --warmup >= 0, got {args.iters} and {args.warmup}")
    run(args.iters, args.warmup, args.seed, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())

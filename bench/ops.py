"""Time single ops at the default GPT's sizes, forward and backward, in minigrad and in PyTorch.

    python bench/ops.py [--rounds 5] [--repeats 10] [--only gelu] [--torch-threads 0] [--no-torch]

Every op runs at the size it has in one training step of the default GPT
(batch 12, block 64, n_embd 128, 4 heads, vocabulary 75, float32), on the
same random inputs in both frameworks, each floating input requiring a
gradient.  Two things are timed, separately:

- forward: one call of the op with the graph being recorded, as in training
  (the output's graph node is built; nothing else happens).
- backward: `out.backward(g)`, with g a fixed random gradient of the output's
  shape, on a graph built just before from the same inputs.  Building that
  graph, and setting the inputs' `.grad` to None as zero_grad leaves them,
  are not timed.  The time covers the whole walk from `out`: the op's
  backward rule and storing the gradients in the inputs' `.grad`.

The frameworks take turns in one process.  In each of `--rounds` rounds,
every op runs in one framework and then in the other (the order flips every
round): one untimed forward and backward first, so that the other
framework's idle threads settle, then `--repeats` timed forwards and
`--repeats` timed backwards.  The table shows medians over all rounds in
microseconds and the ratio minigrad / torch.  Before timing, each op's
output and input gradients are compared with PyTorch's.  PyTorch runs
eagerly with its default thread count (`--torch-threads` sets another).

Both frameworks spread large ops over every core and their threads wait
for each other by spinning, so when another process keeps a core busy the
times jump to multiples of the scheduler's time slice (several milliseconds)
and mean nothing: check the load average the script prints, or compare
single-threaded with `OPENBLAS_NUM_THREADS=1` and `--torch-threads 1`.
Without PyTorch installed (or with `--no-torch`) the script times minigrad
alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from minigrad import Tensor
from minigrad.nn import functional as F

try:
    import torch
    from torch.nn import functional as torch_F
except ImportError:  # the benchmark still times minigrad
    torch = None

BATCH, BLOCK, N_EMBD, N_HEAD, VOCAB = 12, 64, 128, 4, 75


@dataclass
class OpCase:
    """One op at one size: its inputs and how each framework calls it."""

    name: str
    shape: str
    arrays: list[np.ndarray]  # floating arrays require a gradient; integer ones are indices
    minigrad_fn: Callable[..., Any]
    torch_fn: Callable[..., Any]


def op_cases(rng: np.random.Generator) -> list[OpCase]:
    """The ops of one GPT training step, at the default configuration's sizes."""

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    B, T, C, H, V = BATCH, BLOCK, N_EMBD, N_HEAD, VOCAB
    cases = []
    # The Linear layers: c_attn, c_fc, the MLP's c_proj and lm_head.
    for n_in, n_out in ((C, 3 * C), (C, 4 * C), (4 * C, C), (C, V)):
        cases.append(
            OpCase(
                "linear",
                f"({B},{T},{n_in}) @ ({n_out},{n_in}).T",
                [normal(B, T, n_in), normal(n_out, n_in, scale=0.02)],
                lambda x, w: F.linear(x, w),
                lambda x, w: torch_F.linear(x, w),
            )
        )
    cases += [
        OpCase(
            "matmul",
            f"({B},{T},{C}) @ ({4 * C},{C}).T",
            [normal(B, T, C), normal(4 * C, C, scale=0.02)],
            lambda x, w: x @ w.T,
            lambda x, w: x @ w.T,
        ),
        OpCase(
            "softmax",
            f"({B},{H},{T},{T}), last axis",
            [normal(B, H, T, T)],
            lambda x: F.softmax(x, -1),
            lambda x: torch.softmax(x, -1),
        ),
        OpCase(
            "layer_norm",
            f"({B},{T},{C}), weight and bias",
            [normal(B, T, C), 1 + normal(C, scale=0.1), normal(C, scale=0.1)],
            lambda x, w, b: F.layer_norm(x, (C,), w, b),
            lambda x, w, b: torch_F.layer_norm(x, (C,), w, b),
        ),
        OpCase(
            "gelu",
            f"({B},{T},{4 * C}), exact erf",
            [normal(B, T, 4 * C)],
            lambda x: F.gelu(x),
            lambda x: torch_F.gelu(x),
        ),
        OpCase(
            "cross_entropy",
            f"({B * T},{V}) logits, int targets",
            [normal(B * T, V), rng.integers(0, V, B * T)],
            lambda logits, y: F.cross_entropy(logits, y),
            lambda logits, y: torch_F.cross_entropy(logits, y),
        ),
        OpCase(
            "attention",
            f"q,k,v ({B},{H},{T},{C // H}), causal",
            [normal(B, H, T, C // H) for _ in range(3)],
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            lambda q, k, v: torch_F.scaled_dot_product_attention(q, k, v, is_causal=True),
        ),
        OpCase(
            "embedding",
            f"({B},{T}) indices into ({V},{C})",
            [rng.integers(0, V, (B, T)), normal(V, C, scale=0.02)],
            lambda idx, w: F.embedding(idx, w),
            lambda idx, w: torch_F.embedding(idx, w),
        ),
    ]
    return cases


def is_float(array: np.ndarray) -> bool:
    """Whether an input is a value that needs a gradient, rather than indices."""
    return np.issubdtype(array.dtype, np.floating)


def minigrad_inputs(arrays: list[np.ndarray]) -> list[Any]:
    """Floating arrays as Tensors requiring a gradient; index arrays stay arrays."""
    return [Tensor(a.copy(), requires_grad=True) if is_float(a) else a for a in arrays]


def torch_inputs(arrays: list[np.ndarray]) -> list[Any]:
    """The same inputs as torch tensors."""
    return [torch.from_numpy(a.copy()).requires_grad_(is_float(a)) for a in arrays]


class Runner:
    """One framework's view of an op: its inputs, its upstream gradient, and the calls to time."""

    def __init__(self, framework: str, case: OpCase, upstream: np.ndarray) -> None:
        if framework == "minigrad":
            self.fn, self.inputs = case.minigrad_fn, minigrad_inputs(case.arrays)
            self.upstream: Any = upstream
        else:
            self.fn, self.inputs = case.torch_fn, torch_inputs(case.arrays)
            self.upstream = torch.from_numpy(upstream.copy())
        self.leaves = [x for x, a in zip(self.inputs, case.arrays, strict=True) if is_float(a)]

    def forward(self) -> Any:
        return self.fn(*self.inputs)

    def backward(self, out: Any) -> None:
        out.backward(self.upstream)

    def clear_grads(self) -> None:
        for x in self.leaves:
            x.grad = None

    def results(self) -> list[np.ndarray]:
        """The output and every input gradient of one forward and backward, as arrays."""
        self.clear_grads()
        out = self.forward()
        self.backward(out)
        return [to_numpy(value) for value in (out, *(x.grad for x in self.leaves))]

    def time_forward(self, repeats: int) -> list[float]:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = self.forward()
            times.append(time.perf_counter() - start)
            del out
        return times

    def time_backward(self, repeats: int) -> list[float]:
        times = []
        for _ in range(repeats):
            out = self.forward()
            self.clear_grads()
            start = time.perf_counter()
            self.backward(out)
            times.append(time.perf_counter() - start)
        return times


def to_numpy(value: Any) -> np.ndarray:
    """The array inside a minigrad Tensor, a torch tensor or an ndarray."""
    if isinstance(value, Tensor):
        return value.data
    if torch is not None and torch.is_tensor(value):
        return value.detach().numpy()
    return np.asarray(value)


def largest_difference(mine: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    """The largest absolute difference of any pair, relative to the largest value of theirs."""
    worst = 0.0
    for a, b in zip(mine, theirs, strict=True):
        scale = max(float(np.abs(b).max()), 1e-30)
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()) / scale)
    return worst


def microseconds(seconds: list[float]) -> float:
    """The median of `seconds`, in microseconds."""
    return statistics.median(seconds) * 1e6


def format_table(rows: list[list[str]]) -> str:
    """Rows of cells as a Markdown table, columns padded to line up (numbers to the right)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def run(rounds: int, repeats: int, only: set[str] | None, use_torch: bool) -> list[list[str]]:
    """Check each op against PyTorch, time both frameworks in turns, print and return the table."""
    rng = np.random.default_rng(0)
    cases = [case for case in op_cases(rng) if only is None or case.name in only]
    frameworks = ["minigrad", "torch"] if use_torch else ["minigrad"]
    runners: list[dict[str, Runner]] = []
    for case in cases:
        out_shape = case.minigrad_fn(*minigrad_inputs(case.arrays)).shape
        upstream = rng.standard_normal(out_shape).astype(np.float32)
        runners.append({name: Runner(name, case, upstream) for name in frameworks})

    print(
        f"numpy {np.__version__}"
        + (
            f", torch {torch.__version__} with {torch.get_num_threads()} threads"
            if use_torch
            else "; torch not used, timing minigrad alone"
        )
        + f"; {rounds} rounds of {repeats} repeats per op"
    )
    if use_torch:
        worst = 0.0
        for case, pair in zip(cases, runners, strict=True):
            difference = largest_difference(pair["minigrad"].results(), pair["torch"].results())
            worst = max(worst, difference)
            if difference > 1e-4:
                print(f"{case.name} {case.shape}: differs from torch by {difference:.1e}")
        print(f"outputs and input gradients agree with torch to {worst:.1e} (relative)")
    print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    forward: list[dict[str, list[float]]] = [{name: [] for name in frameworks} for _ in cases]
    backward: list[dict[str, list[float]]] = [{name: [] for name in frameworks} for _ in cases]
    for r in range(rounds):
        order = frameworks if r % 2 == 0 else frameworks[::-1]
        for i, pair in enumerate(runners):
            for name in order:
                runner = pair[name]
                runner.backward(runner.forward())  # untimed: let the other's threads settle
                forward[i][name] += runner.time_forward(repeats)
                backward[i][name] += runner.time_backward(repeats)

    rows = [
        [
            "op",
            "shape",
            "fwd minigrad us",
            "fwd torch us",
            "ratio",
            "bwd minigrad us",
            "bwd torch us",
            "ratio",
        ]
    ]
    for case, fwd, bwd in zip(cases, forward, backward, strict=True):
        row = [case.name, case.shape]
        for times in (fwd, bwd):
            mine = microseconds(times["minigrad"])
            if use_torch:
                theirs = microseconds(times["torch"])
                row += [f"{mine:.1f}", f"{theirs:.1f}", f"{mine / theirs:.2f}"]
            else:
                row += [f"{mine:.1f}", "-", "-"]
        rows.append(row)
    print(format_table(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="turns of each framework per op")
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed forwards and backwards per turn"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated op names to time (default: all)"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="PyTorch's threads; 0 keeps its default"
    )
    parser.add_argument("--no-torch", action="store_true", help="time minigrad alone")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1 or args.torch_threads < 0:
        parser.error(
            f"need --rounds >= 1, --repeats >= 1 and --torch-threads >= 0, got {args.rounds}, "
            f"{args.repeats} and {args.torch_threads}"
        )
    names = {case.name for case in op_cases(np.random.default_rng(0))}
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    if only is not None and not only <= names:
        parser.error(f"--only: unknown op(s) {sorted(only - names)}; choose from {sorted(names)}")
    if torch is None and not args.no_torch:
        print("PyTorch is not installed: timing minigrad alone")
    elif torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    run(args.rounds, args.repeats, only, torch is not None and not args.no_torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

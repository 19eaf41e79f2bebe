"""Measure the fixed cost of one op, forward and backward, in minigrad and in PyTorch.

    python bench/overhead.py [--cycles 100] [--size 8] [--rounds 5] [--repeats 5] [--no-torch]

On tensors this small (8 x 8 by default) the arithmetic is nearly free, so
the time of a long chain of ops is the frameworks' own per-op work: Python
dispatch, checking arguments, allocating the result, recording and walking
the graph.  The program is written once (`chain`) and runs unchanged on
both frameworks' tensors: `--cycles` rounds of ten ops (mul, add of a
broadcast row, tanh, exp, sum over an axis with keepdims, mul by a Python
number, sub, reshape to a vector, mul by a Python number, reshape back), then one sum to
a scalar loss, so 1001 ops by default.  The input x, the weight w and the
row b all require a gradient.

Forward is the time of `chain` building its graph; backward is the time of
`loss.backward()` on it, with the leaves' `.grad` set to None first
(untimed).  Each is divided by the number of ops.  The frameworks take
turns in one process: in each of `--rounds` rounds each runs one untimed
chain (to let the other's idle threads settle) and then `--repeats` timed
ones; the medians are compared.  Both must give the same loss and
gradients, which the script checks and prints first.  PyTorch runs eagerly
with its default thread count.  Without PyTorch installed (or with
`--no-torch`) the script times minigrad alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from minigrad import Tensor

try:
    import torch
except ImportError:  # the benchmark still times minigrad
    torch = None

OPS_PER_CYCLE = 10


def chain(x: Any, w: Any, b: Any, cycles: int) -> Any:
    """The program both frameworks run: `cycles` rounds of ten small ops, then a sum."""
    rows, columns = x.shape
    h = x
    for _ in range(cycles):
        h = h * w
        h = h + b  # b is one row, broadcast over the rows
        h = h.tanh()
        e = h.exp()
        s = e.sum(axis=1, keepdims=True)  # (rows, 1)
        h = h - s * 0.1
        h = h.reshape(-1)  # (rows * columns,)
        h = h * 0.9
        h = h.reshape(rows, columns)
    return h.sum()


def leaves(framework: str, arrays: list[np.ndarray]) -> list[Any]:
    """The inputs as one framework's tensors, each requiring a gradient."""
    if framework == "minigrad":
        return [Tensor(a.copy(), requires_grad=True) for a in arrays]
    return [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]


def to_numpy(value: Any) -> np.ndarray:
    """The array of a loss or gradient of either framework."""
    if isinstance(value, Tensor):
        return value.data
    if torch is not None and torch.is_tensor(value):
        return value.detach().numpy()
    return np.asarray(value)


def run_once(inputs: list[Any], cycles: int) -> tuple[float, float, float]:
    """(forward seconds, backward seconds, loss) of one chain."""
    for x in inputs:
        x.grad = None
    start = time.perf_counter()
    loss = chain(*inputs, cycles)
    middle = time.perf_counter()
    loss.backward()
    end = time.perf_counter()
    return middle - start, end - middle, float(loss.item())


def check_agreement(tensors: dict[str, list[Any]], cycles: int) -> float:
    """Run the chain once in each framework; raise unless losses and gradients agree."""
    results = {}
    for name, inputs in tensors.items():
        loss = run_once(inputs, cycles)[2]
        results[name] = [np.asarray(loss), *(to_numpy(x.grad) for x in inputs)]
    if "torch" in results:
        for label, mine, theirs in zip(
            ("loss", "x.grad", "w.grad", "b.grad"),
            results["minigrad"],
            results["torch"],
            strict=True,
        ):
            if not np.allclose(mine, theirs, rtol=1e-4, atol=1e-5):
                difference = float(np.abs(mine - theirs).max())
                raise AssertionError(
                    f"overhead: minigrad and torch disagree on {label} by up to {difference:.3g}"
                )
    return float(results["minigrad"][0])


def run(
    cycles: int, size: int, rounds: int, repeats: int, use_torch: bool
) -> dict[str, dict[str, float]]:
    """Time the chain in each framework, in turns; print and return microseconds per op."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.standard_normal((size, size)).astype(np.float32),
        (rng.standard_normal((size, size)) * 0.5).astype(np.float32),
        (rng.standard_normal(size) * 0.1).astype(np.float32),
    ]
    frameworks = ["minigrad", "torch"] if use_torch else ["minigrad"]
    tensors = {name: leaves(name, arrays) for name in frameworks}
    n_ops = cycles * OPS_PER_CYCLE + 1

    print(
        f"numpy {np.__version__}"
        + (
            f", torch {torch.__version__} with {torch.get_num_threads()} threads"
            if use_torch
            else "; torch not used, timing minigrad alone"
        )
    )
    print(
        f"chain of {n_ops} ops ({cycles} cycles of {OPS_PER_CYCLE}, then a sum) on "
        f"({size},{size}) float32 tensors; {rounds} rounds of {repeats} repeats"
    )
    loss = check_agreement(tensors, cycles)
    agreed = ", the same in torch (losses and gradients agree)" if use_torch else ""
    print(f"loss {loss:.6f}{agreed}")
    print(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    forward: dict[str, list[float]] = {name: [] for name in frameworks}
    backward: dict[str, list[float]] = {name: [] for name in frameworks}
    for r in range(rounds):
        for name in frameworks if r % 2 == 0 else frameworks[::-1]:
            run_once(tensors[name], cycles)  # untimed: let the other's threads settle
            for _ in range(repeats):
                seconds_forward, seconds_backward, _ = run_once(tensors[name], cycles)
                forward[name].append(seconds_forward)
                backward[name].append(seconds_backward)

    per_op = {}
    for name in frameworks:
        f = statistics.median(forward[name]) / n_ops * 1e6
        b = statistics.median(backward[name]) / n_ops * 1e6
        per_op[name] = {"forward": f, "backward": b, "total": f + b}
    print(f"{'us per op':<16}{'forward':>10}{'backward':>10}{'total':>10}")
    for name, times in per_op.items():
        print(
            f"{name:<16}" + "".join(f"{times[k]:10.2f}" for k in ("forward", "backward", "total"))
        )
    if use_torch:
        ratios = {k: per_op["minigrad"][k] / per_op["torch"][k] for k in per_op["torch"]}
        print(
            f"{'minigrad/torch':<16}"
            + "".join(f"{ratios[k]:9.2f}x" for k in ("forward", "backward", "total"))
        )
    return per_op


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cycles", type=int, default=100, help=f"rounds of {OPS_PER_CYCLE} ops in the chain"
    )
    parser.add_argument("--size", type=int, default=8, help="tensors are (size, size)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of each framework")
    parser.add_argument("--repeats", type=int, default=5, help="timed chains per turn")
    parser.add_argument("--no-torch", action="store_true", help="time minigrad alone")
    args = parser.parse_args(argv)
    if min(args.cycles, args.size, args.rounds, args.repeats) < 1:
        parser.error(
            f"--cycles, --size, --rounds and --repeats must be >= 1, got {args.cycles}, "
            f"{args.size}, {args.rounds} and {args.repeats}"
        )
    if torch is None and not args.no_torch:
        print("PyTorch is not installed: timing minigrad alone")
    run(args.cycles, args.size, args.rounds, args.repeats, torch is not None and not args.no_torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

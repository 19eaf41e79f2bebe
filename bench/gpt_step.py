"""Time one GPT training iteration in minigrad and in PyTorch, same weights, same batches.

    python bench/gpt_step.py [--iters 50] [--warmup 5] [--block 10] [--settle 3]

An iteration is what models/train.py does each step: forward with loss,
backward, clip the gradient norm to 1.0, an AdamW step over two parameter
groups (decay for matrices and embeddings only), and zeroing the gradients.
The two frameworks take turns in one process, `--block` iterations at a
time, so both see the same machine load; each iteration's wall time is
recorded and the medians are compared.  PyTorch runs eagerly with its
default thread count.  Without PyTorch installed the script times minigrad
alone.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import minigrad
from minigrad import optim
from models.gpt import GPT, GPTConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import torch
    from torch_gpt import TorchGPT, copy_minigrad_weights
except ImportError:  # the benchmark still times minigrad
    torch = None

BATCH_SIZE = 12
LEARNING_RATE, BETAS, WEIGHT_DECAY, GRAD_CLIP = 1e-3, (0.9, 0.99), 0.1, 1.0


def minigrad_step(config: GPTConfig) -> tuple[GPT, Callable[[np.ndarray, np.ndarray], float]]:
    """A float32 minigrad GPT and a function running one training iteration on a batch."""
    minigrad.manual_seed(1337)
    model = GPT(config)
    params = list(model.parameters())
    optimizer = optim.AdamW(model.optimizer_groups(WEIGHT_DECAY), lr=LEARNING_RATE, betas=BETAS)

    def step(x: np.ndarray, y: np.ndarray) -> float:
        _, loss = model(x, y)
        loss.backward()
        optim.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return model, step


def torch_step(config: GPTConfig, weights_from: GPT) -> Callable[[np.ndarray, np.ndarray], float]:
    """The same iteration in PyTorch, starting from a copy of the minigrad model's weights."""
    model = copy_minigrad_weights(TorchGPT(config), weights_from)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        model.optimizer_groups(WEIGHT_DECAY), lr=LEARNING_RATE, betas=BETAS
    )

    def step(x: np.ndarray, y: np.ndarray) -> float:
        _, loss = model(torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def timed(
    step: Callable[[np.ndarray, np.ndarray], float], x: np.ndarray, y: np.ndarray
) -> tuple[float, float]:
    """(milliseconds, loss) of one call."""
    start = time.perf_counter()
    loss = step(x, y)
    return (time.perf_counter() - start) * 1000, loss


def summary(name: str, times: list[float]) -> str:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else times * 3
    return (
        f"{name:<9}median {statistics.median(times):8.2f} ms/iter  "
        f"(quartiles {quartiles[0]:.2f} .. {quartiles[2]:.2f}, {len(times)} iters)"
    )


def run(
    iters: int,
    warmup: int,
    seed: int,
    block: int = 10,
    settle: int = 3,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Warm up, then time `iters` iterations of each framework in alternating blocks.

    Each framework in turn runs `block` consecutive iterations on the same
    batches.  The first `settle` iterations after a switch are left out of the
    median: NumPy's BLAS threads and PyTorch's OpenMP threads keep spinning for
    up to about 0.1 s after their last call and slow whichever framework runs
    next.

    Returns:
        {"minigrad": [ms, ...], "torch": [ms, ...] or None,
         "after_switch": {name: [ms, ...]}, "losses": {name: [loss, ...]}}
    """
    config = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=75)
    model, steps = minigrad_step(config)
    frameworks = {"minigrad": steps}
    if torch is not None:
        frameworks["torch"] = torch_step(config, model)
    settle = settle if len(frameworks) > 1 else 0  # untimed iterations after each switch
    n_blocks = math.ceil(iters / (block - settle))
    rng = np.random.default_rng(seed)
    shape = (BATCH_SIZE, config.block_size)
    batches = [
        (rng.integers(0, config.vocab_size, shape), rng.integers(0, config.vocab_size, shape))
        for _ in range(warmup + n_blocks * block)
    ]

    log(
        f"config: n_layer {config.n_layer}, n_head {config.n_head}, n_embd {config.n_embd}, "
        f"block_size {config.block_size}, vocab_size {config.vocab_size}, "
        f"batch_size {BATCH_SIZE}, float32"
    )
    log(
        f"parameters: {model.num_parameters() / 1e6:.2f}M; numpy {np.__version__}"
        + (
            f", torch {torch.__version__} with {torch.get_num_threads()} threads"
            if torch is not None
            else "; torch not installed, timing minigrad alone"
        )
    )
    log(f"load average before timing: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    times: dict[str, list[float]] = {name: [] for name in frameworks}
    after_switch: dict[str, list[float]] = {name: [] for name in frameworks}
    losses: dict[str, list[float]] = {name: [] for name in frameworks}
    for x, y in batches[:warmup]:
        for name, step in frameworks.items():
            losses[name].append(timed(step, x, y)[1])
    for b in range(n_blocks):
        order = list(frameworks) if b % 2 == 0 else list(reversed(frameworks))
        for name in order:
            for j in range(block):
                ms, loss = timed(frameworks[name], *batches[warmup + b * block + j])
                losses[name].append(loss)
                if j < settle:
                    after_switch[name].append(ms)
                elif len(times[name]) < iters:
                    times[name].append(ms)

    for i in sorted({0, warmup, len(batches) - 1}):
        shown = ", ".join(f"{name} {losses[name][i]:.4f}" for name in frameworks)
        log(f"iter {i}: loss {shown}")
    for name, values in times.items():
        log(summary(name, values))
    if "torch" in times:
        ratio = statistics.median(times["minigrad"]) / statistics.median(times["torch"])
        log(f"ratio minigrad/torch: {ratio:.2f}x")
        shown = ", ".join(f"{name} {statistics.median(v):.2f}" for name, v in after_switch.items())
        log(f"iterations just after a switch (left out above): median ms {shown}")
    return {
        "minigrad": times["minigrad"],
        "torch": times.get("torch"),
        "after_switch": after_switch,
        "losses": losses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=50, help="timed iterations per framework")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batches")
    parser.add_argument(
        "--block", type=int, default=10, help="consecutive iterations of one framework per turn"
    )
    parser.add_argument(
        "--settle", type=int, default=3, help="untimed iterations after each switch"
    )
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or not 0 <= args.settle < args.block:
        parser.error(
            f"need --iters >= 1, --warmup >= 0 and 0 <= --settle < --block, got {args.iters}, "
            f"{args.warmup}, {args.settle} and {args.block}"
        )
    run(args.iters, args.warmup, args.seed, args.block, args.settle)
    return 0


if __name__ == "__main__":
    sys.exit(main())

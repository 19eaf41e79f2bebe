"""Tokens per second of GPT.generate with and without the key/value cache.

    python bench/sampling.py [--new_tokens 500] [--repeats 3]

Two configurations, both nanoGPT's small CPU model (4 layers, 4 heads, 128
wide) on a 65-token vocabulary with untrained weights (speed does not depend
on the weights): the default block_size 64, and block_size 512.  Generation
starts from a one-token prompt.

With block 64 the window fills after 63 tokens; from then on the cache is
rebuilt from the cropped window for every token (see the NOTE in
`GPT.generate`), so it saves little.  With block 512 all 500 tokens fit in
the window, each costs one position instead of the whole context, and the
cache's effect shows.  Runs alternate between the two modes and the median
is reported, since the machine may be shared.  On a busy machine OpenBLAS's
threads can spin against other processes and slow these small products many
times over; `OPENBLAS_NUM_THREADS=1 python bench/sampling.py` is steadier.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import minigrad
from models.gpt import GPT, GPTConfig


def tokens_per_second(
    model: GPT, new_tokens: int, use_cache: bool, seed: int
) -> tuple[float, np.ndarray]:
    """Generate `new_tokens` after a one-token prompt; (tokens per second, the ids)."""
    prompt = np.zeros((1, 1), dtype=np.int64)
    start = time.perf_counter()
    out = model.generate(
        prompt,
        new_tokens,
        temperature=1.0,
        top_k=None,
        rng=np.random.default_rng(seed),
        use_cache=use_cache,
    )
    return new_tokens / (time.perf_counter() - start), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new_tokens", type=int, default=500, help="tokens generated per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode and configuration")
    args = parser.parse_args()

    for block_size in (64, 512):
        minigrad.manual_seed(0)
        model = GPT(GPTConfig(block_size=block_size))
        rates: dict[bool, list[float]] = {True: [], False: []}
        outputs = {}
        for repeat in range(args.repeats):
            for use_cache in (True, False) if repeat % 2 == 0 else (False, True):
                rate, outputs[use_cache] = tokens_per_second(
                    model, args.new_tokens, use_cache, seed=repeat
                )
                rates[use_cache].append(rate)
            same = np.array_equal(outputs[True], outputs[False])
            if not same:
                raise SystemExit(f"block {block_size}: cached and uncached samples differ")
        with_cache, without = np.median(rates[True]), np.median(rates[False])
        print(
            f"block_size {block_size:3d}, {args.new_tokens} tokens: "
            f"{with_cache:7.1f} tok/s with the cache, {without:7.1f} tok/s without "
            f"({with_cache / without:.2f}x), identical tokens"
        )


if __name__ == "__main__":
    main()

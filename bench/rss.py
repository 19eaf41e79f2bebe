"""Resident memory of the default training run, sampled every 100 iterations.

Trains the default configuration of `minigrad-gpt train` (the bundled
Shakespeare corpus, 4 layers, 4 heads, 128-wide embeddings, context 64,
batch 12, evaluations and checkpoints every 250 iterations) for `--iters`
iterations into a temporary folder, and prints the process's resident set
size (VmRSS in /proc/self/status) every `--every` iterations.  A graph that
failed to free itself would show as RSS climbing with the iteration count;
after warm-up the numbers should stay flat.

    python bench/rss.py --iters 2000
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from models.train import TrainConfig, train

ITER_LINE = re.compile(r"(iter|step) (\d+): ")


def rss_mib() -> float:
    """This process's resident set size now, in MiB.

    Read from /proc/self/status; where that does not exist, the peak RSS
    reported by getrusage (kilobytes on Linux, bytes on macOS) stands in.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=2000, help="training iterations")
    parser.add_argument("--every", type=int, default=100, help="print RSS every this many")
    parser.add_argument(
        "--warmup", type=int, default=200, help="iterations before the reference sample"
    )
    args = parser.parse_args()
    if args.iters <= 0 or args.every <= 0 or args.every % 10:
        parser.error(
            f"--iters must be positive and --every a positive multiple of 10 (the trainer "
            f"logs every 10 iterations), got --iters {args.iters} --every {args.every}"
        )

    samples: list[tuple[int, float]] = []
    started = time.perf_counter()

    def log(line: str) -> None:
        # Every `every` iterations, and once more after the last evaluation and save.
        match = ITER_LINE.match(line)
        if not match:
            return
        kind, iteration = match.group(1), int(match.group(2))
        if (kind == "iter" and iteration % args.every == 0) or (
            kind == "step" and iteration == args.iters
        ):
            samples.append((iteration, rss_mib()))
            elapsed = time.perf_counter() - started
            print(f"{kind} {iteration}: rss {samples[-1][1]:.1f} MiB ({elapsed:.0f}s)", flush=True)

    print(f"before training: rss {rss_mib():.1f} MiB", flush=True)
    with tempfile.TemporaryDirectory() as out_dir:
        train(TrainConfig(out_dir=out_dir, max_iters=args.iters), log=log)
    print(f"after training: rss {rss_mib():.1f} MiB")

    after_warmup = [(i, rss) for i, rss in samples if i >= args.warmup]
    if after_warmup:
        reference = after_warmup[0][1]
        highest = max(rss for _, rss in after_warmup)
        print(
            f"from iteration {after_warmup[0][0]} to {after_warmup[-1][0]}: "
            f"{reference:.1f} -> {after_warmup[-1][1]:.1f} MiB, highest {highest:.1f} MiB, "
            f"growth {round(after_warmup[-1][1] - reference, 1) + 0.0:+.1f} MiB"  # no "-0.0"
        )


if __name__ == "__main__":
    main()

"""Time the default GPT training step of two source trees, alternating, in one run.

    python bench/compare_checkouts.py OLD_TREE NEW_TREE [--rounds 5] [--iters 30]

Each round starts one subprocess per tree (with that tree first on
sys.path), which builds the default GPT (4 layers, 4 heads, 128 wide,
block 64, batch 12, float32), runs 5 untimed iterations and then `--iters`
timed ones (forward, backward, clip, AdamW step), and reports its median
ms/iter.  The trees alternate and swap order every round, so both see the
same machine load.  Make OLD_TREE with e.g. `git worktree add /tmp/old REV`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, statistics, sys, time
import numpy as np
import minigrad
from minigrad import optim
from models.gpt import GPT, GPTConfig

iters = int(sys.argv[1])
minigrad.manual_seed(0)
model = GPT(GPTConfig(vocab_size=75))
optimizer = optim.AdamW(model.optimizer_groups(0.1), lr=1e-3, betas=(0.9, 0.99))
params = list(model.parameters())
rng = np.random.default_rng(0)
times = []
for i in range(iters + 5):
    x = rng.integers(0, 75, (12, 64))
    y = rng.integers(0, 75, (12, 64))
    start = time.perf_counter()
    _, loss = model(x, y)
    loss.backward()
    optim.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    if i >= 5:
        times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"median_ms": statistics.median(times), "file": minigrad.__file__}))
"""


def run(tree: Path, iters: int) -> float:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tree)!r})\n" + CHILD,
            str(iters),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if not report["file"].startswith(str(tree)):
        raise RuntimeError(f"{tree}: imported minigrad from {report['file']} instead")
    return report["median_ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the tree to compare against")
    parser.add_argument("new", type=Path, help="the tree being measured")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two trees")
    parser.add_argument("--iters", type=int, default=30, help="timed iterations per process")
    args = parser.parse_args()
    old_tree, new_tree = args.old.resolve(), args.new.resolve()
    results: dict[str, list[float]] = {"old": [], "new": []}
    for round_number in range(args.rounds):
        order = [("old", old_tree), ("new", new_tree)]
        for label, tree in order if round_number % 2 == 0 else reversed(order):
            results[label].append(run(tree, args.iters))
        print(
            f"round {round_number}: old {results['old'][-1]:.2f} ms, "
            f"new {results['new'][-1]:.2f} ms"
        )
    old, new = statistics.median(results["old"]), statistics.median(results["new"])
    print(f"old {old:.2f} ms/iter, new {new:.2f} ms/iter, new/old {new / old:.3f}")


if __name__ == "__main__":
    main()

"""Peak resident memory of training the default GPT, minigrad against PyTorch.

    python bench/memory.py [--iters 50] [--seed 0] [--no-torch]

Each framework trains in a fresh Python process of its own (the script runs
itself again with `--child minigrad` or `--child torch`), so neither sees the
other's allocations, libraries or thread pools.  A child runs `--iters`
iterations of bench/gpt_step.py's step (`minigrad_step` / `torch_step`:
forward with loss, backward, clip to 1.0, AdamW, zero the gradients) on
random batches, and reports the resident set size (VmRSS) at four moments:
when it starts, after its imports, after building the model and optimizer
(in PyTorch, creating AdamW also loads modules that `import torch` left for
later), and after the first iteration (which allocates AdamW's moments), then the
RSS at the end and the peak over its whole life (VmHWM, or ru_maxrss where
/proc is missing).

The minigrad child imports gpt_step with torch blocked, so PyTorch is never
loaded into it.  The torch child has to import minigrad as well and build
a minigrad model, because torch_step copies that model's weights; the
minigrad model is dropped before "after model" is measured, but the
numpy and minigrad modules stay and count in its baseline.  It runs with
MINIGRAD_SYSTEM_MALLOC=1, so that importing minigrad leaves the C allocator's
settings as PyTorch alone would find them.  The parent
prints one table in MiB and the ratios of the peaks, with and without each
child's baseline after model construction.  Without PyTorch installed (or
with `--no-torch`) only minigrad is measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STAGES = (
    ("start", "at start"),
    ("imports", "after imports"),
    ("model", "after model + optimizer"),
    ("first", "after iteration 1"),
    ("end", "after the last iteration"),
    ("peak", "peak (VmHWM)"),
)


def status_mib(field: str) -> float | None:
    """A size field of /proc/self/status ("VmRSS", "VmHWM") in MiB, or None without /proc."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def rss_mib() -> float:
    """This process's resident set size now, or its peak so far where /proc is missing."""
    now = status_mib("VmRSS")
    return now if now is not None else peak_mib()


def peak_mib() -> float:
    """The highest resident set size this process has had, in MiB."""
    peak = status_mib("VmHWM")
    if peak is not None:
        return peak
    kilobytes_or_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes_or_bytes / (1024 * 1024 if sys.platform == "darwin" else 1024)


def child(framework: str, iters: int, seed: int) -> dict[str, Any]:
    """Train in this process and return its memory at each stage (run by the parent)."""
    sizes = {"start": rss_mib()}
    if framework == "minigrad":
        sys.modules["torch"] = None  # makes `import torch` fail inside gpt_step
    sys.path.insert(0, str(HERE))
    import gpt_step
    import numpy as np

    from models.gpt import GPTConfig

    if framework == "torch" and gpt_step.torch is None:
        return {"sizes": None}  # PyTorch is not installed
    sizes["imports"] = rss_mib()

    config = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=75)
    model, step = gpt_step.minigrad_step(config)
    if framework == "torch":
        step = gpt_step.torch_step(config, model)
        del model
        gc.collect()
    sizes["model"] = rss_mib()

    rng = np.random.default_rng(seed)
    shape = (gpt_step.BATCH_SIZE, config.block_size)
    losses = []
    for i in range(iters):
        x = rng.integers(0, config.vocab_size, shape)
        y = rng.integers(0, config.vocab_size, shape)
        losses.append(step(x, y))
        if i == 0:
            sizes["first"] = rss_mib()
    sizes["end"] = rss_mib()
    sizes["peak"] = peak_mib()
    versions = {"numpy": np.__version__}
    if framework == "torch":
        versions["torch"] = gpt_step.torch.__version__
    return {"sizes": sizes, "losses": [losses[0], losses[-1]], "versions": versions}


def measure(framework: str, iters: int, seed: int) -> dict[str, Any]:
    """Run a child process for `framework` and return what it reported."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", framework]
    command += ["--iters", str(iters), "--seed", str(seed)]
    env = dict(os.environ)
    if framework == "torch":
        env["MINIGRAD_SYSTEM_MALLOC"] = "1"  # torch's process keeps glibc's own malloc settings
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"memory: the {framework} child failed (exit {done.returncode}):\n{done.stderr}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(iters: int, seed: int, use_torch: bool) -> dict[str, dict[str, Any]]:
    """Measure each framework in its own process; print and return the results."""
    results = {"minigrad": measure("minigrad", iters, seed)}
    if use_torch:
        results["torch"] = measure("torch", iters, seed)
        if results["torch"]["sizes"] is None:
            print("PyTorch is not installed: measuring minigrad alone")
            del results["torch"]
            use_torch = False
    frameworks = list(results)

    versions = results[frameworks[-1]]["versions"]
    print(
        f"default GPT (4 layers, 4 heads, n_embd 128, block 64, vocab 75, batch 12, float32), "
        f"{iters} iterations per process"
    )
    print(", ".join(f"{name} {version}" for name, version in versions.items()))
    for name, result in results.items():
        first, last = result["losses"]
        print(f"{name}: loss {first:.4f} at iteration 0, {last:.4f} at iteration {iters - 1}")

    header = f"{'RSS (MiB)':<26}" + "".join(f"{name:>10}" for name in frameworks)
    print(header)
    for key, label in STAGES:
        sizes = [results[name]["sizes"].get(key) for name in frameworks]
        print(f"{label:<26}" + "".join(f"{s:10.1f}" if s is not None else " " * 10 for s in sizes))
    if use_torch:
        mine, theirs = (results[name]["sizes"] for name in ("minigrad", "torch"))
        print(f"ratio of peaks minigrad/torch: {mine['peak'] / theirs['peak']:.2f}")
        growth = [s["peak"] - s["model"] for s in (mine, theirs)]
        print(
            f"peak above 'after model': minigrad {growth[0]:.1f} MiB, torch {growth[1]:.1f} MiB"
            + (f", ratio {growth[0] / growth[1]:.2f}" if growth[1] > 0 else "")
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=50, help="training iterations per process")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batches")
    parser.add_argument("--no-torch", action="store_true", help="measure minigrad alone")
    # The script runs itself with --child to measure one framework in a fresh process.
    parser.add_argument("--child", choices=("minigrad", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error(f"--iters must be >= 1, got {args.iters}")
    if args.child:
        print(json.dumps(child(args.child, args.iters, args.seed)))
        return 0
    run(args.iters, args.seed, not args.no_torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

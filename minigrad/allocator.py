"""Keep freed array memory in the process, so the next step's arrays reuse it.

A training step allocates tens of megabytes of activations and gradients,
frees them all, and allocates the same again.  glibc's malloc serves large
blocks with fresh `mmap` pages and hands memory at the top of its heap back to
the kernel, so every step pays a page fault per 4 KiB it touches (about
10,000 a step for the default GPT, nearly a third of its time).  Raising the
two thresholds makes freed blocks stay in the heap, ready for the next step;
the peak memory is unchanged, but the process keeps it until it exits, as
PyTorch's caching allocators do.

`import minigrad` applies this once on glibc systems unless the environment
variable MINIGRAD_SYSTEM_MALLOC is set to 1 (or true, yes, on).  Elsewhere it
does nothing.
"""

from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD = -1  # constants from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

# Blocks up to this size come from the heap rather than their own mmap.
MMAP_THRESHOLD = 64 * 1024 * 1024
# Free memory at the top of the heap up to this size stays with the process.
TRIM_THRESHOLD = 512 * 1024 * 1024


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; True if it took effect.

    Process-wide and lasting: everything else in the process allocates the
    same way afterwards.  Returns False on other C libraries.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
    except (AttributeError, ValueError, OSError):  # not glibc, or not POSIX
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def _apply_default() -> None:
    if os.environ.get("MINIGRAD_SYSTEM_MALLOC", "").strip().lower() not in TRUE_WORDS:
        reuse_freed_memory()


TRUE_WORDS = ("1", "true", "yes", "on")

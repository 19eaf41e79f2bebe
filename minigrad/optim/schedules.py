"""Learning-rate schedules."""

from __future__ import annotations

import math
from typing import Any

from minigrad.optim.optimizers import Optimizer


def warmup_cosine(
    iteration: int, max_lr: float, min_lr: float, warmup_iters: int, decay_iters: int
) -> float:
    """Linear warm-up to `max_lr`, then cosine decay to `min_lr` at `decay_iters`, then flat.

    During warm-up the rate is max_lr * (iteration + 1) / (warmup_iters + 1).
    """
    if iteration < warmup_iters:
        return max_lr * (iteration + 1) / (warmup_iters + 1)
    if iteration > decay_iters:
        return min_lr
    span = max(decay_iters - warmup_iters, 1)
    progress = (iteration - warmup_iters) / span
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


class WarmupCosineLR:
    """Sets each group's lr by `warmup_cosine`, scaled to the lr the group started with.

    Call `step()` once per iteration, before `optimizer.step()`; the first call
    sets the rate of iteration 0.
    """

    def __init__(
        self, optimizer: Optimizer, warmup_iters: int, decay_iters: int, min_lr: float
    ) -> None:
        if warmup_iters < 0 or decay_iters < 0:
            raise ValueError(
                f"WarmupCosineLR: warmup_iters and decay_iters must be >= 0, got "
                f"{warmup_iters} and {decay_iters}"
            )
        self.optimizer = optimizer
        self.warmup_iters, self.decay_iters, self.min_lr = warmup_iters, decay_iters, min_lr
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.iteration = 0

    def lr_at(self, iteration: int, base_lr: float | None = None) -> float:
        base = self.base_lrs[0] if base_lr is None else base_lr
        min_lr = self.min_lr * base / self.base_lrs[0]
        return warmup_cosine(iteration, base, min_lr, self.warmup_iters, self.decay_iters)

    def step(self) -> float:
        """Set the lr for the current iteration, advance, and return the first group's lr."""
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(self.iteration, base)
        self.iteration += 1
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.base_lrs = list(state["base_lrs"])

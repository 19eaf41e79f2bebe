"""Optimizers, learning-rate schedules and gradient clipping, shaped like torch.optim."""

from minigrad.optim.clip import clip_grad_norm, clip_grad_norm_
from minigrad.optim.optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from minigrad.optim.schedules import WarmupCosineLR, warmup_cosine

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "WarmupCosineLR",
    "clip_grad_norm",
    "clip_grad_norm_",
    "warmup_cosine",
]

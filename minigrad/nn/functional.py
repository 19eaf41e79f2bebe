"""Functional forms of the layers: stateless functions on Tensors."""

from __future__ import annotations

from typing import Any

from minigrad import random
from minigrad.ops.elementwise import gelu, relu, sigmoid, tanh
from minigrad.ops.linalg import linear
from minigrad.ops.nn import cross_entropy, embedding, layer_norm, log_softmax, mse_loss, softmax
from minigrad.ops.nn import dropout as _dropout
from minigrad.tensor import Tensor

__all__ = [
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "linear",
    "log_softmax",
    "mse_loss",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]


def dropout(x: Any, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero elements with probability p during training, scaling the rest by 1 / (1 - p)."""
    return _dropout(x, p, training, random.generator())

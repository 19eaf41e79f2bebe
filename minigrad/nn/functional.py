"""Functional forms of the layers: stateless functions on Tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import random
from minigrad.ops.elementwise import gelu, relu, sigmoid, tanh
from minigrad.ops.linalg import linear
from minigrad.ops.nn import cross_entropy, embedding, layer_norm, log_softmax, mse_loss, softmax
from minigrad.ops.nn import dropout as _dropout
from minigrad.ops.nn import scaled_dot_product_attention as _attention
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
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "tanh",
]


def dropout(x: Any, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero elements with probability p during training, scaling the rest by 1 / (1 - p)."""
    return _dropout(x, p, training, random.generator())


def scaled_dot_product_attention(
    q: Any,
    k: Any,
    v: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    need_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Attention softmax(q k^T * scale + attn_mask) v, fused into one node of the graph.

    The arguments are those of `torch.nn.functional.scaled_dot_product_attention`,
    in its order, plus `need_weights`.

    Mask conventions follow `torch.nn.functional.scaled_dot_product_attention`:
    a boolean mask is True where a query MAY attend (the opposite of the
    boolean masks of `torch.nn.MultiheadAttention`); a float mask is added to
    the scores, so 0 keeps a position and -inf removes it.  With `is_causal`
    query i sees keys 0..i only; given both, a position must pass both.  A
    query that may attend to nothing gets a zero output and zero gradients.

    Args:
        q: (..., Tq, d) queries.
        k: (..., Tk, d) keys.
        v: (..., Tk, dv) values.
        attn_mask: boolean or float, broadcastable to (..., Tq, Tk).
        dropout_p: drop attention probabilities with this chance; pass 0 in eval mode.
        is_causal: apply the causal (lower-triangular, top-left aligned) mask.
        scale: multiplies q k^T; 1 / sqrt(d) by default.
        need_weights: also return the attention probabilities (before dropout).

    Returns:
        (..., Tq, dv) outputs, or (outputs, (..., Tq, Tk) weights) with need_weights.
    """
    rng: np.random.Generator | None = random.generator() if dropout_p > 0 else None
    return _attention(q, k, v, attn_mask, is_causal, dropout_p, scale, rng, need_weights)

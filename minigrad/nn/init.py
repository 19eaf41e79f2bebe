"""Weight initialisers that fill a parameter in place from minigrad's generator."""

from __future__ import annotations

import math

import numpy as np

from minigrad import random
from minigrad.tensor import Tensor


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Fill a 2-D tensor from U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); returns it.

    This is Glorot and Bengio's rule (Keras calls it glorot_uniform): it keeps the
    variance of activations and of gradients roughly equal across a layer.
    """
    if tensor.ndim != 2:
        raise ValueError(f"xavier_uniform_: tensor must be 2-D, got shape {tensor.shape}")
    rows, cols = tensor.shape
    bound = gain * math.sqrt(6.0 / (rows + cols))
    tensor.data[...] = random.generator().uniform(-bound, bound, tensor.shape)
    return tensor


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Fill a 2-D tensor with a random matrix whose rows (or columns) are orthonormal.

    Taken from the QR decomposition of a Gaussian matrix, with the signs fixed so the
    result is uniformly distributed over orthogonal matrices (Saxe et al.).  A recurrent
    kernel initialised so neither shrinks nor stretches the state at the start.
    """
    if tensor.ndim != 2:
        raise ValueError(f"orthogonal_: tensor must be 2-D, got shape {tensor.shape}")
    rows, cols = tensor.shape
    gaussian = random.generator().standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(gaussian)
    q *= np.sign(np.diag(r))  # without this, QR's sign convention biases the distribution
    tensor.data[...] = gain * (q if rows >= cols else q.T)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros; returns the tensor."""
    tensor.data[...] = 0
    return tensor

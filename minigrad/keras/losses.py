"""Keras' losses, each called as loss(y_true, y_pred) -> a scalar Tensor.

The probability losses take probabilities by default, as in Keras, and clip them to
[EPSILON, 1 - EPSILON] before the log; `from_logits=True` takes raw scores instead,
which is more accurate (no clipping) and the usual choice.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minigrad.nn import functional as F
from minigrad.tensor import Tensor

EPSILON = 1e-7  # keeps log() away from 0 on probabilities


def mean_squared_error(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """mean((y_pred - y_true)^2) over every element."""
    return F.mse_loss(y_pred, y_true)


def mean_absolute_error(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """mean(|y_pred - y_true|) over every element."""
    return (y_pred - y_true).abs().mean()


def binary_crossentropy(y_true: Tensor, y_pred: Tensor, from_logits: bool = False) -> Tensor:
    """-mean(y log p + (1 - y) log(1 - p)) for targets y in [0, 1]."""
    if from_logits:
        # With p = sigmoid(z) the loss is max(z, 0) - z y + log(1 + e^-|z|), which never overflows.
        z = y_pred
        losses = z.relu() - z * y_true + (1 + (-z.abs()).exp()).log()
    else:
        p = y_pred.clip(EPSILON, 1 - EPSILON)
        losses = -(y_true * p.log() + (1 - y_true) * (1 - p).log())
    return losses.mean()


def categorical_crossentropy(y_true: Tensor, y_pred: Tensor, from_logits: bool = False) -> Tensor:
    """-mean over samples of sum(y log p) over the last axis, for one-hot (or soft) targets."""
    if from_logits:
        log_p = y_pred.log_softmax(-1)
    else:
        log_p = (y_pred / y_pred.sum(axis=-1, keepdims=True)).clip(EPSILON, 1 - EPSILON).log()
    return -(y_true * log_p).sum(axis=-1).mean()


def sparse_categorical_crossentropy(
    y_true: Tensor, y_pred: Tensor, from_logits: bool = False
) -> Tensor:
    """-mean(log p[label]) for integer labels y_true, one per row of y_pred (..., classes)."""
    classes = y_pred.shape[-1]
    labels = np.asarray(y_true.data).astype(np.int64).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(
            f"sparse_categorical_crossentropy: labels must lie in [0, {classes}) for "
            f"{classes} output classes, got {bad}"
        )
    if from_logits:
        return F.cross_entropy(y_pred.reshape(-1, classes), labels)
    p = (y_pred / y_pred.sum(axis=-1, keepdims=True)).clip(EPSILON, 1 - EPSILON)
    return -p.log().reshape(-1, classes).gather(1, labels[:, None]).mean()


class Loss:
    """A loss as an object: `Loss()(y_true, y_pred)`; subclasses set `fn` and `name`.

    `integer_targets` tells the model to keep y as integer labels instead of floats;
    `strict_shapes` that y must have the model output's shape.
    """

    name = "loss"
    integer_targets = False
    strict_shapes = True

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = from_logits

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return self.fn(y_true, y_pred)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


class MeanSquaredError(Loss):
    """mean((y_pred - y_true)^2)."""

    name = "mean_squared_error"

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return mean_squared_error(y_true, y_pred)


class MeanAbsoluteError(Loss):
    """mean(|y_pred - y_true|)."""

    name = "mean_absolute_error"

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return mean_absolute_error(y_true, y_pred)


class BinaryCrossentropy(Loss):
    """Binary cross-entropy of targets in [0, 1]; see `binary_crossentropy`."""

    name = "binary_crossentropy"

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return binary_crossentropy(y_true, y_pred, self.from_logits)


class CategoricalCrossentropy(Loss):
    """Cross-entropy of one-hot targets; see `categorical_crossentropy`."""

    name = "categorical_crossentropy"

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return categorical_crossentropy(y_true, y_pred, self.from_logits)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy of integer labels; see `sparse_categorical_crossentropy`."""

    name = "sparse_categorical_crossentropy"
    integer_targets = True

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)


_BY_NAME: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


class _Function(Loss):
    """A user's callable (y_true, y_pred) -> Tensor, as a Loss; it may take any target shape."""

    strict_shapes = False

    def __init__(self, function: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.function = function
        self.name = getattr(function, "__name__", "loss")

    def fn(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return self.function(y_true, y_pred)


def get(identifier: Any) -> Loss:
    """The Loss a compile() argument names: a string, a Loss, or a callable (y_true, y_pred)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(
                f"loss {identifier!r} is unknown; expected one of {sorted(_BY_NAME)}, a Loss "
                "or a callable (y_true, y_pred) -> Tensor"
            )
        return _BY_NAME[identifier]()
    if callable(identifier):
        return _Function(identifier)
    raise TypeError(
        f"loss must be a name, a Loss or a callable (y_true, y_pred) -> Tensor, got "
        f"{type(identifier).__name__}"
    )

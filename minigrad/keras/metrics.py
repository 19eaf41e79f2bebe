"""Metrics that fit() and evaluate() report beside the loss, averaged over samples.

A metric maps a batch's targets and predictions (NumPy arrays) to the batch's mean;
the model weights each batch by its size, so an epoch's value is the mean over samples.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minigrad.autograd import no_grad
from minigrad.keras import losses
from minigrad.tensor import Tensor

Metric = Callable[[np.ndarray, np.ndarray], float]


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """mean(|y_pred - y_true|)."""
    return float(np.mean(np.abs(y_pred - y_true)))


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """mean((y_pred - y_true)^2)."""
    return float(np.mean((y_pred - y_true) ** 2))


def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> float:
    """The fraction of predictions on the target's side of `threshold`."""
    return float(np.mean((y_pred > threshold) == (y_true > 0.5)))


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of rows whose largest prediction is the one-hot target's class."""
    return float(np.mean(np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)))


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of rows whose largest prediction is the integer label."""
    labels = y_true.reshape(y_pred.shape[:-1])
    return float(np.mean(np.argmax(y_pred, axis=-1) == labels))


def _accuracy_for(loss: losses.Loss) -> Metric:
    """Keras' 'accuracy': the kind of accuracy the loss implies, else guessed from shapes."""
    if isinstance(loss, losses.SparseCategoricalCrossentropy):
        return sparse_categorical_accuracy
    if isinstance(loss, losses.CategoricalCrossentropy):
        return categorical_accuracy
    if isinstance(loss, losses.BinaryCrossentropy):
        threshold = 0.0 if loss.from_logits else 0.5
        return lambda y_true, y_pred: binary_accuracy(y_true, y_pred, threshold)

    def by_shape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        if y_pred.shape[-1] == 1:
            return binary_accuracy(y_true, y_pred)
        if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
            return sparse_categorical_accuracy(y_true, y_pred)
        return categorical_accuracy(y_true, y_pred)

    return by_shape


_BY_NAME: dict[str, Metric] = {
    "mae": mean_absolute_error,
    "mean_absolute_error": mean_absolute_error,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}


def get(identifier: Any, loss: losses.Loss) -> tuple[str, Metric]:
    """The history key and the function a metrics= entry names.

    Args:
        identifier: a name ('mae', 'mse', 'accuracy', 'binary_accuracy', ...), or a
            callable (y_true, y_pred) on Tensors returning a number or a Tensor, such as
            a loss.
        loss: the compiled loss, which decides what 'accuracy' means.
    """
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            return identifier, _accuracy_for(loss)
        if identifier not in _BY_NAME:
            raise ValueError(
                f"metric {identifier!r} is unknown; expected one of "
                f"{sorted([*_BY_NAME, 'accuracy'])} or a callable (y_true, y_pred)"
            )
        return identifier, _BY_NAME[identifier]
    if callable(identifier):
        name = getattr(identifier, "name", None) or getattr(identifier, "__name__", "metric")

        def on_tensors(y_true: np.ndarray, y_pred: np.ndarray) -> float:
            with no_grad():
                value = identifier(Tensor(y_true), Tensor(y_pred))
            return float(np.mean(value.data if isinstance(value, Tensor) else value))

        return name, on_tensors
    raise TypeError(f"metrics entries must be names or callables, got {type(identifier).__name__}")

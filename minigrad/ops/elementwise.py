"""Elementwise ops: arithmetic, exp/log, activations, clipping."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from minigrad.ops import lift, lift_pair, shape_error
from minigrad.tensor import Tensor


def _broadcast(name: str, a: Tensor, b: Tensor, fn: Callable[..., np.ndarray]) -> np.ndarray:
    try:
        return fn(a.data, b.data)
    except ValueError:
        raise shape_error(name, a, b) from None


def add(a: Any, b: Any) -> Tensor:
    a, b = lift_pair(a, b)
    out = _broadcast("add", a, b, np.add)
    return Tensor._from_op(out, (a, b), lambda g: (g, g), "add")


def sub(a: Any, b: Any) -> Tensor:
    a, b = lift_pair(a, b)
    out = _broadcast("sub", a, b, np.subtract)
    return Tensor._from_op(out, (a, b), lambda g: (g, -g), "sub")


def mul(a: Any, b: Any) -> Tensor:
    a, b = lift_pair(a, b)
    out = _broadcast("mul", a, b, np.multiply)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (g * b.data if a.requires_grad else None, g * a.data if b.requires_grad else None)

    return Tensor._from_op(out, (a, b), backward, "mul")


def div(a: Any, b: Any) -> Tensor:
    """a / b; division by zero gives inf or nan as in NumPy and PyTorch, without a warning."""
    a, b = lift_pair(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _broadcast("div", a, b, np.divide)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = g / b.data if a.requires_grad else None
            # d(a/b)/db = -a / b^2 = -out / b
            grad_b = -g * out / b.data if b.requires_grad else None
        return grad_a, grad_b

    return Tensor._from_op(out, (a, b), backward, "div")


def pow(base: Any, exponent: Any) -> Tensor:
    """base ** exponent, differentiable in both; the exponent may be a Python number."""
    base, exponent = lift_pair(base, exponent)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _broadcast("pow", base, exponent, np.power)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        b, p = base.data, exponent.data
        grad_base = grad_exponent = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if base.requires_grad:
                grad_base = g * p * np.power(b, p - 1)
            if exponent.requires_grad:
                # d(b^p)/dp = b^p log b, taken as 0 where b == 0 (the limit for p > 0)
                grad_exponent = g * np.where(b == 0, 0, out * np.log(np.where(b == 0, 1, b)))
        return grad_base, grad_exponent

    return Tensor._from_op(out, (base, exponent), backward, "pow")


def neg(a: Any) -> Tensor:
    a = lift(a)
    return Tensor._from_op(-a.data, (a,), lambda g: (-g,), "neg")


def cast(a: Tensor, dtype: Any) -> Tensor:
    """Convert to `dtype`; the graph walk converts the gradient back to a's dtype."""
    return Tensor._from_op(a.data.astype(dtype), (a,), lambda g: (g,), "cast")


def exp(a: Any) -> Tensor:
    """e ** a; overflows to inf without a warning, as PyTorch does."""
    a = lift(a)
    with np.errstate(over="ignore"):
        out = np.exp(a.data)
    return Tensor._from_op(out, (a,), lambda g: (g * out,), "exp")


def log(a: Any) -> Tensor:
    """Natural log; log(0) = -inf and log(x < 0) = nan, without warnings, as in PyTorch."""
    a = lift(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / a.data,)

    return Tensor._from_op(out, (a,), backward, "log")


def sqrt(a: Any) -> Tensor:
    """Square root; its gradient at 0 is inf, as in PyTorch."""
    a = lift(a)
    with np.errstate(invalid="ignore"):
        out = np.sqrt(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * 0.5 / out,)

    return Tensor._from_op(out, (a,), backward, "sqrt")


def tanh(a: Any) -> Tensor:
    a = lift(a)
    out = np.tanh(a.data)
    return Tensor._from_op(out, (a,), lambda g: (g * (1 - out * out),), "tanh")


def sigmoid(a: Any) -> Tensor:
    """1 / (1 + e^-a), computed without overflow for large |a|."""
    a = lift(a)
    e = np.exp(-np.abs(a.data))
    out = np.where(a.data >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
    return Tensor._from_op(out, (a,), lambda g: (g * out * (1 - out),), "sigmoid")


def relu(a: Any) -> Tensor:
    """max(a, 0); the gradient at exactly 0 is 0, as in PyTorch."""
    a = lift(a)
    out = np.maximum(a.data, 0)
    return Tensor._from_op(out, (a,), lambda g: (g * (a.data > 0),), "relu")


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_erf64 = np.vectorize(math.erf, otypes=[np.float64])


def erf(x: np.ndarray) -> np.ndarray:
    """The error function of an array, exact in float64 and to 1.5e-7 in lower precision.

    float64 uses `math.erf` element by element (exact, slow); other dtypes use
    Abramowitz and Stegun's formula 7.1.26, whose error bound is below
    float32's resolution near 1, evaluated in the input's dtype.
    """
    if x.dtype == np.float64:
        return _erf64(x)
    dtype = x.dtype.type
    z = np.abs(x)
    t = 1 / (1 + dtype(0.3275911) * z)
    poly = t * (
        dtype(0.254829592)
        + t
        * (
            dtype(-0.284496736)
            + t * (dtype(1.421413741) + t * (dtype(-1.453152027) + t * dtype(1.061405429)))
        )
    )
    y = 1 - poly * np.exp(-z * z)
    return np.copysign(y, x)


def gelu(a: Any, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit, x * Phi(x); `approximate="tanh"` uses the tanh form."""
    a = lift(a)
    x = a.data
    if approximate == "none":
        cdf = 0.5 * (1 + erf(x * x.dtype.type(_SQRT_HALF)))
        out = x * cdf

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            # d gelu: Phi(x) + x * phi(x)
            pdf = np.exp(-0.5 * x * x) * x.dtype.type(_INV_SQRT_2PI)
            return (g * (cdf + x * pdf),)

    elif approximate == "tanh":
        c = x.dtype.type(_SQRT_2_OVER_PI)
        k = x.dtype.type(0.044715)
        th = np.tanh(c * (x + k * x * x * x))
        out = 0.5 * x * (1 + th)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            du = c * (1 + 3 * k * x * x)
            return (g * (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du),)

    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Tensor._from_op(out, (a,), backward, "gelu")


def abs(a: Any) -> Tensor:
    """|a|; the gradient at 0 is 0, as in PyTorch."""
    a = lift(a)
    return Tensor._from_op(np.abs(a.data), (a,), lambda g: (g * np.sign(a.data),), "abs")


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max; at ties the whole gradient goes to `a`."""
    a, b = lift_pair(a, b)
    out = _broadcast("maximum", a, b, np.maximum)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_wins = a.data >= b.data
        return g * a_wins, g * ~a_wins

    return Tensor._from_op(out, (a, b), backward, "maximum")


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min; at ties the whole gradient goes to `a`."""
    a, b = lift_pair(a, b)
    out = _broadcast("minimum", a, b, np.minimum)

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_wins = a.data <= b.data
        return g * a_wins, g * ~a_wins

    return Tensor._from_op(out, (a, b), backward, "minimum")


def clip(a: Any, min: float | None = None, max: float | None = None) -> Tensor:
    """Limit values to [min, max]; the gradient passes where the value was inside, bounds too."""
    a = lift(a)
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    out = np.clip(a.data, min, max)
    inside = np.ones(a.shape, dtype=bool)
    if min is not None:
        inside &= a.data >= min
    if max is not None:
        inside &= a.data <= max
    return Tensor._from_op(out, (a,), lambda g: (g * inside,), "clip")

"""Elementwise ops: arithmetic, exp/log, activations, clipping."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from minigrad import autograd
from minigrad.ops import CACHE_CHUNK, lift, lift_pair, shape_error
from minigrad.tensor import DEFAULT_DTYPE, Tensor


def _broadcast(name: str, a: Tensor, b: Tensor, fn: Callable[..., np.ndarray]) -> np.ndarray:
    try:
        return fn(a.data, b.data)
    except ValueError as error:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise shape_error(name, a, b) from None
        # The shapes fit: NumPy refused the values (integers to negative powers).
        raise ValueError(f"{name}: {error} ({a.dtype} and {b.dtype})") from None


def add(a: Any, b: Any) -> Tensor:
    a, b = lift_pair(a, b)
    out = _broadcast("add", a, b, np.add)
    rule = lambda g: (g, g)  # noqa: E731  (the same rule serves arrays and Tensors)
    return Tensor._from_op(out, (a, b), rule, "add", rule)


def sub(a: Any, b: Any) -> Tensor:
    a, b = lift_pair(a, b)
    out = _broadcast("sub", a, b, np.subtract)
    rule = lambda g: (g, -g)  # noqa: E731
    return Tensor._from_op(out, (a, b), rule, "sub", rule)


def mul(a: Any, b: Any) -> Tensor:
    a, b = lift_pair(a, b)
    out = _broadcast("mul", a, b, np.multiply)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (g * b.data if a.requires_grad else None, g * a.data if b.requires_grad else None)

    return Tensor._from_op(out, (a, b), backward, "mul", lambda g: (g * b, g * a))


def div(a: Any, b: Any) -> Tensor:
    """a / b; division by zero gives inf or nan as in NumPy and PyTorch, without a warning.

    The gradients 1 / b and -a / b^2 are likewise inf or nan where b == 0 (1 / 0 has
    gradient -inf), as in PyTorch.
    """
    a, b = lift_pair(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _broadcast("div", a, b, np.divide)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_a = g / b.data if a.requires_grad else None
            # d(a/b)/db = -a / b^2 = -out / b
            grad_b = -g * out / b.data if b.requires_grad else None
        return grad_a, grad_b

    def graph(g: Tensor) -> tuple[Tensor, Tensor]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return g / b, -g * a / (b * b)

    return Tensor._from_op(out, (a, b), backward, "div", graph)


def pow(base: Any, exponent: Any) -> Tensor:
    """base ** exponent, differentiable in both; the exponent may be a Python number.

    Like exp, it overflows to inf without a warning, and so may its gradient.
    Where the exponent is 0 the base's gradient is 0, also at base 0 (0 * 0^-1), as
    in PyTorch.
    """
    base, exponent = lift_pair(base, exponent)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = _broadcast("pow", base, exponent, np.power)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        b, p = base.data, exponent.data
        grad_base = grad_exponent = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if base.requires_grad:
                grad_base = g * p * np.power(b, p - 1)
                singular = (p == 0) & (b == 0)  # 0 * 0^-1: x ** 0 is flat, so 0 there too
                if singular.any():
                    grad_base = np.where(singular, 0, grad_base).astype(grad_base.dtype)
            if exponent.requires_grad:
                # d(b^p)/dp = b^p log b: taken as 0 where b == 0 and p >= 0 (the limit
                # for p > 0), and -inf (inf * log 0) where b == 0 and p < 0, as in PyTorch
                flat = (b == 0) & (p >= 0)
                grad_exponent = g * np.where(flat, 0, out * np.log(np.where(flat, 1, b)))
        return grad_base, grad_exponent

    def graph(g: Tensor) -> tuple[Tensor, Tensor | None]:
        from minigrad.ops.shape import where

        grad_exponent = None
        with np.errstate(divide="ignore", invalid="ignore"):
            grad_base = g * exponent * base ** (exponent - 1)
            singular = (exponent.data == 0) & (base.data == 0)
            if singular.any():
                grad_base = where(singular, 0.0, grad_base)
            if exponent.requires_grad:
                flat = (base.data == 0) & (exponent.data >= 0)  # shaped like the output
                grad_exponent = g * base**exponent * log(where(flat, 1.0, base)) * ~flat
        return grad_base, grad_exponent

    return Tensor._from_op(out, (base, exponent), backward, "pow", graph)


def neg(a: Any) -> Tensor:
    a = lift(a)
    rule = lambda g: (-g,)  # noqa: E731
    return Tensor._from_op(-a.data, (a,), rule, "neg", rule)


def cast(a: Tensor, dtype: Any) -> Tensor:
    """Convert to `dtype`; the graph walk converts the gradient back to a's dtype.

    A cast to integers or booleans ends the graph, as in PyTorch: rounding has no
    useful gradient, and such a tensor cannot hold one.
    """
    data = a.data.astype(dtype)
    if data.dtype.kind not in "fc":
        return Tensor._constant(data)
    if data.dtype.kind == "c" and a.requires_grad and autograd._grad_enabled:
        raise TypeError(
            f"astype({data.dtype}): minigrad has no complex gradients; cast a.detach(), "
            "or cast under minigrad.no_grad(), for the values alone"
        )
    rule = lambda g: (g,)  # noqa: E731
    return Tensor._from_op(data, (a,), rule, "cast", rule)


def exp(a: Any) -> Tensor:
    """e ** a; overflows to inf without a warning, as PyTorch does.

    Past the overflow (a > 88.72 in float32, 709.78 in float64) the gradient
    g * e^a is inf too, and where a zero upstream gradient meets it, 0 * inf
    is nan, as in PyTorch; neither warns.
    """
    a = lift(a)
    with np.errstate(over="ignore"):
        out = np.exp(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(invalid="ignore"):
            return (g * out,)

    return Tensor._from_op(out, (a,), backward, "exp", lambda g: (g * exp(a),))


def log(a: Any) -> Tensor:
    """Natural log; log(0) = -inf with gradient inf, log(x < 0) = nan, without warnings.

    The gradient is g / a everywhere, as in PyTorch.
    """
    a = lift(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / a.data,)

    def graph(g: Tensor) -> tuple[Tensor]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / a,)

    return Tensor._from_op(out, (a,), backward, "log", graph)


def sqrt(a: Any) -> Tensor:
    """Square root; sqrt(0) = 0 with gradient inf, sqrt(x < 0) = nan, without warnings.

    The gradient is g / (2 sqrt(a)) everywhere, as in PyTorch.
    """
    a = lift(a)
    with np.errstate(invalid="ignore"):
        out = np.sqrt(a.data)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * 0.5 / out,)

    def graph(g: Tensor) -> tuple[Tensor]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * 0.5 / sqrt(a),)

    return Tensor._from_op(out, (a,), backward, "sqrt", graph)


def tanh(a: Any) -> Tensor:
    a = lift(a)
    out = np.tanh(a.data)

    def graph(g: Tensor) -> tuple[Tensor]:
        t = tanh(a)
        return (g * (1 - t * t),)

    return Tensor._from_op(out, (a,), lambda g: (g * (1 - out * out),), "tanh", graph)


def sigmoid(a: Any) -> Tensor:
    """1 / (1 + e^-a), computed without overflow for large |a|."""
    a = lift(a)
    e = np.exp(-np.abs(a.data))
    out = np.where(a.data >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)

    def graph(g: Tensor) -> tuple[Tensor]:
        s = sigmoid(a)
        return (g * s * (1 - s),)

    return Tensor._from_op(out, (a,), lambda g: (g * out * (1 - out),), "sigmoid", graph)


def relu(a: Any) -> Tensor:
    """max(a, 0); the gradient at exactly 0 is 0, as in PyTorch."""
    a = lift(a)
    out = np.maximum(a.data, 0)
    rule = lambda g: (g * (a.data > 0),)  # noqa: E731  (a constant mask: relu'' = 0)
    return Tensor._from_op(out, (a,), rule, "relu", rule)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_LN_2 = math.log(2)
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


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def erf_op(a: Any) -> Tensor:
    """The error function as a differentiable op: d erf(x)/dx = 2 / sqrt(pi) * exp(-x^2)."""
    a = lift(a)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g * np.exp(-a.data * a.data) * a.dtype.type(_TWO_OVER_SQRT_PI),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (g * exp(-a * a) * _TWO_OVER_SQRT_PI,)

    return Tensor._from_op(erf(a.data), (a,), backward, "erf", graph)


# Abramowitz and Stegun 7.1.26 rewritten for Phi(-|x|) = erfc(|x| / sqrt 2) / 2: the
# 1/sqrt(2) folded into p and the 1/2 into the coefficients.
_PHI_P = 0.3275911 * _SQRT_HALF
_PHI_COEFFS = tuple(
    0.5 * c for c in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
)


def _gelu_with_slope(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GELU(x) = x Phi(x) and its derivative Phi(x) + x phi(x), in few in-place passes.

    float32 and other low precisions use the polynomial above (error below
    float32's resolution near 1); float64 uses `math.erf` element by element.
    At -inf the value is nan, and at +-inf the slope, as in PyTorch, quietly.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        return _gelu_passes(x)


def _gelu_passes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(DEFAULT_DTYPE)
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    slope = np.empty_like(x)
    if x.dtype == np.float64:
        np.multiply(0.5, 1 + erf(x * _SQRT_HALF), out=out)  # Phi(x)
        np.multiply(np.exp(-0.5 * x * x) * _INV_SQRT_2PI, x, out=slope)
        slope += out
        out *= x
        return out, slope
    flat_x, flat_out, flat_slope = x.reshape(-1), out.reshape(-1), slope.reshape(-1)
    for start in range(0, flat_x.size, CACHE_CHUNK):  # each slice's passes stay in cache
        piece = slice(start, start + CACHE_CHUNK)
        _gelu_into(flat_x[piece], flat_out[piece], flat_slope[piece])
    return out, slope


def _flip_where_negative(values: np.ndarray, sign_of: np.ndarray, scratch: np.ndarray) -> None:
    """values *= -1 in place wherever sign_of has its sign bit set (-0.0 included).

    Flips the sign bits with two bitwise passes over integer views, several
    times faster than np.copysign, which NumPy does not vectorise.  `scratch`,
    shaped like values, is overwritten.
    """
    bits = np.dtype(f"u{values.itemsize}") if values.itemsize in (2, 4, 8) else None
    if bits is None or not (values.flags.c_contiguous and sign_of.flags.c_contiguous):
        np.negative(values, out=values, where=np.signbit(sign_of))
        return
    signs = scratch.view(bits)
    np.bitwise_and(sign_of.view(bits), bits.type(1 << (8 * values.itemsize - 1)), out=signs)
    np.bitwise_xor(values.view(bits), signs, out=values.view(bits))


def _gelu_into(v: np.ndarray, cdf: np.ndarray, d: np.ndarray) -> None:
    """Fill cdf with GELU(v) and d with its derivative, without temporaries but one."""
    kind = v.dtype.type
    half = kind(0.5)
    c0, c1, c2, c3, c4 = (kind(c) for c in _PHI_COEFFS)
    with np.errstate(over="ignore", invalid="ignore"):  # x = +-inf
        t = np.abs(v)
        t += kind(1 / _PHI_P)
        np.divide(kind(1 / _PHI_P), t, out=t)  # 1 / (1 + p |x|)
        np.multiply(t, c4, out=cdf)
        for c in (c3, c2, c1, c0):
            cdf += c
            cdf *= t
        gauss = np.multiply(v, v, out=t)
        gauss *= kind(-0.5 / _LN_2)
        np.exp2(gauss, out=gauss)  # exp(-x^2 / 2); NumPy's exp2 is a third faster than exp
        cdf *= gauss  # Phi(-|x|)
        np.subtract(half, cdf, out=cdf)  # Phi(|x|) - 1/2
        _flip_where_negative(cdf, v, scratch=d)  # Phi(x) - 1/2
        cdf += half  # Phi(x)
        np.multiply(gauss, v, out=d)
        d *= kind(_INV_SQRT_2PI)
        d += cdf  # Phi(x) + x phi(x)
        cdf *= v  # x Phi(x)


def gelu(a: Any, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit, x * Phi(x); `approximate="tanh"` uses the tanh form."""
    a = lift(a)
    x = a.data
    if approximate == "none":
        out, slope = _gelu_with_slope(x)

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (g * slope,)

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

    def graph(g: Tensor) -> tuple[Tensor]:
        if approximate == "none":
            cdf_t = 0.5 * (1 + erf_op(a * _SQRT_HALF))
            return (g * (cdf_t + a * exp(-0.5 * a * a) * _INV_SQRT_2PI),)
        th_t = tanh(_SQRT_2_OVER_PI * (a + 0.044715 * a * a * a))
        du_t = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * a * a)
        return (g * (0.5 * (1 + th_t) + 0.5 * a * (1 - th_t * th_t) * du_t),)

    return Tensor._from_op(out, (a,), backward, "gelu", graph)


def abs(a: Any) -> Tensor:
    """|a|; the gradient at 0 is 0, as in PyTorch."""
    a = lift(a)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        with np.errstate(invalid="ignore"):  # inf * 0 at 0 is nan, quietly, as in PyTorch
            return (g * np.sign(a.data),)

    return Tensor._from_op(np.abs(a.data), (a,), backward, "abs", lambda g: (g * np.sign(a.data),))


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max; at ties the gradient is split in half between a and b, as in PyTorch."""
    a, b = lift_pair(a, b)
    out = _broadcast("maximum", a, b, np.maximum)
    rule = _tie_split(a, b, np.greater)
    return Tensor._from_op(out, (a, b), rule, "maximum", rule)


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min; at ties the gradient is split in half between a and b, as in PyTorch."""
    a, b = lift_pair(a, b)
    out = _broadcast("minimum", a, b, np.minimum)
    rule = _tie_split(a, b, np.less)
    return Tensor._from_op(out, (a, b), rule, "minimum", rule)


def _tie_split(a: Tensor, b: Tensor, wins: Callable[..., np.ndarray]) -> Callable[..., Any]:
    """The rule of maximum or minimum: the winner takes g, ties give each g / 2.

    Serves arrays and Tensors alike (the weights are constants: the rule's
    own derivative is 0 almost everywhere).
    """

    def rule(g: Any) -> tuple[Any, Any]:
        a_share = wins(a.data, b.data) + 0.5 * (a.data == b.data)
        a_share = a_share.astype(a.dtype)
        return g * a_share, g * (1 - a_share)

    return rule


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
    rule = lambda g: (g * inside,)  # noqa: E731
    return Tensor._from_op(out, (a,), rule, "clip", rule)

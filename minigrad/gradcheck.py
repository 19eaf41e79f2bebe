"""Check analytic gradients against central finite differences."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from minigrad.autograd import grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with central differences."""


def _as_output(result: Any) -> Tensor:
    if isinstance(result, (tuple, list)):
        raise TypeError("gradcheck: fn must return one Tensor, got a sequence")
    if not isinstance(result, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(result).__name__}")
    return result


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Compare backward's gradients with central differences, in float64.

    The output is reduced to a scalar by a dot product with a fixed random
    tensor `r`, so the check covers the vector-Jacobian product that
    backward computes: for each input element x_i, the analytic
    d(sum(r * fn))/dx_i must match (f(x_i + eps) - f(x_i - eps)) / (2 eps)
    within `atol + rtol * |numeric|`.

    Args:
        fn: maps the inputs to one Tensor.
        inputs: float64 Tensors; those with `requires_grad` are checked.
        eps: the finite-difference step.
        seed: seeds the random projection `r`.
        raise_exception: raise GradcheckError on failure instead of returning False.

    Returns:
        True when every checked element agrees (else False, or an exception).
    """
    positions = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    checked = [inputs[i] for i in positions]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for position, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {position} has dtype {t.dtype}; finite differences need float64"
            )

    out = _as_output(fn(*inputs))
    r = np.random.default_rng(seed).standard_normal(out.shape)
    callers_grads = [t.grad for t in checked]  # restored at the end
    for t in checked:
        t.grad = None
    (out * Tensor(r)).sum().backward()
    analytic = [np.zeros(t.shape) if t.grad is None else t.grad.copy() for t in checked]
    for t, previous in zip(checked, callers_grads, strict=True):
        t.grad = previous

    def projected() -> float:
        # Not under no_grad: fn may itself take gradients (see gradgradcheck).
        return float(np.sum(_as_output(fn(*inputs)).data * r))

    for k, t in enumerate(checked):
        numeric = np.zeros(t.size)
        # Perturb the input in place through multi-indices: reshape(-1) would copy
        # a non-contiguous array (a transpose, a slice) and perturb nothing.
        for i, position in enumerate(np.ndindex(t.shape)):
            original = t.data[position]
            t.data[position] = original + eps
            plus = projected()
            t.data[position] = original - eps
            minus = projected()
            t.data[position] = original
            numeric[i] = (plus - minus) / (2 * eps)
        error = np.abs(analytic[k].reshape(-1) - numeric)
        limit = atol + rtol * np.abs(numeric)
        if np.any(~(error <= limit)):
            worst = int(np.argmax(np.where(np.isnan(error), np.inf, error - limit)))
            where = np.unravel_index(worst, t.shape) if t.ndim else ()
            message = (
                f"gradcheck: input {positions[k]} (shape {t.shape}) "
                f"element {tuple(int(w) for w in where)}: analytic "
                f"{analytic[k].reshape(-1)[worst]:.10g}, numeric {numeric[worst]:.10g}"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check second derivatives: differentiate a projection of the first-order gradient.

    With fixed random tensors r (like fn's output) and u_i (like each input),
    h(x) = sum_i <d<r, fn(x)>/dx_i, u_i> is computed with
    `grad(..., create_graph=True)`; its analytic gradient (a Hessian-vector
    product) must match central differences of h, as in `gradcheck`.
    """
    rng = np.random.default_rng(seed + 1)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    r = rng.standard_normal(_as_output(fn(*inputs)).shape)
    directions = {i: rng.standard_normal(inputs[i].shape) for i in checked}

    def projected_gradient(*args: Tensor) -> Tensor:
        out = (_as_output(fn(*args)) * Tensor(r)).sum()
        grads = grad(out, [args[i] for i in checked], create_graph=True, allow_unused=True)
        total = Tensor(np.zeros(()))
        for i, g in zip(checked, grads, strict=True):
            if g is not None:
                total = total + (g * Tensor(directions[i])).sum()
        return total

    return gradcheck(projected_gradient, inputs, eps, atol, rtol, seed, raise_exception)

"""Check analytic gradients against central finite differences."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from minigrad.autograd import no_grad
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
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True, so there is nothing to check")
    for position, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {position} has dtype {t.dtype}; finite differences need float64"
            )

    out = _as_output(fn(*inputs))
    r = np.random.default_rng(seed).standard_normal(out.shape)
    for t in checked:
        t.grad = None
    (out * Tensor(r)).sum().backward()
    analytic = [np.zeros(t.shape) if t.grad is None else t.grad.copy() for t in checked]

    def projected() -> float:
        with no_grad():
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
                f"gradcheck: input {inputs.index(t) if t in inputs else k} (shape {t.shape}) "
                f"element {tuple(int(w) for w in where)}: analytic "
                f"{analytic[k].reshape(-1)[worst]:.10g}, numeric {numeric[worst]:.10g}"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
        t.grad = None
    return True

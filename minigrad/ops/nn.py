"""Fused rules for neural networks: each forward and its backward in one node.

A composite of elementwise ops would give the same gradients, but a fused
rule is faster, needs less memory and is numerically safer.  The tests check
every rule here against central differences and against the composite.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np

from minigrad.ops import lift, normalize_axis, shape_error
from minigrad.ops.shape import scatter_add, where
from minigrad.tensor import Tensor, as_array

# A row whose exponentials, shifted by the array's maximum, sum to less than this is
# shifted again by its own maximum.
_SMALL_TOTAL = 1e-15


def _exp_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """exp(x - shift) along the last axis, with the shift and the row sums (both keepdims).

    Softmax needs a shift per row that keeps exp from overflowing.  The largest
    element of the whole array does for every row at the cost of one fast
    reduction, where NumPy takes a maximum along a short last axis one element
    at a time.  Rows that shift leaves with a sum below 1e-15 (rows far below
    the rest) are redone with their own maximum, so each row's largest
    terms stay normal floats.  A row that is all -inf gets shift 0 and sum 0;
    with a nan or +inf anywhere every row takes its own maximum.

    Returns:
        (e, shift, total): e = exp(x - shift) is a new array.
    """
    if x.size == 0:  # no rows, or rows of nothing: nothing to shift
        return np.empty_like(x), np.zeros(x.shape[:-1] + (1,), x.dtype), _sum_last(x)
    top = x.max()
    if np.isfinite(top):
        with np.errstate(over="ignore"):  # -1e308 - 1e308 is -inf, and exp makes it 0
            e = np.subtract(x, top)
        shift = np.full(x.shape[:-1] + (1,), top, dtype=x.dtype)
        redo = None
    else:
        e = np.empty_like(x)
        shift = np.empty(x.shape[:-1] + (1,), dtype=x.dtype)
        redo = np.ones(x.shape[:-1], dtype=bool)
    if redo is None:
        np.exp(e, out=e)
        total = _sum_last(e)
        redo = total[..., 0] < _SMALL_TOTAL
        if not redo.any():
            return e, shift, total
    else:
        total = np.empty(shift.shape, dtype=x.dtype)
    rows = x[redo]
    peak = rows.max(axis=-1, keepdims=True)
    peak[peak == -np.inf] = 0  # all -inf: exp gives zeros, not nan (+inf rows give nan)
    shift[redo] = peak
    with np.errstate(invalid="ignore", over="ignore"):  # a row holding +inf: nan, as in PyTorch
        redone = np.exp(rows - peak)
    e[redo] = redone
    total[redo] = _sum_last(redone)
    return e, shift, total


def _require_floating(name: str, x: Tensor) -> None:
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name}: needs a floating-point tensor, got {x.dtype}; convert with .float()"
        )


def _sum_last(x: np.ndarray) -> np.ndarray:
    """x.sum(axis=-1, keepdims=True) as a product with ones, which BLAS does far faster."""
    if not np.issubdtype(x.dtype, np.floating) or x.shape[-1] == 0:
        return x.sum(axis=-1, keepdims=True)
    return (x @ np.ones(x.shape[-1], dtype=x.dtype))[..., None]


def _dot_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a * b).sum(axis=-1, keepdims=True) in one pass."""
    return np.einsum("...j,...j->...", a, b)[..., None]


def softmax(x: Any, axis: int = -1) -> Tensor:
    x = lift(x)
    _require_floating("softmax", x)
    axis = normalize_axis(axis, x.ndim)
    if axis == x.ndim - 1:
        s, _, total = _exp_rows(x.data)
        with np.errstate(divide="ignore", invalid="ignore"):  # a row all -inf: nan
            s *= 1 / total
    else:
        s = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
        s /= s.sum(axis=axis, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # d softmax: s * (g - sum(g * s))
        if axis == x.ndim - 1:
            grad = g - _dot_last(g, s)
        else:
            grad = g - (g * s).sum(axis=axis, keepdims=True)
        grad *= s
        return (grad,)

    def graph(g: Tensor) -> tuple[Tensor]:
        s_t = softmax(x, axis)
        return (s_t * (g - (g * s_t).sum(axis=axis, keepdims=True)),)

    return Tensor._from_op(s, (x,), backward, "softmax", graph)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    x = lift(x)
    _require_floating("log_softmax", x)
    axis = normalize_axis(axis, x.ndim)
    if axis == x.ndim - 1:
        _, shift, total = _exp_rows(x.data)
        # A row all -inf gives nan; -1e308 - 1e308 gives -inf: both quietly, as in PyTorch.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = x.data - shift
            out -= np.log(total)
    else:
        with np.errstate(over="ignore"):
            out = x.data - x.data.max(axis=axis, keepdims=True)
            out -= np.log(np.exp(out).sum(axis=axis, keepdims=True))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # d log_softmax: g - softmax * sum(g)
        total = _sum_last(g) if axis == x.ndim - 1 else g.sum(axis=axis, keepdims=True)
        grad = np.exp(out)
        grad *= total
        np.subtract(g, grad, out=grad)
        return (grad,)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (g - softmax(x, axis) * g.sum(axis=axis, keepdims=True),)

    return Tensor._from_op(out, (x,), backward, "log_softmax", graph)


def _class_targets(target: Any, logits: Tensor, ignore_index: int) -> np.ndarray:
    """Check that `target` holds one class index in [0, C) per row, or ignore_index."""
    t = as_array(target)
    n_rows, n_classes = logits.shape
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(
            f"cross_entropy: target must hold integer class indices, got dtype {t.dtype}"
        )
    if t.shape != (n_rows,):
        raise ValueError(
            f"cross_entropy: target has shape {t.shape}, expected ({n_rows},) "
            f"for logits {logits.shape}"
        )
    used = t[t != ignore_index]
    if used.size and (used.min() < 0 or used.max() >= n_classes):
        bad = used[(used < 0) | (used >= n_classes)][0]
        raise IndexError(
            f"cross_entropy: target holds class {bad}, expected classes in [0, {n_classes})"
            f" or ignore_index={ignore_index}"
        )
    return t


def cross_entropy(
    logits: Any, target: Any, ignore_index: int = -100, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy of class indices under softmax(logits), the loss of classification.

    Args:
        logits: (N, C) unnormalised scores, or (C,) for one example.
        target: (N,) integer classes in [0, C), or a single class for (C,) logits;
            rows whose class is `ignore_index` add nothing to the loss.
        reduction: 'mean' over the rows not ignored, 'sum', or 'none' for (N,) losses.
    """
    logits = lift(logits)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    single = logits.ndim == 1
    if single:
        logits = logits.reshape(1, -1)
        target = as_array(target).reshape(1)
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must be (N, C), got {logits.shape}; for sequences "
            "flatten with logits.reshape(-1, C) and target.reshape(-1)"
        )
    t = _class_targets(target, logits, ignore_index)
    rows = np.arange(len(t))
    valid = t != ignore_index
    safe_t = np.where(valid, t, 0)
    e, shift, total = _exp_rows(logits.data)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf or nan logits: nan, silently
        losses = np.log(total[:, 0]) - (logits.data[rows, safe_t] - shift[:, 0])
    losses = np.where(valid, losses, 0)  # an ignored row adds 0, even with nan logits
    count = int(valid.sum())
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.asarray(losses.sum() / count, dtype=logits.dtype)
    elif reduction == "sum":
        out = np.asarray(losses.sum(), dtype=logits.dtype)
    else:
        out = losses.astype(logits.dtype, copy=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        # d cross_entropy / d logits: softmax(logits) - one_hot(target)
        grad = e / total
        grad[rows, safe_t] -= 1
        if reduction == "none":
            grad *= (g * valid)[:, None]
        else:
            grad *= valid[:, None] * _row_scale(g, count, reduction)
        if not valid.all():
            grad[~valid] = 0  # 0 * nan would be nan in an ignored row of nan logits
        return (grad,)

    def graph(g: Tensor) -> tuple[Tensor]:
        one_hot = np.zeros(logits.shape, dtype=logits.dtype)
        one_hot[rows, safe_t] = 1
        residual = softmax(logits, 1) - one_hot
        if reduction == "none":
            scaled = residual * g.unsqueeze(1)
        else:
            scaled = residual * _row_scale(g, count, reduction)
        return (where(valid[:, None], scaled, 0.0),)

    loss = Tensor._from_op(out, (logits,), backward, "cross_entropy", graph)
    return loss.reshape(()) if single and reduction == "none" else loss


def _row_scale(g: Any, count: int, reduction: str) -> Any:
    """What each kept row's gradient is multiplied by: g, or g / count for a mean.

    With every row ignored the mean is nan, but no row contributes, so every
    gradient is 0, as in PyTorch (not nan from g / 0).
    """
    if reduction != "mean":
        return g
    return g / count if count else g * 0


def mse_loss(prediction: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean (or summed, or per-element) squared error; both arguments must share a shape."""
    prediction, target = lift(prediction), lift(target)
    if prediction.shape != target.shape:
        raise shape_error(
            "mse_loss", prediction, target, "differ; prediction and target must have one shape"
        )
    diff = prediction.data - target.data
    if reduction == "mean":
        out, scale = np.mean(diff * diff), 2 / max(diff.size, 1)
    elif reduction == "sum":
        out, scale = np.sum(diff * diff), 2.0
    elif reduction == "none":
        out, scale = diff * diff, 2.0
    else:
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad = g * diff * scale
        return grad, -grad

    def graph(g: Tensor) -> tuple[Tensor, Tensor]:
        grad = g * (prediction - target) * scale
        return grad, -grad

    out = np.asarray(out, dtype=prediction.dtype)
    return Tensor._from_op(out, (prediction, target), backward, "mse_loss", graph)


def dropout(x: Any, p: float, training: bool, rng: np.random.Generator) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p)."""
    x = lift(x)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    keep = rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32) >= p
    mask = keep * x.dtype.type(0 if p == 1 else 1 / (1 - p))
    rule = lambda g: (g * mask,)  # noqa: E731  (arrays and Tensors alike)
    return Tensor._from_op(x.data * mask, (x,), rule, "dropout", rule)


def layer_norm(
    x: Any,
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last axes to zero mean and unit variance, then scale and shift."""
    x = lift(x)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if x.shape[x.ndim - k :] != normalized_shape:
        raise ValueError(
            f"layer_norm: input of shape {x.shape} does not end in "
            f"normalized_shape {normalized_shape}"
        )
    axes = tuple(range(x.ndim - k, x.ndim))
    width = math.prod(normalized_shape)
    kind = x.dtype.type
    rows = x.data.reshape(math.prod(x.shape[: x.ndim - k]), width)
    # Row sums as products with a vector of ones: BLAS sums rows far faster than
    # a reduction along the last axis does.
    inv_width = kind(1 / width if width else 0)
    ones = np.ones(width, dtype=x.dtype)
    # Shifting each row by its first element first centres a constant row to exactly 0.
    centered = rows - rows[:, :1]
    mean = centered @ ones
    mean *= inv_width
    centered -= mean[:, None]
    variance = np.einsum("ij,ij->i", centered, centered)
    variance *= inv_width
    with np.errstate(divide="ignore"):  # eps=0 and a constant row: 1 / 0
        rstd = (1 / np.sqrt(variance + kind(eps)))[:, None]
    xhat = np.multiply(centered, rstd, out=centered)
    if weight is not None:
        out = xhat * weight.data.reshape(-1)
        if bias is not None:
            out += bias.data.reshape(-1)
    else:
        out = xhat if bias is None else xhat + bias.data.reshape(-1)
    out = out.reshape(x.shape)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        g_rows = g.reshape(rows.shape)
        grad_w = grad_b = None
        if weight is not None and weight.requires_grad:
            grad_w = np.einsum("ij,ij->j", g_rows, xhat).reshape(weight.shape)
        if bias is not None and bias.requires_grad:
            grad_b = g_rows.sum(axis=0).reshape(bias.shape)
        if not x.requires_grad:
            return None, grad_w, grad_b
        # d layer_norm: rstd * (g_xhat - mean(g_xhat) - xhat * mean(g_xhat * xhat))
        g_xhat = g_rows * weight.data.reshape(-1) if weight is not None else g_rows.copy()
        mean_g = g_xhat @ ones
        mean_g *= inv_width
        mean_gx = np.einsum("ij,ij->i", g_xhat, xhat)
        mean_gx *= inv_width
        g_xhat -= xhat * mean_gx[:, None]
        g_xhat -= mean_g[:, None]
        g_xhat *= rstd
        return g_xhat.reshape(x.shape), grad_w, grad_b

    def graph(g: Tensor) -> tuple[Tensor | None, ...]:
        # The same rule in Tensor ops, recomputed from x so it can be differentiated.
        centered_t = x - x.mean(axis=axes, keepdims=True)
        variance = (centered_t * centered_t).mean(axis=axes, keepdims=True)
        rstd_t = (variance + eps) ** -0.5
        xhat_t = centered_t * rstd_t
        g_xhat = g * weight if weight is not None else g
        grad_x = rstd_t * (
            g_xhat
            - g_xhat.mean(axis=axes, keepdims=True)
            - xhat_t * (g_xhat * xhat_t).mean(axis=axes, keepdims=True)
        )
        grad_w = g * xhat_t if weight is not None else None
        return grad_x, grad_w, g if bias is not None else None

    return Tensor._from_op(out, (x, weight, bias), backward, "layer_norm", graph)


def _sum_rows_by_index(rows: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """A table of n rows where row i is the sum of the `rows` whose index is i (else zeros).

    Sorts the indices so that each run of equal ones is summed by one reduceat,
    which is many times faster than np.add.at for rows of a table.
    """
    table = np.zeros((n, *rows.shape[1:]), dtype=rows.dtype)
    if index.size == 0:
        return table
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    table[sorted_index[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return table


def embedding(indices: Any, weight: Tensor) -> Tensor:
    """Rows of `weight` picked by integer `indices`; output shape indices.shape + (dim,)."""
    idx = as_array(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise IndexError(f"embedding: index {bad} is outside the table's {n} rows [0, {n})")
    out = weight.data[idx]

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_sum_rows_by_index(g.reshape(-1, *weight.shape[1:]), idx.reshape(-1), n),)

    def graph(g: Tensor) -> tuple[Tensor]:
        return (scatter_add(g, weight.shape, (idx,)),)

    return Tensor._from_op(out, (weight,), backward, "embedding", graph)


# ---- attention ----------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def causal_mask(t_query: int, t_key: int) -> np.ndarray:
    """(t_query, t_key) booleans, True where query i may see key j: j <= i.

    Aligned at the top left, as torch's `is_causal`: query 0 sees key 0 only,
    whatever t_key is.  The array is shared between calls and read-only.
    """
    allowed = np.tril(np.ones((t_query, t_key), dtype=bool))
    allowed.setflags(write=False)
    return allowed


@functools.lru_cache(maxsize=16)
def _causal_bias(t_query: int, t_key: int, dtype: np.dtype) -> np.ndarray:
    """0 where causal_mask allows, -inf where it forbids: one in-place add applies it."""
    bias = np.where(causal_mask(t_query, t_key), 0, -np.inf).astype(dtype)
    bias.setflags(write=False)
    return bias


def _transposed(a: np.ndarray) -> np.ndarray:
    """A contiguous copy of a with its last two axes swapped.

    NumPy multiplies stacks of small matrices a third faster by a contiguous
    right operand than by a transposed view of one: copying first pays.
    """
    return np.ascontiguousarray(np.swapaxes(a, -1, -2))


def _attention_mask(
    mask: Any, dtype: np.dtype, is_causal: bool, t_query: int, t_key: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Turn `mask` and `is_causal` into (blocked booleans or None, additive scores or None)."""
    causal = _causal_bias(t_query, t_key, dtype) if is_causal else None
    if mask is None:
        return None, causal
    m = as_array(mask)
    if m.dtype == bool:
        return ~m, causal
    if np.issubdtype(m.dtype, np.floating):
        m = m.astype(dtype, copy=False)
        return None, (m if causal is None else m + causal)
    raise TypeError(
        f"scaled_dot_product_attention: mask has dtype {m.dtype}; expected bool "
        "(True = may attend) or floating (added to the scores)"
    )


def scaled_dot_product_attention(
    q: Any,
    k: Any,
    v: Any,
    mask: Any = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    rng: np.random.Generator | None = None,
    need_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """softmax(q k^T * scale + mask) v as one node, with its backward written by hand.

    A row whose every key is masked out attends to nothing: its probabilities
    and its output are zeros, and its gradients are zeros rather than NaN.

    Args:
        q: (..., Tq, d) queries.
        k: (..., Tk, d) keys.
        v: (..., Tk, dv) values.
        mask: broadcastable to (..., Tq, Tk); booleans say where a query may
            attend (True = may, as torch's scaled_dot_product_attention), floats
            are added to the scores (and receive a gradient if they require one).
        is_causal: also forbid query i to see key j > i (top-left aligned).
        dropout_p: drop attention probabilities with this chance (needs `rng`).
        scale: multiplies the scores; 1 / sqrt(d) by default.
        need_weights: also return the attention probabilities, before dropout.

    Returns:
        (..., Tq, dv) outputs, or (outputs, (..., Tq, Tk) weights) with need_weights.
    """
    q, k, v = lift(q), lift(k), lift(v)
    name = "scaled_dot_product_attention"
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(
            f"{name}: q, k and v need at least 2 dimensions (..., T, d), got shapes "
            f"{q.shape}, {k.shape} and {v.shape}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise shape_error(name, q, k, "differ in the last axis; queries and keys need one width")
    if k.shape[-2] != v.shape[-2]:
        raise shape_error(name, k, v, "differ in length; each key needs one value")
    if not 0 <= dropout_p < 1:
        raise ValueError(f"{name}: dropout_p must be in [0, 1), got {dropout_p}")
    if dropout_p > 0 and rng is None:
        raise ValueError(f"{name}: dropout_p={dropout_p} needs a random generator rng")
    dtype = q.dtype
    t_query, t_key = q.shape[-2], k.shape[-2]
    scale = dtype.type(1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    blocked, additive = _attention_mask(mask, dtype, is_causal, t_query, t_key)
    float_mask = mask is not None and np.issubdtype(as_array(mask).dtype, np.floating)
    mask_input = mask if isinstance(mask, Tensor) and float_mask else None

    square = (t_query, t_key)
    try:
        full = np.broadcast_shapes(*(a.shape[:-2] + square for a in (q, k, v)))
    except ValueError:
        raise ValueError(
            f"{name}: the batch axes of q {q.shape}, k {k.shape} and v {v.shape} do not "
            "broadcast together"
        ) from None
    try:
        full = np.broadcast_shapes(full, *(m.shape for m in (blocked, additive) if m is not None))
    except ValueError:
        raise ValueError(
            f"{name}: mask of shape {as_array(mask).shape} does not broadcast to the "
            f"scores' shape {full} (..., Tq, Tk)"
        ) from None
    lead = full[:-2]
    if q.shape[:-2] == k.shape[:-2] == lead:
        scores = np.matmul(q.data, _transposed(k.data))  # (..., Tq, Tk)
    else:  # the mask or v brings batch axes that q and k lack
        scores = np.empty(full, dtype=dtype)
        scores[...] = np.matmul(q.data, _transposed(k.data))
    scores *= scale
    if additive is not None:
        scores += additive
    if blocked is not None:
        np.copyto(scores, dtype.type(-np.inf), where=blocked)
    # softmax over the keys
    probs, _, total = _exp_rows(scores)
    total[total == 0] = 1  # a row with every key masked: probabilities 0, not 0 / 0
    probs *= 1 / total
    if dropout_p > 0:
        keep = rng.random(full, dtype=np.float64 if dtype == np.float64 else np.float32)
        keep = (keep >= dropout_p) * dtype.type(1 / (1 - dropout_p))
        dropped = probs * keep
    else:
        keep, dropped = None, probs
    out = np.matmul(dropped, v.data)  # (..., Tq, dv)

    def grads_from_scores(grad_probs: np.ndarray) -> tuple[np.ndarray | None, ...]:
        """Gradients of q, k and an additive mask, given the gradient of the probabilities.

        Overwrites grad_probs, which is always a fresh array.
        """
        # d softmax: P * (dP - sum(dP * P)); masked entries have P = 0 and get none.
        grad_scores = grad_probs
        grad_scores -= _dot_last(grad_probs, probs)
        grad_scores *= probs
        grad_mask = grad_scores if mask_input is not None and mask_input.requires_grad else None
        grad_q = grad_k = None
        if q.requires_grad:
            grad_q = np.matmul(grad_scores, k.data)  # dQ = dS K * scale
            grad_q *= scale
        if k.requires_grad:
            grad_k = np.matmul(np.swapaxes(grad_scores, -1, -2), q.data)  # dK = dS^T Q * scale
            grad_k *= scale
        return grad_q, grad_k, grad_mask

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grad_v = np.matmul(np.swapaxes(dropped, -1, -2), g) if v.requires_grad else None
        grad_probs = np.matmul(g, _transposed(v.data))  # (..., Tq, Tk)
        if keep is not None:
            grad_probs *= keep
        grad_q, grad_k, grad_mask = grads_from_scores(grad_probs)
        return grad_q, grad_k, grad_v, grad_mask

    output = Tensor._from_op(out, (q, k, v, mask_input), backward, "attention")
    if not need_weights:
        return output

    def weights_backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        grad_q, grad_k, grad_mask = grads_from_scores(g.copy())
        return grad_q, grad_k, None, grad_mask

    weights = Tensor._from_op(probs, (q, k, v, mask_input), weights_backward, "attention_weights")
    return output, weights

"""Fused recurrent layers: a whole sequence forward, and backpropagation through time, in one node.

Built from small ops, a recurrent layer over T steps records about ten graph nodes per
step, and the Python overhead of each dwarfs the arithmetic on a (batch, units) slab.
Here the forward loops over time in NumPy and keeps what backward needs; backward
walks the steps in reverse (backpropagation through time) and returns one gradient per
input: x, the initial state(s), kernel, recurrent_kernel, bias.

Layouts follow Keras: kernel (features, gates * units), recurrent_kernel
(units, gates * units), gates side by side in the order i, f, c, o (LSTM) and
z, r, h (GRU).  Inputs are batch-first, (batch, timesteps, features); the loops run
time-major, (timesteps, batch, units), so each step reads one contiguous slab.

Every activation's derivative is written in terms of its output y = act(z), so the
forward keeps outputs only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.ops import lift
from minigrad.tensor import Tensor

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _sigmoid_(z: np.ndarray) -> None:
    """z <- 1 / (1 + e^-z) in place; e^-z overflowing to inf gives the right limit, 0."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def _activate_(z: np.ndarray, activation: str) -> None:
    """Apply a named activation to z in place."""
    if activation == "tanh":
        np.tanh(z, out=z)
    elif activation == "relu":
        np.maximum(z, 0, out=z)
    elif activation == "sigmoid":
        _sigmoid_(z)


def _slope(y: np.ndarray, activation: str) -> np.ndarray:
    """act'(z) from the output y = act(z)."""
    if activation == "tanh":
        return 1 - y * y
    if activation == "relu":
        return (y > 0).astype(y.dtype)  # 0 at exactly 0, as the relu op
    if activation == "sigmoid":
        return y * (1 - y)
    return np.ones_like(y)


def _check(
    name: str,
    x: Tensor,
    states: dict[str, Tensor],
    kernel: Tensor,
    recurrent_kernel: Tensor,
    bias: Tensor,
    gates: int,
    bias_shape: tuple[int, ...],
    activation: str,
) -> tuple[int, int, int, int]:
    """Validate shapes; return (batch, timesteps, features, units)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"{name}: activation must be one of {ACTIVATIONS}, got {activation!r}")
    if x.ndim != 3:
        raise ValueError(f"{name}: x must be (batch, timesteps, features), got shape {x.shape}")
    batch, steps, features = x.shape
    if steps == 0:
        raise ValueError(f"{name}: x has shape {x.shape}; a sequence needs at least one timestep")
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != gates * recurrent_kernel.shape[0]:
        raise ValueError(
            f"{name}: recurrent_kernel must be (units, {gates} * units), got "
            f"{recurrent_kernel.shape}"
        )
    units = recurrent_kernel.shape[0]
    if kernel.shape != (features, gates * units):
        raise ValueError(
            f"{name}: kernel has shape {kernel.shape}, expected (features, {gates} * units) = "
            f"{(features, gates * units)}"
        )
    if bias.shape != bias_shape:
        raise ValueError(f"{name}: bias has shape {bias.shape}, expected {bias_shape}")
    for state_name, state in states.items():
        if state.shape != (batch, units):
            raise ValueError(
                f"{name}: {state_name} has shape {state.shape}, expected (batch, units) = "
                f"{(batch, units)}"
            )
    return batch, steps, features, units


def _arrays(dtype: np.dtype, *tensors: Tensor) -> list[np.ndarray]:
    return [t.data.astype(dtype, copy=False) for t in tensors]


def _input_part(xs: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """x_t @ kernel + bias for every step in one product: (T, B, F) -> (T, B, gates * units)."""
    steps, batch, features = xs.shape
    out = xs.reshape(steps * batch, features) @ kernel
    out += bias
    return out.reshape(steps, batch, -1)


def _input_grads(
    x: Tensor, xs: np.ndarray, kernel: np.ndarray, d_input: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray]:
    """Gradients of x and kernel from d(x_t @ kernel) at every step, (T, B, gates * units)."""
    steps, batch, features = xs.shape
    d_flat = d_input.reshape(steps * batch, -1)
    grad_kernel = xs.reshape(steps * batch, features).T @ d_flat
    grad_x = None
    if x.requires_grad:
        grad_x = (d_flat @ kernel.T).reshape(steps, batch, features).transpose(1, 0, 2)
    return grad_x, grad_kernel


def _time_major(g: np.ndarray) -> np.ndarray:
    """(batch, timesteps, ...) -> (timesteps, batch, ...), a view."""
    return g.swapaxes(0, 1)


def simple_rnn(
    x: Any,
    h0: Any,
    kernel: Tensor,
    recurrent_kernel: Tensor,
    bias: Tensor,
    activation: str = "tanh",
    return_sequences: bool = False,
) -> Tensor:
    """h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias) over a whole sequence.

    Args:
        x: (batch, timesteps, features).
        h0: the state before the first step, (batch, units).
        kernel: (features, units); recurrent_kernel: (units, units); bias: (units,).
        activation: 'tanh', 'relu', 'sigmoid' or 'linear'.
        return_sequences: return every h_t, (batch, timesteps, units), not only the last.

    Returns:
        (batch, units), or (batch, timesteps, units) with `return_sequences`.
    """
    x, h0 = lift(x), lift(h0)
    _, steps, _, units = _check(
        "simple_rnn",
        x,
        {"h0": h0},
        kernel,
        recurrent_kernel,
        bias,
        1,
        (kernel.shape[-1],),
        activation,
    )
    dtype = np.result_type(x.dtype, h0.dtype, kernel.dtype, recurrent_kernel.dtype, bias.dtype)
    W, U, b = _arrays(dtype, kernel, recurrent_kernel, bias)
    xs = np.ascontiguousarray(_time_major(x.data), dtype=dtype)  # (T, B, F)

    inputs = _input_part(xs, W, b)  # (T, B, units)
    H = np.empty((steps + 1,) + h0.shape, dtype)  # H[0] = h0, H[t + 1] = h_t
    H[0] = h0.data
    # The loop is the hot path: it walks lists of per-step views rather than indexing.
    h_prev = H[0]
    for h, input_t in zip(list(H[1:]), list(inputs), strict=True):
        np.dot(h_prev, U, out=h)
        h += input_t
        _activate_(h, activation)
        h_prev = h
    out = np.ascontiguousarray(_time_major(H[1:])) if return_sequences else H[steps].copy()

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        slope = _slope(H[1:], activation)  # act'(z_t) for every step, (T, B, units)
        d_pre = np.empty_like(slope)  # d loss / d z_t
        U_T = np.ascontiguousarray(U.T)
        if return_sequences:
            dh = np.zeros_like(H[0])
            g_steps = list(_time_major(g))[::-1]
        else:
            dh = g.astype(dtype, copy=True)  # only the last step's h reaches the output
        backwards_in_time = zip(list(d_pre)[::-1], list(slope)[::-1], strict=True)
        for k, (d_t, slope_t) in enumerate(backwards_in_time):
            if return_sequences:
                dh += g_steps[k]
            np.multiply(dh, slope_t, out=d_t)
            np.dot(d_t, U_T, out=dh)  # now d loss / d h_{t-1}

        d_flat = d_pre.reshape(-1, units)
        grad_x, grad_W = _input_grads(x, xs, W, d_pre)
        grad_U = H[:-1].reshape(-1, units).T @ d_flat
        return grad_x, dh, grad_W, grad_U, d_flat.sum(axis=0)

    return Tensor._from_op(out, (x, h0, kernel, recurrent_kernel, bias), backward, "simple_rnn")


def lstm(
    x: Any,
    h0: Any,
    c0: Any,
    kernel: Tensor,
    recurrent_kernel: Tensor,
    bias: Tensor,
    activation: str = "tanh",
    return_sequences: bool = False,
) -> Tensor:
    """A long short-term memory layer over a whole sequence, gates in Keras' order i, f, c, o.

    With z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias split into four:
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o); c_t = f * c_{t-1} + i * act(z_c);
    h_t = o * act(c_t).

    Args:
        x: (batch, timesteps, features).
        h0, c0: the hidden and cell states before the first step, (batch, units) each.
        kernel: (features, 4 * units); recurrent_kernel: (units, 4 * units); bias: (4 * units,).
        activation: of the candidate and the cell output: 'tanh', 'relu', 'sigmoid', 'linear'.
        return_sequences: return the states at every step, not only the last.

    Returns:
        h and c stacked on a new first axis: (2, batch, units), or (2, batch, timesteps, units)
        with `return_sequences`; out[0] is h, out[1] is c.
    """
    x, h0, c0 = lift(x), lift(h0), lift(c0)
    _, steps, _, units = _check(
        "lstm",
        x,
        {"h0": h0, "c0": c0},
        kernel,
        recurrent_kernel,
        bias,
        4,
        (kernel.shape[-1],),
        activation,
    )
    dtype = np.result_type(
        x.dtype, h0.dtype, c0.dtype, kernel.dtype, recurrent_kernel.dtype, bias.dtype
    )
    W, U, b = _arrays(dtype, kernel, recurrent_kernel, bias)
    xs = np.ascontiguousarray(_time_major(x.data), dtype=dtype)
    u = units

    inputs = _input_part(xs, W, b)  # (T, B, 4u)
    gates = np.empty_like(inputs)  # i, f, candidate, o after their activations
    H = np.empty((steps + 1,) + h0.shape, dtype)
    C = np.empty_like(H)
    act_C = np.empty_like(H[1:])  # act(c_t), (T, B, u)
    H[0], C[0] = h0.data, c0.data
    with np.errstate(over="ignore"):
        for t in range(steps):
            z = gates[t]
            np.dot(H[t], U, out=z)
            z += inputs[t]
            _sigmoid_(z[:, : 2 * u])  # i and f
            _sigmoid_(z[:, 3 * u :])  # o
            _activate_(z[:, 2 * u : 3 * u], activation)
            i, f, candidate, o = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
            c = C[t + 1]
            np.multiply(f, C[t], out=c)
            c += i * candidate
            np.copyto(act_C[t], c)
            _activate_(act_C[t], activation)
            np.multiply(o, act_C[t], out=H[t + 1])
    if return_sequences:
        out = np.stack([_time_major(H[1:]), _time_major(C[1:])])
    else:
        out = np.stack([H[steps], C[steps]])

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        # Slopes of each gate's activation, for every step: (T, B, 4u).
        gate_slope = gates * (1 - gates)
        gate_slope[..., 2 * u : 3 * u] = _slope(gates[..., 2 * u : 3 * u], activation)
        # d h_t / d c_t through h = o * act(c): o * act'(c), (T, B, u)
        o_slope = gates[..., 3 * u :] * _slope(act_C, activation)
        d_pre = np.empty_like(gates)  # d loss / d z_t, (T, B, 4u)
        U_T = np.ascontiguousarray(U.T)
        if return_sequences:
            g_h, g_c = _time_major(g[0]), _time_major(g[1])
            dh, dc = np.zeros_like(H[0]), np.zeros_like(C[0])
        else:
            dh, dc = g[0].astype(dtype, copy=True), g[1].astype(dtype, copy=True)
        for t in reversed(range(steps)):
            if return_sequences:
                dh += g_h[t]
                dc += g_c[t]
            i, f, candidate = gates[t, :, :u], gates[t, :, u : 2 * u], gates[t, :, 2 * u : 3 * u]
            d = d_pre[t]
            dc += dh * o_slope[t]
            np.multiply(dc, candidate, out=d[:, :u])  # d i
            np.multiply(dc, C[t], out=d[:, u : 2 * u])  # d f (C[t] is c_{t-1})
            np.multiply(dc, i, out=d[:, 2 * u : 3 * u])  # d candidate
            np.multiply(dh, act_C[t], out=d[:, 3 * u :])  # d o
            d *= gate_slope[t]  # through the activations, to d z_t
            dc *= f  # now d loss / d c_{t-1}
            np.dot(d, U_T, out=dh)  # now d loss / d h_{t-1}

        grad_x, grad_W = _input_grads(x, xs, W, d_pre)
        d_flat = d_pre.reshape(-1, 4 * u)
        grad_U = H[:-1].reshape(-1, u).T @ d_flat
        return grad_x, dh, dc, grad_W, grad_U, d_flat.sum(axis=0)

    parents = (x, h0, c0, kernel, recurrent_kernel, bias)
    return Tensor._from_op(out, parents, backward, "lstm")


def gru(
    x: Any,
    h0: Any,
    kernel: Tensor,
    recurrent_kernel: Tensor,
    bias: Tensor,
    activation: str = "tanh",
    return_sequences: bool = False,
) -> Tensor:
    """A gated recurrent unit over a whole sequence, gates in Keras' order z, r, h.

    The reset gate applies after the recurrent product (Keras' reset_after=True, the
    form PyTorch and cuDNN use), so there are two biases: bias[0] on the input side,
    bias[1] on the recurrent side.  With a = x_t @ kernel + bias[0] and
    m = h_{t-1} @ recurrent_kernel + bias[1], each split into three:
    z = sigmoid(a_z + m_z), r = sigmoid(a_r + m_r), h~ = act(a_h + r * m_h),
    h_t = z * h_{t-1} + (1 - z) * h~.

    Args:
        x: (batch, timesteps, features).
        h0: the state before the first step, (batch, units).
        kernel: (features, 3 * units); recurrent_kernel: (units, 3 * units);
            bias: (2, 3 * units).
        activation: of the candidate h~: 'tanh', 'relu', 'sigmoid' or 'linear'.
        return_sequences: return every h_t, (batch, timesteps, units), not only the last.
    """
    x, h0 = lift(x), lift(h0)
    _, steps, _, units = _check(
        "gru",
        x,
        {"h0": h0},
        kernel,
        recurrent_kernel,
        bias,
        3,
        (2, kernel.shape[-1]),
        activation,
    )
    dtype = np.result_type(x.dtype, h0.dtype, kernel.dtype, recurrent_kernel.dtype, bias.dtype)
    W, U, b = _arrays(dtype, kernel, recurrent_kernel, bias)
    xs = np.ascontiguousarray(_time_major(x.data), dtype=dtype)
    u = units

    inputs = _input_part(xs, W, b[0])  # a_t for every step, (T, B, 3u)
    gates = np.empty_like(inputs)  # z, r, h~ after their activations
    recurrent_h = np.empty((steps,) + h0.shape, dtype)  # m_h, which the reset gate scales
    H = np.empty((steps + 1,) + h0.shape, dtype)
    H[0] = h0.data
    m = np.empty_like(inputs[0])
    with np.errstate(over="ignore"):
        for t in range(steps):
            np.dot(H[t], U, out=m)
            m += b[1]
            zr, candidate = gates[t, :, : 2 * u], gates[t, :, 2 * u :]
            np.add(inputs[t, :, : 2 * u], m[:, : 2 * u], out=zr)
            _sigmoid_(zr)
            z, r = zr[:, :u], zr[:, u:]
            recurrent_h[t] = m[:, 2 * u :]
            np.multiply(r, recurrent_h[t], out=candidate)
            candidate += inputs[t, :, 2 * u :]
            _activate_(candidate, activation)
            h = H[t + 1]  # z * h_{t-1} + (1 - z) * h~, as h~ + z * (h_{t-1} - h~)
            np.subtract(H[t], candidate, out=h)
            h *= z
            h += candidate
    out = np.ascontiguousarray(_time_major(H[1:])) if return_sequences else H[steps].copy()

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        z_all, r_all, candidate_all = gates[..., :u], gates[..., u : 2 * u], gates[..., 2 * u :]
        zr_slope = gates[..., : 2 * u] * (1 - gates[..., : 2 * u])
        # d h_t / d (a_h + r * m_h) = (1 - z) * act'(.)
        candidate_slope = (1 - z_all) * _slope(candidate_all, activation)
        d_input = np.empty_like(gates)  # d loss / d a_t, (T, B, 3u)
        d_recurrent = np.empty_like(gates)  # d loss / d m_t, (T, B, 3u)
        dh_through_m = np.empty_like(H[0])
        U_T = np.ascontiguousarray(U.T)
        if return_sequences:
            g_steps = _time_major(g)
            dh = np.zeros_like(H[0])
        else:
            dh = g.astype(dtype, copy=True)
        for t in reversed(range(steps)):
            if return_sequences:
                dh += g_steps[t]
            da, dm = d_input[t], d_recurrent[t]
            np.subtract(H[t], candidate_all[t], out=da[:, :u])
            da[:, :u] *= dh  # d z = dh * (h_{t-1} - h~)
            np.multiply(dh, candidate_slope[t], out=da[:, 2 * u :])  # d a_h
            np.multiply(da[:, 2 * u :], recurrent_h[t], out=da[:, u : 2 * u])  # d r
            np.multiply(da[:, 2 * u :], r_all[t], out=dm[:, 2 * u :])  # d m_h
            da[:, : 2 * u] *= zr_slope[t]  # through the sigmoids
            dm[:, : 2 * u] = da[:, : 2 * u]
            np.dot(dm, U_T, out=dh_through_m)
            dh *= z_all[t]
            dh += dh_through_m  # now d loss / d h_{t-1}

        grad_x, grad_W = _input_grads(x, xs, W, d_input)
        d_recurrent_flat = d_recurrent.reshape(-1, 3 * u)
        grad_U = H[:-1].reshape(-1, u).T @ d_recurrent_flat
        grad_b = np.stack([d_input.reshape(-1, 3 * u).sum(axis=0), d_recurrent_flat.sum(axis=0)])
        return grad_x, dh, grad_W, grad_U, grad_b

    return Tensor._from_op(out, (x, h0, kernel, recurrent_kernel, bias), backward, "gru")

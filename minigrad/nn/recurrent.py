"""Recurrent layers: SimpleRNN, LSTM and GRU, with Keras' weight layout and arguments.

Each layer runs a whole sequence as one fused op (minigrad/ops/recurrent.py) when its
activation is named, and offers `step`, one time step written in ordinary
differentiable ops, for looking inside: per-step hidden states and their gradients.
Inputs are batch-first, (batch, timesteps, features).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.layers import _check_positive
from minigrad.nn.module import Module, Parameter
from minigrad.ops import recurrent as recurrent_ops
from minigrad.ops.shape import stack
from minigrad.tensor import DEFAULT_DTYPE, Tensor

Activation = str | Callable[[Tensor], Tensor]
State = Tensor | tuple[Tensor, ...]

_STEP_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": F.tanh,
    "relu": F.relu,
    "sigmoid": F.sigmoid,
    "linear": lambda z: z,
}


class _Recurrent(Module):
    """What SimpleRNN, LSTM and GRU share: arguments, weights, input checks, the time loop."""

    gates = 1  # how many blocks of `units` columns the kernels hold
    state_names: tuple[str, ...] = ("h",)

    def __init__(
        self,
        input_size: int,
        units: int,
        activation: Activation = "tanh",
        return_sequences: bool = False,
        return_state: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_positive(name, input_size=input_size, units=units)
        if isinstance(activation, str):
            if activation not in recurrent_ops.ACTIVATIONS:
                raise ValueError(
                    f"{name}: activation must be one of {recurrent_ops.ACTIVATIONS} or a "
                    f"callable on Tensors, got {activation!r}"
                )
        elif not callable(activation):
            raise TypeError(
                f"{name}: activation must be a name or a callable, got {type(activation).__name__}"
            )
        self.input_size, self.units = int(input_size), int(units)
        self.activation = activation
        self.return_sequences, self.return_state = return_sequences, return_state

        width = self.gates * self.units
        self.kernel = Parameter(np.zeros((self.input_size, width), DEFAULT_DTYPE))
        self.recurrent_kernel = Parameter(np.zeros((self.units, width), DEFAULT_DTYPE))
        self.bias = Parameter(np.zeros(self._bias_shape(), DEFAULT_DTYPE))
        init.xavier_uniform_(self.kernel)
        init.orthogonal_(self.recurrent_kernel)

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def _act(self, z: Tensor) -> Tensor:
        if isinstance(self.activation, str):
            return _STEP_ACTIVATIONS[self.activation](z)
        return self.activation(z)

    def zero_state(self, batch_size: int, dtype: Any = DEFAULT_DTYPE) -> State:
        """The all-zero state a sequence starts from by default: h, or (h, c) for LSTM."""
        states = tuple(Tensor(np.zeros((batch_size, self.units), dtype)) for _ in self.state_names)
        return states if len(states) > 1 else states[0]

    def _check_input(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__}: x has shape {x.shape}, expected (batch, timesteps, "
                f"features) with at least one timestep and features = {self.input_size}"
            )
        return x

    def _initial_states(self, x: Tensor, initial_state: Any) -> tuple[Tensor, ...]:
        """The starting states as a tuple, zeros when none are given."""
        name = type(self).__name__
        if initial_state is None:
            dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else self.kernel.dtype
            zero = self.zero_state(x.shape[0], dtype)
            return zero if isinstance(zero, tuple) else (zero,)
        states = initial_state if isinstance(initial_state, (tuple, list)) else (initial_state,)
        if len(states) != len(self.state_names):
            raise ValueError(
                f"{name}: initial_state must hold {len(self.state_names)} tensor(s) "
                f"{self.state_names}, got {len(states)}"
            )
        states = tuple(s if isinstance(s, Tensor) else Tensor(s) for s in states)
        for state_name, state in zip(self.state_names, states, strict=True):
            if state.shape != (x.shape[0], self.units):
                raise ValueError(
                    f"{name}: initial state {state_name} has shape {state.shape}, expected "
                    f"(batch, units) = {(x.shape[0], self.units)}"
                )
        return states

    def step(self, x_t: Any, state: State | None = None) -> State:
        raise NotImplementedError

    # The fused op of a layer whose state is one hidden tensor (SimpleRNN, GRU).
    _fused_op: Any = None

    def _fused(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The whole sequence as one node; returns the output and the final state."""
        output = type(self)._fused_op(
            x,
            states[0],
            self.kernel,
            self.recurrent_kernel,
            self.bias,
            self.activation,
            self.return_sequences,
        )
        final = output[:, -1] if self.return_sequences else output
        return output, (final,)

    def _loop(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Run `step` over time: the path for an activation the fused op does not know."""
        state: State = states if len(states) > 1 else states[0]
        hidden = []
        for t in range(x.shape[1]):
            state = self.step(x[:, t], state)
            hidden.append(state[0] if isinstance(state, tuple) else state)
        final = state if isinstance(state, tuple) else (state,)
        output = stack(hidden, axis=1) if self.return_sequences else hidden[-1]
        return output, final

    def forward(self, x: Any, initial_state: State | Sequence[Tensor] | None = None) -> Any:
        """Run the layer over a sequence.

        Args:
            x: (batch, timesteps, features).
            initial_state: the state before the first step (h, or (h, c) for LSTM),
                each (batch, units); zeros when omitted.

        Returns:
            The last hidden state (batch, units), or every hidden state
            (batch, timesteps, units) with `return_sequences`; with `return_state`, a
            tuple (output, h) or, for LSTM, (output, h, c) holding the final states.
        """
        x = self._check_input(x)
        states = self._initial_states(x, initial_state)
        if isinstance(self.activation, str):
            output, final = self._fused(x, states)
        else:
            output, final = self._loop(x, states)
        return (output, *final) if self.return_state else output

    def extra_repr(self) -> str:
        activation = self.activation if isinstance(self.activation, str) else "custom"
        return (
            f"{self.input_size}, {self.units}, activation={activation!r}, "
            f"return_sequences={self.return_sequences}, return_state={self.return_state}"
        )


class SimpleRNN(_Recurrent):
    """A fully connected recurrent layer: h_t = act(x_t kernel + h_{t-1} recurrent_kernel + bias).

    Weights as in Keras: kernel (features, units) Glorot-uniform, recurrent_kernel
    (units, units) orthogonal, bias (units,) zero.

    Args:
        input_size: features per time step.
        units: size of the hidden state.
        activation: 'tanh', 'relu', 'sigmoid', 'linear', or a callable on Tensors
            (which runs step by step instead of as one fused op).
        return_sequences: output every hidden state, not only the last.
        return_state: also return the final state: forward gives (output, h).
    """

    _fused_op = staticmethod(recurrent_ops.simple_rnn)

    def step(self, x_t: Any, state: Tensor | None = None) -> Tensor:
        """One time step: x_t (batch, features) and h_{t-1} (batch, units) -> h_t.

        Built from ordinary ops, so `h.retain_grad()` on each step's output shows how the
        gradient changes as it flows back through time.  `state=None` starts from zeros.
        """
        if state is None:
            state = self.zero_state(x_t.shape[0], self.kernel.dtype)
        return self._act(x_t @ self.kernel + state @ self.recurrent_kernel + self.bias)


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter and Schmidhuber), gates in Keras' order i, f, c, o.

    i, f, o = sigmoid(...), c_t = f * c_{t-1} + i * act(x_t W_c + h_{t-1} U_c + b_c),
    h_t = o * act(c_t).  Weights as in Keras: kernel (features, 4 * units) and
    recurrent_kernel (units, 4 * units) with the gates side by side, bias (4 * units,)
    zero except the forget gate's, which starts at 1 so the cell remembers at first.

    Args:
        input_size: features per time step.
        units: size of the hidden and cell states.
        activation: of the candidate and the cell output (Keras' `activation`); the
            gates always use the sigmoid.
        return_sequences: output every hidden state, not only the last.
        return_state: also return the final states: forward gives (output, h, c).
    """

    gates = 4
    state_names = ("h", "c")

    def __init__(
        self,
        input_size: int,
        units: int,
        activation: Activation = "tanh",
        return_sequences: bool = False,
        return_state: bool = False,
    ) -> None:
        super().__init__(input_size, units, activation, return_sequences, return_state)
        self.bias.data[self.units : 2 * self.units] = 1.0

    def step(self, x_t: Any, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """One time step: x_t (batch, features) and (h, c) at t - 1 -> (h, c) at t."""
        if state is None:
            state = self.zero_state(x_t.shape[0], self.kernel.dtype)
        h, c = state
        u = self.units
        z = x_t @ self.kernel + h @ self.recurrent_kernel + self.bias  # (batch, 4 * units)
        i, f = F.sigmoid(z[:, :u]), F.sigmoid(z[:, u : 2 * u])
        candidate, o = self._act(z[:, 2 * u : 3 * u]), F.sigmoid(z[:, 3 * u :])
        c = f * c + i * candidate
        return o * self._act(c), c

    def _fused(self, x: Tensor, states: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        hc = recurrent_ops.lstm(
            x,
            states[0],
            states[1],
            self.kernel,
            self.recurrent_kernel,
            self.bias,
            self.activation,
            self.return_sequences,
        )
        output = hc[0]
        if self.return_sequences:
            return output, (output[:, -1], hc[1, :, -1])
        return output, (output, hc[1])


class GRU(_Recurrent):
    """Gated recurrent unit (Cho et al.), gates in Keras' order z, r, h, reset after the product.

    This is Keras' default form (reset_after=True), which PyTorch's GRU also uses:
    z, r = sigmoid(...), h~ = act(x_t W_h + b_h + r * (h_{t-1} U_h + b'_h)),
    h_t = z * h_{t-1} + (1 - z) * h~.  Weights as in Keras: kernel (features, 3 * units),
    recurrent_kernel (units, 3 * units), bias (2, 3 * units) zero: row 0 is the input
    bias, row 1 the recurrent one.

    Args:
        input_size: features per time step.
        units: size of the hidden state.
        activation: of the candidate h~; the gates always use the sigmoid.
        return_sequences: output every hidden state, not only the last.
        return_state: also return the final state: forward gives (output, h).
    """

    _fused_op = staticmethod(recurrent_ops.gru)

    gates = 3

    def _bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units)

    def step(self, x_t: Any, state: Tensor | None = None) -> Tensor:
        """One time step: x_t (batch, features) and h_{t-1} (batch, units) -> h_t."""
        if state is None:
            state = self.zero_state(x_t.shape[0], self.kernel.dtype)
        u = self.units
        a = x_t @ self.kernel + self.bias[0]  # input side, (batch, 3 * units)
        m = state @ self.recurrent_kernel + self.bias[1]  # recurrent side
        z = F.sigmoid(a[:, :u] + m[:, :u])
        r = F.sigmoid(a[:, u : 2 * u] + m[:, u : 2 * u])
        candidate = self._act(a[:, 2 * u :] + r * m[:, 2 * u :])
        return z * state + (1 - z) * candidate

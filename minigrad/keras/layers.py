"""Keras-style layers: each creates its weights the first time it learns its input's shape.

A layer here is a minigrad.nn Module wrapping the nn layer that does the work (Dense
wraps nn.Linear, SimpleRNN wraps nn.SimpleRNN, ...), created lazily in `build`.  Shapes
include the batch axis as None, as in Keras: `(None, look_back, n_features)`.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.tensor import DEFAULT_DTYPE, Tensor

Shape = tuple[int | None, ...]

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda z: z,
    "relu": F.relu,
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "gelu": F.gelu,
    "softmax": F.softmax,
}


def get_activation(
    activation: str | Callable[[Tensor], Tensor] | None,
) -> Callable[[Tensor], Tensor]:
    """The function a Keras activation argument names: None means linear."""
    if activation is None:
        return _ACTIVATIONS["linear"]
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation {activation!r} is unknown; expected one of {sorted(_ACTIVATIONS)}, "
                "None or a callable on Tensors"
            )
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"activation must be a name or a callable, got {type(activation).__name__}")
    return activation


def as_shape(shape: Any, name: str) -> Shape:
    """A tuple of positive ints (or None for any size), from an int or a sequence."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        result = tuple(None if n is None else int(n) for n in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}") from None
    if any(n is not None and n <= 0 for n in result):
        raise ValueError(f"{name} must hold positive sizes, got {shape!r}")
    return result


def _snake_case(name: str) -> str:
    """SimpleRNN -> simple_rnn, Dense -> dense, LSTM -> lstm."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Input:
    """The shape of one sample (no batch axis), to start a Sequential model with.

    `model.add(Input(shape=(look_back, n_features)))` does what `input_shape=` on the
    first layer does.
    """

    def __init__(self, shape: Sequence[int | None] | int, name: str | None = None) -> None:
        self.shape = as_shape(shape, "Input: shape")
        self.name = name

    def __repr__(self) -> str:
        return f"Input(shape={self.shape})"


class Layer(nn.Module):
    """Base of the Keras-style layers: a Module whose weights wait for the input shape.

    Subclasses set `axis_names` (how error messages name the input's axes) and define
    `_create(input_shape)`, `compute_output_shape(input_shape)` and `forward(x)`.

    Args:
        input_shape: the shape of one sample, without the batch axis; needed only on
            the first layer of a model, to build it before it sees data.
        name: the layer's name in its model (default: its type in snake_case).
    """

    axis_names: tuple[str, ...] = ()

    def __init__(
        self, input_shape: Sequence[int | None] | None = None, name: str | None = None
    ) -> None:
        super().__init__()
        self.name = name
        self.declared_input_shape = (
            None
            if input_shape is None
            else as_shape(input_shape, f"{type(self).__name__}: input_shape")
        )
        self.built = False
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None

    @property
    def default_name(self) -> str:
        """The layer's type in snake_case, which a model numbers to keep names unique."""
        return _snake_case(type(self).__name__)

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create the weights for inputs of `input_shape` (batch axis first, usually None)."""
        input_shape = tuple(input_shape)
        if self.axis_names and len(input_shape) != len(self.axis_names):
            raise ValueError(
                f"{type(self).__name__}: input shape {input_shape} has {len(input_shape)} axes, "
                f"expected {len(self.axis_names)}: ({', '.join(self.axis_names)})"
            )
        if input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__}: the last axis of input shape {input_shape} must be known"
            )
        self._create(input_shape)
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def _create(self, input_shape: Shape) -> None:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """The output's shape for inputs of `input_shape` (both with the batch axis)."""
        raise NotImplementedError

    def __call__(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x, dtype=DEFAULT_DTYPE))
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(x)

    def count_params(self) -> int:
        """How many numbers the layer's weights hold (0 before it is built)."""
        return self.num_parameters()

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras' layout and order."""
        return [p.data.copy() for p in self.parameters()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Overwrite the weights from arrays in `get_weights`' layout and order."""
        own = self.get_weights()
        if len(weights) != len(own):
            raise ValueError(
                f"{self.name}: set_weights got {len(weights)} arrays, expected {len(own)}"
            )
        for k, (value, current) in enumerate(zip(weights, own, strict=True)):
            if np.shape(value) != current.shape:
                raise ValueError(
                    f"{self.name}: weight {k} has shape {np.shape(value)}, expected {current.shape}"
                )
        self._assign([np.asarray(w) for w in weights])

    def _assign(self, weights: list[np.ndarray]) -> None:
        for p, value in zip(self.parameters(), weights, strict=True):
            p.data[...] = value


class Dense(Layer):
    """A fully connected layer: activation(x @ kernel + bias) on the last axis.

    Initialised as in Keras: Glorot-uniform kernel, zero bias.  The work is done by an
    nn.Linear, whose weight is the kernel transposed; `get_weights()` returns Keras'
    [kernel (features, units), bias (units,)].

    Args:
        units: output size.
        activation: None or 'linear', 'relu', 'tanh', 'sigmoid', 'softmax', 'gelu',
            or a callable on Tensors.
        use_bias: whether to add a bias.
        input_shape, name: as for every Layer.
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Tensor], Tensor] | None = None,
        use_bias: bool = True,
        input_shape: Sequence[int | None] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(input_shape, name)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units, self.use_bias = int(units), use_bias
        self.activation = activation
        self._activation = get_activation(activation)

    def _create(self, input_shape: Shape) -> None:
        self.linear = nn.Linear(input_shape[-1], self.units, bias=self.use_bias)
        init.xavier_uniform_(self.linear.weight)
        if self.linear.bias is not None:
            init.zeros_(self.linear.bias)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x: Tensor) -> Tensor:
        return self._activation(self.linear(x))

    def get_weights(self) -> list[np.ndarray]:
        if not self.built:
            return []
        weights = [self.linear.weight.data.T.copy()]
        if self.linear.bias is not None:
            weights.append(self.linear.bias.data.copy())
        return weights

    def _assign(self, weights: list[np.ndarray]) -> None:
        self.linear.weight.data[...] = weights[0].T
        if self.linear.bias is not None:
            self.linear.bias.data[...] = weights[1]

    def extra_repr(self) -> str:
        return f"{self.units}, activation={self.activation!r}"


class _Recurrent(Layer):
    """The Keras face of nn.SimpleRNN, nn.LSTM and nn.GRU: input (None, timesteps, features)."""

    axis_names = ("num_samples", "look_back", "n_features")
    module_class: type[nn.Module] = nn.SimpleRNN

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Tensor], Tensor] | None = "tanh",
        return_sequences: bool = False,
        input_shape: Sequence[int | None] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(input_shape, name)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f"{type(self).__name__}: units must be a positive integer, got {units!r}"
            )
        if self.declared_input_shape is not None and len(self.declared_input_shape) != 2:
            raise ValueError(
                f"{type(self).__name__}: input_shape must be (look_back, n_features), got "
                f"{self.declared_input_shape}"
            )
        # None means linear, as in Keras.
        self.units = int(units)
        self.activation = "linear" if activation is None else activation
        self.return_sequences = return_sequences

    def _create(self, input_shape: Shape) -> None:
        self.rnn = self.module_class(
            input_shape[-1], self.units, self.activation, self.return_sequences
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def forward(self, x: Tensor) -> Tensor:
        return self.rnn(x)

    def extra_repr(self) -> str:
        return (
            f"{self.units}, activation={self.activation!r}, "
            f"return_sequences={self.return_sequences}"
        )


class SimpleRNN(_Recurrent):
    """A fully connected recurrent layer: h_t = act(x_t kernel + h_{t-1} recurrent_kernel + bias).

    Input (batch, look_back, n_features); output the last state (batch, units), or every
    state (batch, look_back, units) with `return_sequences`.  Weights as in Keras:
    [kernel (n_features, units), recurrent_kernel (units, units), bias (units,)].

    Args:
        units: size of the hidden state.
        activation: 'tanh', 'relu', 'sigmoid', 'linear' (or None) or a callable on Tensors.
        return_sequences: output every hidden state, e.g. to stack another recurrent layer.
        input_shape: (look_back, n_features), on the first layer of a model.
        name: the layer's name in its model.
    """

    module_class = nn.SimpleRNN


class LSTM(_Recurrent):
    """A long short-term memory layer, with SimpleRNN's arguments; see nn.LSTM for the cell.

    Weights as in Keras: [kernel (n_features, 4 units), recurrent_kernel (units, 4 units),
    bias (4 units,)], gates in the order i, f, c, o.
    """

    module_class = nn.LSTM


class GRU(_Recurrent):
    """A gated recurrent unit layer, with SimpleRNN's arguments; see nn.GRU for the cell.

    Keras' default reset_after=True form: [kernel (n_features, 3 units),
    recurrent_kernel (units, 3 units), bias (2, 3 units)], gates in the order z, r, h.
    """

    module_class = nn.GRU

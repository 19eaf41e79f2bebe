"""Keras-named optimizers: recipes that become minigrad.optim optimizers once weights exist.

A Keras model's weights appear only when it learns its input shape, so `compile`
takes a recipe (`Adam(learning_rate=1e-3)`) and fit() builds the real optimizer over
the model's parameters.  The update rules are minigrad.optim's, which follow PyTorch;
`epsilon` is added where PyTorch adds it (outside the square root), a difference from
Keras that matters only when gradients are about as small as epsilon.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from minigrad import optim
from minigrad.tensor import Tensor


class Optimizer:
    """Base of the Keras-named optimizers; `build(params)` makes the minigrad.optim one.

    After building, `inner` is the minigrad.optim optimizer and `learning_rate` reads and
    sets its rate.
    """

    def __init__(self, learning_rate: float) -> None:
        if learning_rate < 0:
            raise ValueError(
                f"{type(self).__name__}: learning_rate must be >= 0, got {learning_rate}"
            )
        self._learning_rate = float(learning_rate)
        self.inner: optim.Optimizer | None = None

    def _create(self, params: list[Tensor]) -> optim.Optimizer:
        raise NotImplementedError

    def build(self, params: Sequence[Tensor]) -> optim.Optimizer:
        """Create the minigrad.optim optimizer over `params` and remember it as `inner`."""
        self.inner = self._create(list(params))
        return self.inner

    @property
    def learning_rate(self) -> float:
        if self.inner is not None:
            return self.inner.param_groups[0]["lr"]
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = float(value)
        if self.inner is not None:
            for group in self.inner.param_groups:
                group["lr"] = float(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"


class Adam(Optimizer):
    """Adam with Keras' argument names and defaults (learning_rate=0.001)."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _create(self, params: list[Tensor]) -> optim.Optimizer:
        return optim.Adam(
            params, lr=self._learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon
        )


class SGD(Optimizer):
    """Stochastic gradient descent with Keras' argument names and defaults (learning_rate=0.01)."""

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        super().__init__(learning_rate)
        self.momentum, self.nesterov = momentum, nesterov

    def _create(self, params: list[Tensor]) -> optim.Optimizer:
        return optim.SGD(
            params, lr=self._learning_rate, momentum=self.momentum, nesterov=self.nesterov
        )


class RMSprop(Optimizer):
    """RMSprop with Keras' argument names and defaults (learning_rate=0.001, rho=0.9)."""

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _create(self, params: list[Tensor]) -> optim.Optimizer:
        return optim.RMSprop(
            params,
            lr=self._learning_rate,
            alpha=self.rho,
            eps=self.epsilon,
            momentum=self.momentum,
            centered=self.centered,
        )


class _Built(Optimizer):
    """A minigrad.optim optimizer the user already made over the model's parameters."""

    def __init__(self, optimizer: optim.Optimizer) -> None:
        super().__init__(optimizer.param_groups[0]["lr"])
        self.given = optimizer

    def _create(self, params: list[Tensor]) -> optim.Optimizer:
        held = {id(p) for group in self.given.param_groups for p in group["params"]}
        missing = sum(id(p) not in held for p in params)
        if missing:
            raise ValueError(
                f"the {type(self.given).__name__} passed to compile() does not hold {missing} of "
                f"the model's {len(params)} parameter tensors; build it over model.parameters() "
                "after the model is built, or pass a factory such as "
                "lambda params: optim.Adam(params, lr=1e-3)"
            )
        return self.given


class _Factory(Optimizer):
    """A callable params -> minigrad.optim optimizer, e.g. `lambda p: optim.AdamW(p, lr=3e-4)`."""

    def __init__(self, factory: Callable[[list[Tensor]], optim.Optimizer]) -> None:
        super().__init__(0.0)
        self.factory = factory

    def _create(self, params: list[Tensor]) -> optim.Optimizer:
        built = self.factory(params)
        if not isinstance(built, optim.Optimizer):
            raise TypeError(
                f"the optimizer factory passed to compile() returned {type(built).__name__}, "
                "expected a minigrad.optim optimizer"
            )
        return built


_BY_NAME: dict[str, type[Optimizer]] = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop}


def get(identifier: Any) -> Optimizer:
    """The optimizer a compile() argument names.

    Args:
        identifier: 'adam', 'sgd' or 'rmsprop' (Keras' default rates); an Optimizer from
            this module; a minigrad.optim optimizer already over the model's parameters;
            or a callable that makes one from a list of parameters (a minigrad.optim class
            such as `optim.AdamW`, or a lambda setting its arguments).
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(
                f"optimizer {identifier!r} is unknown; expected one of {sorted(_BY_NAME)}, a "
                "minigrad.keras.optimizers object or a minigrad.optim optimizer"
            )
        return _BY_NAME[key]()
    if isinstance(identifier, optim.Optimizer):
        return _Built(identifier)
    if callable(identifier):
        return _Factory(identifier)
    raise TypeError(
        f"optimizer must be a name, an optimizer or a factory, got {type(identifier).__name__}"
    )

"""User-defined differentiable ops: a forward and a backward on NumPy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.tensor import Tensor


class Context:
    """What `forward` leaves for `backward`: saved arrays, and any attribute you set."""

    def __init__(self) -> None:
        self.saved_arrays: tuple[np.ndarray, ...] = ()

    def save_for_backward(self, *arrays: np.ndarray) -> None:
        self.saved_arrays = arrays


class Function:
    """Subclass with two static methods to make a new op, then call `YourOp.apply(...)`.

    `forward(ctx, *args)` receives the arrays of Tensor arguments (other
    arguments as given) and returns an array.  `backward(ctx, grad)` receives
    the gradient of the output and returns one gradient per argument of
    forward (None for those that need none), each broadcastable to its
    argument's shape.

    NOTE: backward works on arrays, so second derivatives
    (`create_graph=True`) cannot pass through a Function; they raise.
    """

    @staticmethod
    def forward(ctx: Context, *args: Any) -> np.ndarray:
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> Any:
        raise NotImplementedError("a Function subclass must define backward(ctx, grad)")

    @classmethod
    def apply(cls, *args: Any) -> Tensor:
        """Run forward on the arguments and record backward in the graph."""
        ctx = Context()
        values = [a.data if isinstance(a, Tensor) else a for a in args]
        out = np.asarray(cls.forward(ctx, *values))
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

        def backward(g: np.ndarray) -> list[np.ndarray | None]:
            grads = cls.backward(ctx, g)
            grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
            if len(grads) != len(args):
                raise ValueError(
                    f"{cls.__name__}.backward returned {len(grads)} gradients, expected "
                    f"{len(args)}: one per argument of forward"
                )
            return [None if grads[i] is None else np.asarray(grads[i]) for i in positions]

        if out.dtype.kind in "biu":  # integer or boolean results have no gradient
            return Tensor(out)
        return Tensor._from_op(out, [args[i] for i in positions], backward, cls.__name__)

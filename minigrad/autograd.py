"""The graph walk: reverse-mode differentiation without recursion.

Every Tensor produced by a differentiable op remembers its parents and a
`backward` closure.  The closure maps the gradient of the output to one
gradient per parent, *in the shape the op produced it*.  Summing a broadcast
gradient back to the parent's shape happens here, once, for every edge, so
no rule has to think about broadcasting.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np

if TYPE_CHECKING:
    from minigrad.tensor import Tensor

_grad_enabled = True

F = TypeVar("F", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """Return True when new ops record the graph needed for backward."""
    return _grad_enabled


class _GradMode:
    """Context manager and decorator that sets whether ops record the graph.

    Works as `with no_grad():`, as `@no_grad()` and as a bare `@no_grad`.
    """

    enabled = True

    def __new__(cls, fn: Any = None) -> Any:
        mode = super().__new__(cls)
        return mode(fn) if callable(fn) else mode

    def __init__(self, fn: Any = None) -> None:
        pass

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Disable graph recording, as a context manager or a decorator.

    Inside, ops compute values only: results have no parents and
    `requires_grad=False`, which saves the memory backward would need.
    """

    enabled = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a `no_grad` region."""

    enabled = True


def sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes broadcasting added or stretched to reach it from `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from `root` that need a gradient, parents before children."""
    order: list[Tensor] = []
    visited: set[int] = {id(root)}
    stack: list[tuple[Tensor, int]] = [(root, 0)]
    while stack:
        node, next_parent = stack.pop()
        parents = node._parents
        while next_parent < len(parents):
            parent = parents[next_parent]
            next_parent += 1
            if parent is not None and parent.requires_grad and id(parent) not in visited:
                visited.add(id(parent))
                stack.append((node, next_parent))
                stack.append((parent, 0))
                break
        else:
            order.append(node)
    return order


def run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Propagate `grad` from `root` to every leaf that requires a gradient.

    Leaves accumulate into `.grad` (so a second backward adds to the first);
    intermediate gradients live only in this walk.  Unless `retain_graph`,
    each node drops its parents and closure once used, freeing the graph.
    """
    order = _topological_order(root)
    pending: dict[int, np.ndarray] = {id(root): grad}
    owned: set[int] = set()  # gradients this walk allocated and may add into in place
    for node in reversed(order):
        node_grad = pending.pop(id(node), None)
        if node_grad is None:
            continue
        if node._backward is None:
            if node._freed:
                raise RuntimeError(
                    "backward through a graph that was already freed; "
                    "call backward(retain_graph=True) the first time to walk it twice"
                )
            node._accumulate(node_grad)
            continue
        if node._retains_grad:
            node._accumulate(node_grad)
        parent_grads = node._backward(node_grad)
        for parent, parent_grad in zip(node._parents, parent_grads, strict=True):
            if parent is None or parent_grad is None or not parent.requires_grad:
                continue
            parent_grad = sum_to_shape(parent_grad, parent.shape)
            if parent_grad.dtype != parent.dtype:
                parent_grad = parent_grad.astype(parent.dtype)
            key = id(parent)
            if key not in pending:
                pending[key] = parent_grad
            elif key in owned:
                pending[key] += parent_grad
            else:
                pending[key] = pending[key] + parent_grad
                owned.add(key)
        if not retain_graph:
            node._backward = None
            node._parents = ()
            node._freed = True

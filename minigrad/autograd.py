"""The graph walk: reverse-mode differentiation without recursion.

Every Tensor produced by a differentiable op remembers its parents and a
`backward` closure.  The closure maps the gradient of the output to one
gradient per parent, *in the shape the op produced it*.  Summing a broadcast
gradient back to the parent's shape happens here, once, for every edge, so
no rule has to think about broadcasting.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

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


def no_op() -> contextlib.AbstractContextManager:
    """A context manager that changes nothing."""
    return contextlib.nullcontext()


def seed_gradient(output: Tensor, grad: Any, create_graph: bool) -> Any:
    """The gradient a walk starts from: `grad`, or ones for a one-element output."""
    from minigrad.tensor import Tensor, as_array

    if grad is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a one-element tensor, got shape "
                f"{output.shape}; pass grad= of that shape"
            )
        array = np.ones_like(output.data)
    elif isinstance(grad, Tensor) and create_graph:
        array = grad
    else:
        array = as_array(grad, dtype=output.dtype)
    if array.shape != output.shape:
        raise ValueError(
            f"backward(grad=...) has shape {array.shape}, expected the tensor's shape "
            f"{output.shape}"
        )
    if create_graph and not isinstance(array, Tensor):
        array = Tensor(array)
    return array


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of `outputs` with respect to `inputs`, returned rather than accumulated.

    Args:
        outputs: a Tensor or a sequence of them; their gradients are summed.
        inputs: the Tensors to differentiate with respect to (each must require grad).
        grad_outputs: one gradient per output (default: ones, for one-element outputs).
        create_graph: return gradients that carry their own graph, so they can be
            differentiated again (Hessian-vector products, gradient penalties).
        retain_graph: keep the graph of `outputs` for another walk (default: create_graph).
        allow_unused: give None for an input the outputs do not depend on, instead of
            raising.

    Returns:
        One Tensor (or None) per input, in order; `.grad` fields are left untouched.
    """
    from minigrad.tensor import Tensor

    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor) or hasattr(grad_outputs, "shape"):
        grad_outputs = [grad_outputs] * len(outputs) if len(outputs) == 1 else grad_outputs
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for position, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"grad: inputs[{position}] does not require grad")
    for position, y in enumerate(outputs):
        if not y.requires_grad:
            raise RuntimeError(f"grad: outputs[{position}] does not depend on any input")
    retain = create_graph if retain_graph is None else retain_graph
    capture: dict[int, Any] = {id(x): None for x in inputs}
    with enable_grad() if create_graph else no_op():
        for position, (y, g) in enumerate(zip(outputs, grad_outputs, strict=True)):
            seed = seed_gradient(y, g, create_graph)
            partial: dict[int, Any] = dict.fromkeys(capture)
            # Outputs may share a graph: only the last walk may free it.
            keep = retain or position < len(outputs) - 1
            run_backward(y, seed, keep, create_graph, capture=partial)
            for key, value in partial.items():
                if value is not None:
                    capture[key] = value if capture[key] is None else capture[key] + value
    results: list[Tensor | None] = []
    for position, x in enumerate(inputs):
        value = capture[id(x)]
        if value is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: inputs[{position}] is not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
            results.append(None)
        else:
            results.append(value if isinstance(value, Tensor) else Tensor(value))
    return tuple(results)


def sum_to_shape(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum `grad` over the axes broadcasting added or stretched to reach it from `shape`.

    Works alike on ndarrays and on Tensors (whose sums are differentiable).
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:  # fewer axes than the input: not a broadcast of it; the caller reports
        return grad
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class IndexedGrad:
    """A gradient that is zero but at `index`, where it is `values`: indexing's backward.

    The graph walk adds `values` into the parent's gradient where they
    belong instead of first spreading them over a dense array of zeros, so
    taking several slices of one tensor (queries, keys and values out of one
    projection) builds one dense gradient rather than one per slice plus sums.
    `once` says that no element is indexed twice (no integer arrays in the index).
    """

    __slots__ = ("index", "values", "once")

    def __init__(self, index: Any, values: np.ndarray, once: bool) -> None:
        self.index, self.values, self.once = index, values, once


def _add_indexed(
    pending: dict[int, Any], owned: set[int], parent: Tensor, part: IndexedGrad
) -> None:
    """Add an IndexedGrad into the gradient pending for `parent`."""
    key = id(parent)
    dense = pending.get(key)
    if dense is None:
        dense = np.zeros(parent.shape, dtype=parent.dtype)
        if part.once:
            dense[part.index] = part.values
            pending[key] = dense
            owned.add(key)
            return
    elif key not in owned:
        # A copy, never the op's own result; np.array, as a 0-d result may be a NumPy scalar.
        dense = np.array(dense, dtype=parent.dtype, copy=True)
    if part.once:
        dense[part.index] += part.values
    else:
        np.add.at(dense, part.index, part.values)  # repeated indices accumulate
    pending[key] = dense
    owned.add(key)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from `root` that need a gradient, inputs before the ops using them.

    Tensors are numbered as they are created and an op's inputs always exist
    before its output, so creation order is a topological order.
    """
    nodes = [root]
    seen = {id(root)}
    stack = [root]
    while stack:
        for parent in stack.pop()._parents:
            if parent is not None and parent.requires_grad and id(parent) not in seen:
                seen.add(id(parent))
                nodes.append(parent)
                stack.append(parent)
    nodes.sort(key=_creation_number)
    return nodes


def _creation_number(tensor: Tensor) -> int:
    return tensor._seq


# Arrays changed in place, by the array owning their memory: id -> (weak reference to
# it, creation number at the change).  A view or a detached tensor shares its owner, so
# a change made through any of them is seen.  `_latest_change` is the newest number.
_changed: dict[int, tuple[weakref.ref, int]] = {}
_latest_change = -1


def _owner(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def mark_changed(array: Any, number: int) -> None:
    """Record that `array` (and every view of its memory) changed at creation `number`."""
    global _latest_change
    if not isinstance(array, np.ndarray):  # a NumPy scalar cannot change
        return
    owner = _owner(array)
    key = id(owner)
    entry = _changed.get(key)
    ref = entry[0] if entry is not None and entry[0]() is owner else None
    if ref is None:

        def forget(dead: weakref.ref, key: int = key) -> None:
            if _changed.get(key, (None,))[0] is dead:
                del _changed[key]

        ref = weakref.ref(owner, forget)
    _changed[key] = (ref, number)
    _latest_change = number


def _changed_at(array: Any) -> int:
    if not isinstance(array, np.ndarray):
        return -1
    owner = _owner(array)
    entry = _changed.get(id(owner))
    return entry[1] if entry is not None and entry[0]() is owner else -1


def _check_unchanged(node: Tensor) -> None:
    """Raise if `node` or an input of it changed in place after `node` was computed.

    Its backward rule may read those values, and would then give a wrong
    gradient; PyTorch raises here too.
    """
    seq = node._seq
    for tensor in (node, *node._parents):
        if tensor is not None and _changed_at(tensor.data) > seq:
            raise RuntimeError(
                f"backward: {'the result' if tensor is node else 'an input'} of "
                f"{node._op!r} (shape {tensor.shape}) changed in place after the op ran, "
                "by `-=`, `+=`, `*=`, `/=` (perhaps through a view or a detached copy) "
                "or an optimizer step, so its gradient would be wrong; call backward "
                "before the change, or compute the graph again"
            )


def run_backward(
    root: Tensor,
    grad: Any,
    retain_graph: bool = False,
    create_graph: bool = False,
    capture: dict[int, Any] | None = None,
) -> None:
    """Propagate `grad` from `root` to every leaf that requires a gradient.

    Leaves accumulate into `.grad` (so a second backward adds to the first);
    intermediate gradients live only in this walk.  Unless `retain_graph`,
    each node drops its parents and closures once used, freeing the graph.

    Args:
        grad: the gradient of `root`, an ndarray; a Tensor with `create_graph`.
        create_graph: run each node's differentiable rule, so the gradients are
            Tensors with graphs of their own (for second derivatives).
        capture: if given, maps id(tensor) -> None for the tensors whose
            gradients are wanted; the walk fills it in and leaves `.grad` alone.
    """
    order = _topological_order(root)
    # Only an op older than the latest in-place change can be stale; usually none is.
    latest = _latest_change
    check_changes = latest >= 0 and any(n._seq < latest for n in order if n._backward)
    pending: dict[int, Any] = {id(root): grad}
    owned: set[int] = set()  # gradient arrays this walk allocated and may add into in place
    for node in reversed(order):
        node_grad = pending.pop(id(node), None)
        if node_grad is None:
            continue
        if capture is not None and id(node) in capture:
            capture[id(node)] = node_grad
        if node._backward is None:
            if node._freed:
                raise RuntimeError(
                    "backward through a graph that was already freed; "
                    "call backward(retain_graph=True) the first time to walk it twice"
                )
            if capture is None:
                node._accumulate(node_grad)
            continue
        if node._retains_grad and capture is None:
            node._accumulate(node_grad)
        if check_changes:
            _check_unchanged(node)
        if create_graph:
            if node._graph_backward is None:
                raise NotImplementedError(
                    f"create_graph: the op {node._op!r} has no differentiable backward rule, "
                    "so second derivatives cannot pass through it"
                )
            parent_grads = node._graph_backward(node_grad)
        else:
            parent_grads = node._backward(node_grad)
        for parent, parent_grad in zip(node._parents, parent_grads, strict=True):
            if parent is None or parent_grad is None or not parent.requires_grad:
                continue
            if type(parent_grad) is IndexedGrad:
                _add_indexed(pending, owned, parent, parent_grad)
                continue
            data = parent.data
            if parent_grad.shape != data.shape:
                parent_grad = sum_to_shape(parent_grad, data.shape)
                if parent_grad.shape != data.shape:
                    raise RuntimeError(
                        f"the backward of {node._op!r} gave a gradient of shape "
                        f"{tuple(parent_grad.shape)} for an input of shape {data.shape}; "
                        "expected the input's shape"
                    )
            if parent_grad.dtype != data.dtype:
                parent_grad = parent_grad.astype(data.dtype)
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
            node._graph_backward = None
            node._parents = ()
            node._freed = True

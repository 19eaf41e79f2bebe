"""Tensor: a NumPy array that remembers how it was computed."""

from __future__ import annotations

import itertools
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from minigrad import autograd

Axis = int | tuple[int, ...] | None
BackwardFn = Callable[[np.ndarray], Sequence[np.ndarray | None]]

DEFAULT_DTYPE = np.float32

# Every tensor takes the next number at creation.  An op's inputs exist before its
# output, so walking nodes from the highest number down visits each node before
# its inputs: the graph walk sorts by it instead of searching depth first.
_creation_order = itertools.count()


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Turn `data` into an ndarray; Python floats and lists of them become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    array = np.asarray(data)
    if array.dtype == np.float64 and not isinstance(data, np.floating):
        array = array.astype(DEFAULT_DTYPE)
    return array


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    Args:
        data: anything `np.asarray` accepts.  Python floats become float32;
            NumPy arrays keep their dtype (so float64 stays float64) and
            integer arrays stay integer, for use as indices.
        requires_grad: whether `backward` should fill `.grad` for this tensor.
        dtype: optional dtype to convert `data` to.
    """

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        self.data: np.ndarray = as_array(data, dtype)
        if self.data.dtype.kind not in "biufc":
            raise TypeError(
                f"Tensor: data must be numbers or booleans, got dtype {self.data.dtype} "
                f"from {type(data).__name__}"
            )
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"requires_grad=True needs a floating dtype, got {self.data.dtype}")
        self.requires_grad = requires_grad
        # An ndarray after backward(); a Tensor after backward(create_graph=True).
        self.grad: Any = None
        self._parents: tuple[Tensor | None, ...] = ()
        self._backward: BackwardFn | None = None
        self._graph_backward: Callable[[Tensor], Sequence[Tensor | None]] | None = None
        self._op = ""
        self._freed = False
        self._retains_grad = False
        self._seq = next(_creation_order)

    @classmethod
    def _constant(cls, data: np.ndarray) -> Tensor:
        """A tensor of `data` that needs no gradient: Tensor(data) without its checks."""
        out = cls.__new__(cls)
        out.data = data
        out.requires_grad = False
        out.grad = None
        out._parents = ()
        out._backward = None
        out._graph_backward = None
        out._op = ""
        out._freed = False
        out._retains_grad = False
        out._seq = next(_creation_order)
        return out

    @classmethod
    def _from_op(
        cls,
        data: np.ndarray,
        parents: Sequence[Tensor | None],
        backward: BackwardFn,
        op: str,
        graph_backward: Callable[[Tensor], Sequence[Tensor | None]] | None = None,
    ) -> Tensor:
        """Wrap an op's result, recording the graph only when a gradient can flow.

        Args:
            backward: maps the output's gradient (an ndarray) to one gradient
                per parent, as ndarrays or None.
            graph_backward: the same rule written with Tensor ops, so that it is
                itself differentiable; used by backward(create_graph=True).
        """
        out = cls.__new__(cls)
        # NumPy returns scalars, not 0-d arrays, from arithmetic on 0-d arrays.
        out.data = data if type(data) is np.ndarray else np.asarray(data)
        out.grad = None
        out._op = op
        out._freed = False
        out._retains_grad = False
        out._seq = next(_creation_order)
        if autograd._grad_enabled:
            for parent in parents:  # a plain loop: this runs for every op, keep it lean
                if parent is not None and parent.requires_grad:
                    out.requires_grad = True
                    out._parents = tuple(parents)
                    out._backward = backward
                    out._graph_backward = graph_backward
                    return out
        out.requires_grad = False
        out._parents = ()
        out._backward = None
        out._graph_backward = None
        return out

    # ---- array facts -------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by an op."""
        return self._backward is None and not self._freed

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Any:
        """The tensors along the first axis, as in PyTorch; a 0-d tensor is not iterable."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor; use .item() for its value")
        return (self[i] for i in range(len(self.data)))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The data, for NumPy functions (np.asarray(t), np.exp(t)), which record no graph.

        Refused, as in PyTorch, for a tensor that requires grad: np.exp(w) would
        silently leave the graph, where w.exp() stays in it.
        """
        if self.requires_grad:
            raise TypeError(
                "NumPy cannot take a tensor that requires grad: its result would have no "
                "gradient; use the tensor's own ops (t.exp(), not np.exp(t)), or t.numpy() "
                "or t.detach() for the values alone"
            )
        if dtype is not None and np.dtype(dtype) != self.dtype:
            if copy is False:
                raise ValueError(f"converting {self.dtype} to {np.dtype(dtype)} needs a copy")
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __format__(self, spec: str) -> str:
        """Format a one-element tensor as its number (f"{loss:.4f}"); without a spec, repr."""
        if not spec:
            return repr(self)
        if self.data.size != 1:
            raise TypeError(
                f"format spec {spec!r} needs a one-element tensor, got shape {self.shape}; "
                "format t.item() or t.tolist()"
            )
        return format(self.item(), spec)

    def __bool__(self) -> bool:
        """The truth of a one-element tensor; more elements are ambiguous, as in NumPy."""
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() on .numpy(), or .all()"
            )
        return bool(self.data.item())

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._op}" if self._op else ""
        return f"Tensor({self.data!r}{grad}{op})"

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def numel(self) -> int:
        """The number of elements (PyTorch's name for NumPy's `size`)."""
        return self.data.size

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph: its gradient flows back unchanged."""
        from minigrad.ops import elementwise

        return elementwise.cast(self, self.dtype)

    def detach(self) -> Tensor:
        """A tensor sharing this data but cut off from the graph."""
        return Tensor(self.data)

    def astype(self, dtype: Any) -> Tensor:
        """A copy converted to `dtype`; gradients flow back converted to this dtype."""
        from minigrad.ops import elementwise

        return elementwise.cast(self, dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def long(self) -> Tensor:
        """int64, as for indices; like every integer cast, it ends the graph."""
        return self.astype(np.int64)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set `requires_grad` in place and return self."""
        if requires_grad and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"requires_grad=True needs a floating dtype, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def _mark_changed(self) -> None:
        """Record that the data changed in place: graphs built on the old values go stale."""
        autograd.mark_changed(self.data, next(_creation_order))

    def retain_grad(self) -> None:
        """Keep this intermediate tensor's gradient in `.grad` after backward."""
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    # ---- differentiation ---------------------------------------------------------

    def backward(
        self, grad: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires it.

        Args:
            grad: the gradient of some scalar with respect to this tensor;
                may be omitted only when this tensor has one element.
            retain_graph: keep the graph so backward can run through it again
                (defaults to `create_graph`).
            create_graph: build the graph of the gradient itself, so that `.grad`
                is a Tensor that can enter a further loss (a second derivative).
                Without it `.grad` is a plain ndarray.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True, or it ran under no_grad()"
            )
        seed = autograd.seed_gradient(self, grad, create_graph)
        retain = create_graph if retain_graph is None else retain_graph
        with autograd.enable_grad() if create_graph else autograd.no_op():
            autograd.run_backward(self, seed, retain_graph=retain, create_graph=create_graph)

    def graph(self, name: str = "minigrad") -> str:
        """The graph that computed this tensor, as Graphviz DOT text (see minigrad.graph)."""
        from minigrad.graph import to_dot

        return to_dot(self, name)

    def _accumulate(self, grad: Any) -> None:
        if isinstance(grad, Tensor):  # create_graph: keep the gradient's own graph
            self.grad = grad if self.grad is None else grad + self.grad
        elif self.grad is None:
            self.grad = np.array(grad, dtype=self.dtype, copy=True)
        elif isinstance(self.grad, Tensor):
            self.grad = self.grad + Tensor(grad)
        else:
            self.grad += grad

    # ---- operators ---------------------------------------------------------------

    def __add__(self, other: Any) -> Tensor:
        return elementwise.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return elementwise.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return elementwise.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return elementwise.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return elementwise.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return elementwise.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return elementwise.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return elementwise.div(other, self)

    def __pow__(self, exponent: Any) -> Tensor:
        return elementwise.pow(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return elementwise.pow(base, self)

    def __neg__(self) -> Tensor:
        return elementwise.neg(self)

    def __abs__(self) -> Tensor:
        return elementwise.abs(self)

    def __matmul__(self, other: Any) -> Tensor:
        return linalg.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return linalg.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return shape_ops.getitem(self, index)

    # In-place arithmetic, as in PyTorch's `with torch.no_grad(): p -= lr * p.grad`.
    def __iadd__(self, other: Any) -> Tensor:
        return self._in_place(np.add, other, "+=", self.__add__)

    def __isub__(self, other: Any) -> Tensor:
        return self._in_place(np.subtract, other, "-=", self.__sub__)

    def __imul__(self, other: Any) -> Tensor:
        return self._in_place(np.multiply, other, "*=", self.__mul__)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._in_place(np.true_divide, other, "/=", self.__truediv__)

    def _in_place(
        self, ufunc: np.ufunc, other: Any, symbol: str, op: Callable[[Any], Tensor]
    ) -> Tensor:
        """Write `self <symbol> other` into this tensor's array, which every view of it shares.

        While gradients are recorded, a tensor that requires them cannot change
        under the graph: a leaf raises, as in PyTorch, and an op's result is
        recomputed out of place, so `h += x` inside a model rebinds `h` to
        `h + x` with its gradient. Under `no_grad()`, or when nothing requires
        a gradient, the array itself changes and the tensor stays the same object;
        a graph that used the old values then refuses to run backward.
        """
        records = autograd._grad_enabled and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        )
        if records and self.requires_grad and self.is_leaf:
            raise RuntimeError(
                f"`{symbol}` on a leaf tensor that requires grad would change the values "
                "its gradient is taken at; update it under minigrad.no_grad(), as an "
                f"optimizer step does, or write `x = x {symbol[0]} y` for a new tensor"
            )
        if records:
            return op(other)
        value = as_array(other)
        try:
            ufunc(self.data, value, out=self.data, casting="same_kind")
            self._mark_changed()
        except (TypeError, ValueError) as error:  # NumPy's casting, shape, read-only errors
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(
                f"`{symbol}` in place: the tensor is {self.dtype} of shape {self.shape} and "
                f"stays so; got {value.dtype} of shape {value.shape}, which must broadcast "
                f"to it and convert without changing kind ({error})"
            ) from None
        return self

    # Comparisons compute masks: plain boolean tensors with no gradient.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < as_array(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= as_array(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > as_array(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= as_array(other))

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        if other is None:  # `t == None` is False, as in PyTorch
            return NotImplemented
        return Tensor(self.data == as_array(other))

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        if other is None:
            return NotImplemented
        return Tensor(self.data != as_array(other))

    def eq(self, other: Any) -> Tensor:
        """Elementwise equality as a boolean tensor, the same as `==`."""
        return self == other

    def ne(self, other: Any) -> Tensor:
        """Elementwise inequality as a boolean tensor, the same as `!=`."""
        return self != other

    # `==` compares elements, so hashing stays by identity, as for PyTorch tensors:
    # a tensor is a dict key or set member as itself (optimizer state, seen sets).
    __hash__ = object.__hash__

    # ---- elementwise -------------------------------------------------------------

    def exp(self) -> Tensor:
        return elementwise.exp(self)

    def log(self) -> Tensor:
        return elementwise.log(self)

    def sqrt(self) -> Tensor:
        return elementwise.sqrt(self)

    def tanh(self) -> Tensor:
        return elementwise.tanh(self)

    def sigmoid(self) -> Tensor:
        return elementwise.sigmoid(self)

    def relu(self) -> Tensor:
        return elementwise.relu(self)

    def gelu(self, approximate: str = "none") -> Tensor:
        return elementwise.gelu(self, approximate)

    def abs(self) -> Tensor:
        return elementwise.abs(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        return elementwise.clip(self, min, max)

    clamp = clip

    def maximum(self, other: Any) -> Tensor:
        return elementwise.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return elementwise.minimum(self, other)

    # ---- reductions --------------------------------------------------------------

    # Reductions take NumPy's `axis`/`keepdims` or PyTorch's `dim`/`keepdim`.
    def sum(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        axis, keepdims = _torch_names("sum", axis, keepdims, torch_names)
        return reduce.sum(self, axis, keepdims)

    def mean(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        axis, keepdims = _torch_names("mean", axis, keepdims, torch_names)
        return reduce.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False, **torch_names: Any) -> Any:
        """The largest values over `axis` (tied elements share the gradient).

        As in PyTorch, `max(dim=d)` returns (values, indices) with the gradient
        going to those indices only, and `max(other)` is the elementwise maximum.
        """
        return self._extremum("max", reduce.max, np.argmax, axis, keepdims, torch_names)

    def min(self, axis: Any = None, keepdims: bool = False, **torch_names: Any) -> Any:
        """The smallest values over `axis`; `dim=` and a tensor argument as for `max`."""
        return self._extremum("min", reduce.min, np.argmin, axis, keepdims, torch_names)

    def _extremum(
        self, name: str, pick: Any, locate: Any, axis: Any, keepdims: bool, torch_names: Any
    ) -> Any:
        if isinstance(axis, (Tensor, np.ndarray)):  # torch.max(input, other)
            return self.maximum(axis) if name == "max" else self.minimum(axis)
        as_torch = torch_names.get("dim") is not None
        axis, keepdims = _torch_names(name, axis, keepdims, torch_names)
        if not as_torch:
            return pick(self, axis, keepdims)
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{name}(dim=...) takes one dimension, got {axis!r}")
        indices = locate(self.data, axis=axis, keepdims=True)
        values = self.gather(axis, indices)  # the gradient goes to the index returned
        if not keepdims:
            values, indices = values.squeeze(axis), np.squeeze(indices, axis=axis)
        return MinMax(values, Tensor(indices))

    def argmax(self, axis: int | None = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        """Indices of the largest values (of the flattened tensor without `axis`); no gradient."""
        axis, keepdims = _torch_names("argmax", axis, keepdims, torch_names)
        return Tensor(np.argmax(self.data, axis=axis, keepdims=keepdims))

    def argmin(self, axis: int | None = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        """Indices of the smallest values (of the flattened tensor without `axis`); no gradient."""
        axis, keepdims = _torch_names("argmin", axis, keepdims, torch_names)
        return Tensor(np.argmin(self.data, axis=axis, keepdims=keepdims))

    def var(
        self, axis: Axis = None, keepdims: bool = False, correction: int = 1, **torch_names: Any
    ) -> Tensor:
        axis, keepdims = _torch_names("var", axis, keepdims, torch_names)
        return reduce.var(self, axis, keepdims, correction)

    def logsumexp(self, axis: Axis = None, keepdims: bool = False, **torch_names: Any) -> Tensor:
        axis, keepdims = _torch_names("logsumexp", axis, keepdims, torch_names)
        return reduce.logsumexp(self, axis, keepdims)

    def softmax(self, axis: int = -1, **torch_names: Any) -> Tensor:
        axis, _ = _torch_names("softmax", axis, False, torch_names, axis_default=-1)
        return nn_ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1, **torch_names: Any) -> Tensor:
        axis, _ = _torch_names("log_softmax", axis, False, torch_names, axis_default=-1)
        return nn_ops.log_softmax(self, axis)

    # ---- shape -------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        return shape_ops.reshape(self, _shape_args(shape))

    view = reshape

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two axes (PyTorch's meaning; see `permute` for a full reordering)."""
        return shape_ops.swapaxes(self, dim0, dim1)

    swapaxes = transpose

    def permute(self, *dims: Any) -> Tensor:
        return shape_ops.permute(self, _shape_args(dims))

    @property
    def T(self) -> Tensor:
        """All axes reversed."""
        return shape_ops.permute(self, tuple(reversed(range(self.ndim))))

    def squeeze(self, axis: Axis = None) -> Tensor:
        return shape_ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        return shape_ops.unsqueeze(self, axis)

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to `shape`; -1 keeps an axis's size."""
        target = _shape_args(shape)
        offset = len(target) - self.ndim
        resolved = tuple(
            self.shape[i - offset] if n == -1 and i >= offset else n for i, n in enumerate(target)
        )
        return shape_ops.broadcast_to(self, resolved)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return shape_ops.broadcast_to(self, tuple(shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return shape_ops.flatten(self, start_dim, end_dim)

    def gather(self, axis: int, index: Any) -> Tensor:
        return shape_ops.gather(self, axis, index)

    def split(self, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
        return shape_ops.split(self, split_size_or_sections, axis)

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        return shape_ops.masked_fill(self, mask, value)


class MinMax(NamedTuple):
    """What `max(dim=...)` and `min(dim=...)` return, as in PyTorch."""

    values: Tensor
    indices: Tensor


def _torch_names(
    name: str, axis: Any, keepdims: bool, torch_names: dict[str, Any], axis_default: Any = None
) -> tuple[Any, bool]:
    """Resolve PyTorch's `dim` and `keepdim` into NumPy's `axis` and `keepdims`."""
    unknown = sorted(set(torch_names) - {"dim", "keepdim"})
    if unknown:
        raise TypeError(f"{name}() got unexpected keyword arguments {unknown}")
    dim = torch_names.get("dim")
    if dim is not None:
        if axis is not None and axis != axis_default:
            raise TypeError(f"{name}(): give axis or dim, not both")
        axis = tuple(dim) if isinstance(dim, list) else dim
    keepdim = torch_names.get("keepdim")
    return axis, keepdims if keepdim is None else bool(keepdim)


def _shape_args(args: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept both `t.reshape(2, 3)` and `t.reshape((2, 3))`."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Create a Tensor (the same as calling `Tensor`)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape: Any, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_args(shape), dtype=dtype), requires_grad=requires_grad)


def arange(*args: Any, dtype: Any = None) -> Tensor:
    """Evenly spaced values, as np.arange; int64 for whole-number arguments, else float32."""
    if dtype is None:
        whole = all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args)
        dtype = np.int64 if whole else DEFAULT_DTYPE
    return Tensor(np.arange(*args, dtype=dtype))


# The ops import Tensor, so they are imported after it is defined.
from minigrad.ops import elementwise, linalg, reduce  # noqa: E402
from minigrad.ops import nn as nn_ops  # noqa: E402
from minigrad.ops import shape as shape_ops  # noqa: E402

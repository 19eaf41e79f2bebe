"""Module and Parameter: the containers every layer is built from."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from minigrad.tensor import Tensor, as_array


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad by default)."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(
            data.data if isinstance(data, Tensor) else as_array(data), requires_grad=requires_grad
        )

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of layers and models, with PyTorch's registration rules.

    Assigning a Parameter or a Module to an attribute registers it, so
    `parameters()`, `state_dict()`, `train()` and `eval()` reach it.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__(); call super().__init__() first"
            )
        # Assigning over a registered name keeps its place in the registration order.
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- walking the tree ----------------------------------------------------------

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every module below it, each once, with dotted names."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child}" if name else child, m) for child, m in module._modules.items()
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Every parameter with its dotted name; a shared (tied) one is listed once."""
        seen: set[int] = set()
        for module_name, module in self._named_modules_all(prefix):
            for name, p in module._parameters.items():
                if remove_duplicate:
                    if id(p) in seen:
                        continue
                    seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def _named_modules_all(self, prefix: str) -> Iterator[tuple[str, Module]]:
        """Like named_modules but visiting a shared module under each of its names."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [
                (f"{name}.{child}" if name else child, m) for child, m in module._modules.items()
            ]
            stack.extend(reversed(children))

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def num_parameters(self) -> int:
        """How many trainable numbers the module holds (shared tensors counted once)."""
        return sum(p.size for p in self.parameters())

    # ---- state ---------------------------------------------------------------------

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter's array by dotted name, tied ones under each of their names."""
        return OrderedDict(
            (name, p.data) for name, p in self.named_parameters(remove_duplicate=False)
        )

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays into this module's parameters in place (tied parameters stay tied).

        Raises:
            KeyError: with `strict`, when names are missing or unexpected.
            ValueError: when an array's shape differs from its parameter's.
        """
        own = dict(self.named_parameters(remove_duplicate=False))
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, value in state.items():
            if name not in own:
                continue
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
            if array.shape != own[name].shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {array.shape}, expected {own[name].shape}"
                )
        for name, value in state.items():
            if name in own:
                np.copyto(
                    own[name].data,
                    value.data if isinstance(value, Tensor) else value,
                    casting="same_kind",
                )

    # ---- modes and helpers ---------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) here and below; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode (dropout off); returns self."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def apply(self, fn: Callable[[Module], None]) -> Module:
        for module in self.modules():
            fn(module)
        return self

    def to(self, dtype: Any = None, device: str | None = None) -> Module:
        """Convert every parameter to `dtype` in place (e.g. float64 for gradcheck).

        A device, as in PyTorch's `model.to("cpu")`, may be given too: minigrad runs
        on the CPU, so "cpu" changes nothing and any other device is refused.
        """
        if isinstance(dtype, str) and dtype.split(":")[0] in ("cpu", "cuda", "mps", "xpu"):
            dtype, device = None, dtype
        if device is not None and str(device).split(":")[0] != "cpu":
            raise ValueError(f"to: minigrad runs on the CPU only, got device {device!r}")
        if dtype is None:
            return self
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + (")" if len(lines) == 1 else "\n)")

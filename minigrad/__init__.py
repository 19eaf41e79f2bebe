"""minigrad: a small reverse-mode autograd engine on NumPy, with PyTorch-shaped layers."""

from minigrad import allocator
from minigrad.autograd import enable_grad, grad, is_grad_enabled, no_grad
from minigrad.function import Context, Function
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minigrad.ops.elementwise import (
    abs,
    add,
    clip,
    div,
    exp,
    gelu,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
)
from minigrad.ops.linalg import matmul
from minigrad.ops.reduce import logsumexp, max, mean, min, sum, var
from minigrad.ops.shape import (
    broadcast_to,
    cat,
    concatenate,
    flatten,
    gather,
    masked_fill,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    unsqueeze,
    where,
)
from minigrad.random import manual_seed
from minigrad.serialization import load, save
from minigrad.tensor import Tensor, arange, ones, tensor, zeros

__all__ = [
    "Context",
    "Function",
    "GradcheckError",
    "Tensor",
    "abs",
    "add",
    "arange",
    "broadcast_to",
    "cat",
    "clip",
    "concatenate",
    "div",
    "enable_grad",
    "exp",
    "flatten",
    "gather",
    "gelu",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "load",
    "log",
    "logsumexp",
    "manual_seed",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "no_grad",
    "ones",
    "permute",
    "pow",
    "relu",
    "reshape",
    "save",
    "sigmoid",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "swapaxes",
    "tanh",
    "tensor",
    "unsqueeze",
    "var",
    "where",
    "zeros",
]

__version__ = "0.1.0"

allocator._apply_default()

# Layers and optimizers load last: they are built on everything above.
from minigrad import nn, optim  # noqa: E402, F401

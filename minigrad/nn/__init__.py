"""Layers and models, shaped like torch.nn."""

from minigrad.nn import functional, init
from minigrad.nn.attention import MultiHeadAttention
from minigrad.nn.layers import (
    GELU,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    ModuleDict,
    ModuleList,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from minigrad.nn.module import Module, Parameter
from minigrad.nn.positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding
from minigrad.nn.recurrent import GRU, LSTM, SimpleRNN

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "Dropout",
    "Embedding",
    "LayerNorm",
    "LearnedPositionalEncoding",
    "Linear",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiHeadAttention",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SimpleRNN",
    "SinusoidalPositionalEncoding",
    "Tanh",
    "functional",
    "init",
]

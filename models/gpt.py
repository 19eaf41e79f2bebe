"""A GPT in the shape of nanoGPT: same modules, same parameter names, same initialisation.

Parameter names and shapes match nanoGPT's state dict (Linear weights are
stored (out_features, in_features)), so weights can move between the two.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import minigrad
from minigrad import Tensor, nn
from minigrad.nn import functional as F


@dataclass
class GPTConfig:
    """Sizes of a GPT; the defaults are nanoGPT's small CPU configuration."""

    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False

    def __post_init__(self) -> None:
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier ones."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        # One projection computes keys, queries and values for all heads at once.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # True above the diagonal: the future positions a query must not see.
        self.future = np.triu(np.ones((config.block_size, config.block_size), dtype=bool), k=1)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        head_size = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, axis=2)
        q = q.reshape(B, T, self.n_head, head_size).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, self.n_head, head_size).transpose(1, 2)
        v = v.reshape(B, T, self.n_head, head_size).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(head_size))  # (B, nh, T, T)
        att = att.masked_fill(self.future[:T, :T], -np.inf)
        att = self.attn_dropout(att.softmax(axis=-1))
        y = att @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: widen 4x, GELU, project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A pre-LayerNorm transformer block: attention, then MLP, each added back to x."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token and position embeddings, a stack of Blocks, a final LayerNorm, a tied output head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the output head scores tokens with their own embeddings.
        self.transformer.wte.weight = self.lm_head.weight
        self._init_weights()

    def _init_weights(self) -> None:
        """N(0, 0.02) weights, zero biases, residual projections scaled by 1/sqrt(2 n_layer)."""
        rng = minigrad.random.generator()
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.data[...] = rng.normal(0.0, 0.02, module.weight.shape)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data[...] = 0
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                p.data[...] = rng.normal(0.0, residual_std, p.shape)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding, as nanoGPT reports it."""
        n = super().num_parameters()
        return n - self.transformer.wpe.weight.size if non_embedding else n

    def forward(self, idx: Any, targets: Any = None) -> tuple[Tensor, Tensor | None]:
        """Logits for every position, and the mean cross-entropy when targets are given.

        Args:
            idx: (B, T) integer token ids, T <= block_size.
            targets: (B, T) the next token at each position; -1 is ignored.

        Returns:
            (logits, loss): logits are (B, T, vocab) with targets, else (B, 1, vocab)
            for the last position only; loss is None without targets.
        """
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if idx.ndim != 2:
            raise ValueError(f"GPT: idx must be (batch, time) token ids, got shape {idx.shape}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(
                f"GPT: sequence of length {T} is longer than block_size {self.config.block_size}"
            )
        tok_emb = self.transformer.wte(idx)  # (B, T, C)
        pos_emb = self.transformer.wpe(np.arange(T))  # (T, C)
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None
        logits = self.lm_head(x)  # (B, T, vocab)
        targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Two AdamW groups: matrices and embeddings decay, biases and LayerNorm gains do not."""
        params = list(self.parameters())
        return [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]

    @minigrad.no_grad()
    def generate(
        self,
        idx: Any,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Extend each row of `idx` by sampling one token at a time.

        Args:
            idx: (B, T) integer token ids to continue.
            max_new_tokens: how many tokens to append.
            temperature: divides the logits; 0 picks the most likely token.
            top_k: sample only among the k most likely tokens (clamped to the vocabulary).
            rng: the generator to sample with (minigrad's global one by default).

        Returns:
            (B, T + max_new_tokens) token ids.  Only the last `block_size`
            tokens condition each prediction.
        """
        if temperature < 0:
            raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"generate: top_k must be >= 1, got {top_k}")
        rng = rng or minigrad.random.generator()
        idx = np.array(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"generate: idx must be (batch, time) with time >= 1, got {idx.shape}")
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]
            logits, _ = self(context)
            next_ids = sample_next(logits.data[:, -1, :], temperature, top_k, rng)
            idx = np.concatenate([idx, next_ids[:, None]], axis=1)
        self.train(was_training)
        return idx


def sample_next(
    logits: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator
) -> np.ndarray:
    """Draw one token id per row of (B, vocab) logits."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    logits = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = probs.cumsum(axis=-1)
    draws = rng.random((len(probs), 1))
    return np.minimum((cumulative < draws * cumulative[:, -1:]).sum(axis=-1), probs.shape[-1] - 1)

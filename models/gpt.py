"""A GPT in the shape of nanoGPT: same modules, same parameter names, same initialisation.

Parameter names and shapes match nanoGPT's state dict (Linear weights are
stored (out_features, in_features)), so weights can move between the two.
Attention runs through minigrad's fused scaled dot-product op.  Positions
are learned vectors (`transformer.wpe.weight`, as nanoGPT) or fixed sine
waves (`GPTConfig(pos_encoding="sinusoidal")`, which saves no weights).
`generate` keeps a key/value cache, so each new token costs one position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import minigrad
from minigrad import Tensor, nn
from minigrad.nn import functional as F

POS_ENCODINGS = ("learned", "sinusoidal")


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
    pos_encoding: str = "learned"  # 'learned' (nanoGPT's wpe) or 'sinusoidal' (fixed)

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
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(
                f"GPTConfig: pos_encoding must be one of {POS_ENCODINGS}, got {self.pos_encoding!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LayerCache:
    """The keys and values one attention layer has computed so far, for generation.

    Buffers of block_size positions are allocated on first use and filled in
    place, so appending a token copies one position, not the whole history.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.length = 0
        self.keys: np.ndarray | None = None  # (B, nh, capacity, hs)
        self.values: np.ndarray | None = None

    def append(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Store (B, nh, T, hs) keys and values; return all cached so far, (B, nh, length, hs)."""
        B, nh, T, hs = k.shape
        if self.keys is None:
            self.keys = np.empty((B, nh, self.capacity, hs), dtype=k.dtype)
            self.values = np.empty((B, nh, self.capacity, v.shape[-1]), dtype=v.dtype)
        end = self.length + T
        if end > self.capacity:
            raise ValueError(f"LayerCache: {end} positions do not fit its capacity {self.capacity}")
        self.keys[:, :, self.length : end] = k
        self.values[:, :, self.length : end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class KVCache:
    """One LayerCache per block: what `GPT.forward(..., kv_cache=)` reads and extends."""

    def __init__(self, config: GPTConfig) -> None:
        self.layers = [LayerCache(config.block_size) for _ in range(config.n_layer)]

    @property
    def length(self) -> int:
        """How many positions are cached."""
        return self.layers[0].length


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier ones.

    `c_attn` projects to queries, keys and values at once (nanoGPT's layout);
    the attention itself is one fused node.  Given a LayerCache, the new
    positions' keys and values are appended to it and the queries attend to
    everything cached.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        # One projection computes keys, queries and values for all heads at once.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.record_weights = False  # set by GPT.attention_weights
        self.weights: np.ndarray | None = None  # (B, nh, T, T) when recorded

    def forward(self, x: Tensor, cache: LayerCache | None = None) -> Tensor:
        B, T, C = x.shape
        head_size = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, axis=2)
        q = q.reshape(B, T, self.n_head, head_size).transpose(1, 2)  # (B, nh, T, hs)
        k = k.reshape(B, T, self.n_head, head_size).transpose(1, 2)
        v = v.reshape(B, T, self.n_head, head_size).transpose(1, 2)
        past = 0 if cache is None else cache.length
        mask = None
        if cache is not None:
            keys, values = cache.append(k.data, v.data)  # (B, nh, past + T, hs)
            k, v = Tensor(keys), Tensor(values)
        if past:
            # The T new queries sit at positions past .. past + T - 1 of the keys.
            mask = np.arange(past + T) <= np.arange(past, past + T)[:, None]  # (T, past + T)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=not past,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=self.record_weights,
        )
        if self.record_weights:
            y, weights = y
            self.weights = weights.data
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
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

    def forward(self, x: Tensor, cache: LayerCache | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token and position embeddings, a stack of Blocks, a final LayerNorm, a tied output head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=(
                    nn.LearnedPositionalEncoding(config.block_size, config.n_embd)
                    if config.pos_encoding == "learned"
                    else nn.SinusoidalPositionalEncoding(config.n_embd, config.block_size)
                ),
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
            if isinstance(module, (nn.Linear, nn.Embedding, nn.LearnedPositionalEncoding)):
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
        if non_embedding and self.config.pos_encoding == "learned":
            n -= self.transformer.wpe.weight.size
        return n

    def forward(
        self, idx: Any, targets: Any = None, kv_cache: KVCache | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Logits for every position, and the mean cross-entropy when targets are given.

        Args:
            idx: (B, T) integer token ids, T <= block_size.
            targets: (B, T) the next token at each position; -1 is ignored.
            kv_cache: keys and values of earlier positions (inference only, under
                `no_grad`); idx continues them and is appended to them.

        Returns:
            (logits, loss): logits are (B, T, vocab) with targets, else (B, 1, vocab)
            for the last position only; loss is None without targets.
        """
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if idx.ndim != 2:
            raise ValueError(f"GPT: idx must be (batch, time) token ids, got shape {idx.shape}")
        B, T = idx.shape
        past = 0 if kv_cache is None else kv_cache.length
        if kv_cache is not None and minigrad.is_grad_enabled():
            raise RuntimeError(
                "GPT: kv_cache holds plain arrays, so no gradient can flow through it; "
                "call the model under minigrad.no_grad() when passing kv_cache"
            )
        if T > self.config.block_size:
            raise ValueError(
                f"GPT: idx's sequence of length {T} is longer than block_size "
                f"{self.config.block_size}; crop it to its last {self.config.block_size} tokens"
            )
        _check_token_ids("idx", idx, self.config.vocab_size)
        if targets is not None:
            targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
            if targets.shape != idx.shape:
                raise ValueError(
                    f"GPT: targets has shape {targets.shape}, expected idx's shape {idx.shape}"
                )
            _check_token_ids("targets", targets, self.config.vocab_size, ignored=-1)
        if past + T > self.config.block_size:
            raise ValueError(
                f"GPT: {T} new tokens after {past} cached ones exceed block_size "
                f"{self.config.block_size}; start a new KVCache from a cropped context"
            )
        tok_emb = self.transformer.wte(idx)  # (B, T, C)
        pos_emb = self.transformer.wpe(np.arange(past, past + T))  # (T, C)
        x = self.transformer.drop(tok_emb + pos_emb)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if kv_cache is None else kv_cache.layers[i])
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None
        logits = self.lm_head(x)  # (B, T, vocab)
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    @minigrad.no_grad()
    def attention_weights(self, idx: Any) -> list[np.ndarray]:
        """The attention probabilities of every block for `idx`, in eval mode.

        Returns:
            n_layer arrays of shape (B, n_head, T, T); row i of a head says how
            much position i drew from each position j <= i.
        """
        attentions = [block.attn for block in self.transformer.h]
        was_training = self.training
        self.eval()
        for attn in attentions:
            attn.record_weights = True
        try:
            self(idx)
        finally:
            for attn in attentions:
                attn.record_weights = False
            self.train(was_training)
        return [attn.weights for attn in attentions]

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
        top_p: float | None = None,
        use_cache: bool = True,
    ) -> np.ndarray:
        """Extend each row of `idx` by sampling one token at a time.

        Args:
            idx: (B, T) integer token ids to continue.
            max_new_tokens: how many tokens to append.
            temperature: divides the logits; 0 picks the most likely token.
            top_k: sample only among the k most likely tokens (clamped to the vocabulary).
            rng: the generator to sample with (minigrad's global one by default).
            top_p: sample only from the smallest set of likeliest tokens whose
                probability reaches top_p (nucleus sampling), after top_k.
            use_cache: keep each layer's keys and values so a new token costs one
                position; False recomputes the whole context every token.  Both
                give the same tokens.

        Returns:
            (B, T + max_new_tokens) token ids.  Only the last `block_size`
            tokens condition each prediction.
        """
        if not temperature >= 0:  # also refuses nan
            raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
            raise TypeError(
                f"generate: max_new_tokens must be a whole number, got {max_new_tokens!r}"
            )
        if max_new_tokens < 0:
            raise ValueError(f"generate: max_new_tokens must be >= 0, got {max_new_tokens}")
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1
        ):
            raise ValueError(f"generate: top_k must be a whole number >= 1, got {top_k!r}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
        rng = rng or minigrad.random.generator()
        ids = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"generate: idx must hold integer token ids, got dtype {ids.dtype}")
        idx = ids.astype(np.int64)
        if idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"generate: idx must be (batch, time) with time >= 1, got {idx.shape}")
        block_size = self.config.block_size
        was_training = self.training
        self.eval()
        cache: KVCache | None = None
        try:
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits, _ = self(idx[:, -block_size:])
                elif cache is None or cache.length == block_size:
                    # NOTE: once the context outgrows block_size the window slides, and
                    # with absolute positions every kept token moves to a new position;
                    # deeper layers' keys also depend on the token that fell out. To
                    # stay identical to nanoGPT's cropping, the cache is rebuilt from
                    # the cropped window each token, so past block_size a token costs
                    # a full forward again and the cache only speeds up the first
                    # block_size tokens.
                    cache = KVCache(self.config)
                    logits, _ = self(idx[:, -block_size:], kv_cache=cache)
                else:
                    logits, _ = self(idx[:, -1:], kv_cache=cache)
                next_ids = sample_next(logits.data[:, -1, :], temperature, top_k, rng, top_p)
                idx = np.concatenate([idx, next_ids[:, None]], axis=1)
        finally:
            self.train(was_training)
        return idx


def _check_token_ids(
    name: str, ids: np.ndarray, vocab_size: int, ignored: int | None = None
) -> None:
    """Raise naming `name` unless every id is an integer in [0, vocab_size) (or `ignored`)."""
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"GPT: {name} must hold integer token ids, got dtype {ids.dtype}")
    used = ids if ignored is None else ids[ids != ignored]
    if used.size and (used.min() < 0 or used.max() >= vocab_size):
        bad = used[(used < 0) | (used >= vocab_size)].flat[0]
        also = "" if ignored is None else f" (or {ignored}, ignored)"
        raise IndexError(
            f"GPT: {name} holds token id {bad}, expected ids in [0, vocab_size={vocab_size})" + also
        )


def sample_next(
    logits: np.ndarray,
    temperature: float,
    top_k: int | None,
    rng: np.random.Generator,
    top_p: float | None = None,
) -> np.ndarray:
    """Draw one token id per row of (B, vocab) logits.

    Temperature 0 takes the argmax; otherwise the logits are divided by the
    temperature, cut to the top_k likeliest, then to the nucleus of top_p.  A
    temperature so small that the division overflows samples as 0 does.

    Raises:
        ValueError: when a logit is NaN or infinite (a model whose numbers
            overflowed), which leaves no distribution to draw from.
    """
    if not np.isfinite(logits).all():
        rows = np.flatnonzero(~np.isfinite(logits).all(axis=-1))
        raise ValueError(
            f"sampling: the model's logits hold NaN or inf (in row {rows[0]} of "
            f"{len(logits)}), so there is no distribution to draw from; the weights "
            "or the activations overflowed"
        )
    if temperature == 0:
        return logits.argmax(axis=-1)
    logits = logits.astype(np.float64)
    with np.errstate(over="ignore"):  # each row's largest logit becomes 0, the rest <= 0
        logits = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None and top_p < 1:
        probs = nucleus(probs, top_p)
    cumulative = probs.cumsum(axis=-1)
    draws = rng.random((len(probs), 1))
    return np.minimum((cumulative < draws * cumulative[:, -1:]).sum(axis=-1), probs.shape[-1] - 1)


def nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Zero all but the smallest set of likeliest tokens whose mass reaches `top_p`, per row.

    A token is kept when the tokens likelier than it hold less than top_p,
    so the likeliest token is always kept.  The result is not renormalised.
    """
    order = np.argsort(-probs, axis=-1, kind="stable")  # likeliest first
    ranked = np.take_along_axis(probs, order, axis=-1)
    mass_before = ranked.cumsum(axis=-1) - ranked
    keep = np.empty(probs.shape, dtype=bool)
    np.put_along_axis(keep, order, mass_before < top_p, axis=-1)
    return np.where(keep, probs, 0.0)

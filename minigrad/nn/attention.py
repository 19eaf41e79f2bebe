"""Multi-head attention with its own query, key, value and output projections."""

from __future__ import annotations

from typing import Any

from minigrad.nn import functional as F
from minigrad.nn.layers import Linear, _check_positive
from minigrad.nn.module import Module
from minigrad.tensor import Tensor, as_array


class MultiHeadAttention(Module):
    """Attention from a query sequence to a key/value sequence, split into heads.

    Batch-first throughout: query (B, Tq, embed_dim), key (B, Tk, kdim),
    value (B, Tk, vdim).  Queries and keys/values may come from different
    sequences of different lengths (cross-attention); pass the same tensor
    three times for self-attention.  Each projection is its own `Linear`
    (`q_proj`, `k_proj`, `v_proj`, `out_proj`), usable on its own.

    Boolean masks are True where a query MAY attend, as in
    `F.scaled_dot_product_attention`; note that `torch.nn.MultiheadAttention`
    uses the opposite convention (True = blocked).  Float masks are added to
    the scores.

    Args:
        embed_dim: width of the queries and of the output; split evenly into heads.
        num_heads: how many heads attend in parallel, each of embed_dim // num_heads.
        kdim: width of the keys (embed_dim by default).
        vdim: width of the values (embed_dim by default).
        bias: give the four projections biases.
        dropout: drop attention probabilities with this chance in training mode.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        kdim: int | None = None,
        vdim: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kdim = embed_dim if kdim is None else kdim
        vdim = embed_dim if vdim is None else vdim
        _check_positive(
            "MultiHeadAttention", embed_dim=embed_dim, num_heads=num_heads, kdim=kdim, vdim=vdim
        )
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiHeadAttention: embed_dim ({embed_dim}) must be divisible by "
                f"num_heads ({num_heads})"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.kdim, self.vdim = embed_dim, num_heads, kdim, vdim
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = Linear(kdim, embed_dim, bias=bias)
        self.v_proj = Linear(vdim, embed_dim, bias=bias)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, T, embed_dim) -> (B, heads, T, head_dim)."""
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def _check(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        for name, x, width in (
            ("query", query, self.embed_dim),
            ("key", key, self.kdim),
            ("value", value, self.vdim),
        ):
            if x.ndim != 3 or x.shape[-1] != width:
                raise ValueError(
                    f"MultiHeadAttention: {name} has shape {x.shape}, expected "
                    f"(batch, time, {width})"
                )
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"MultiHeadAttention: query {query.shape}, key {key.shape} and value "
                f"{value.shape} must share the batch size, and key and value the length"
            )

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Any = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from each query position to the key/value positions.

        Args:
            query: (B, Tq, embed_dim).
            key: (B, Tk, kdim).
            value: (B, Tk, vdim).
            mask: (Tq, Tk), (B, Tq, Tk) or (B, heads, Tq, Tk); booleans (True = may
                attend) or floats added to the scores.
            is_causal: query i sees keys 0..i only (for self-attention).
            need_weights: also return the attention probabilities.

        Returns:
            (B, Tq, embed_dim), or (that, weights of shape (B, heads, Tq, Tk)).
        """
        self._check(query, key, value)
        if mask is not None and as_array(mask).ndim == 3:
            mask = mask.unsqueeze(1) if isinstance(mask, Tensor) else as_array(mask)[:, None]
        q = self._heads(self.q_proj(query))  # (B, heads, Tq, head_dim)
        k = self._heads(self.k_proj(key))  # (B, heads, Tk, head_dim)
        v = self._heads(self.v_proj(value))  # (B, heads, Tk, head_dim)
        result = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            need_weights=need_weights,
        )
        out, weights = result if need_weights else (result, None)
        B, _, Tq, _ = out.shape
        out = self.out_proj(out.transpose(1, 2).reshape(B, Tq, self.embed_dim))
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, kdim={self.kdim}, "
            f"vdim={self.vdim}, dropout={self.dropout}"
        )

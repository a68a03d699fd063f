"""A small causal transformer over characters (pre-norm blocks, explicit attention).

Attention is written out (matmul, mask, softmax) rather than through fused kernels so the
arithmetic is the same in every torch build that a replay profile allows. ``make_portable``
(called by :func:`veritrain.training.portable.modules.convert`) switches the attention's
matmul and softmax to the portable operators and gives every position its own embedding row
per example, so no broadcast's gradient is summed by torch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return x.softmax(dim=-1)


class Block(nn.Module):
    """One pre-norm block (explicit causal attention, GELU MLP); the GPT reuses it."""

    matmul: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = staticmethod(torch.matmul)
    softmax: Callable[[torch.Tensor], torch.Tensor] = staticmethod(_softmax)

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        att = self.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        att = self.drop(self.softmax(att.masked_fill(mask[:t, :t], float("-inf"))))
        y = self.matmul(att, v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.ff(self.ln2(x)))

    def make_portable(self) -> None:
        from veritrain.training.portable import functions

        self.matmul, self.softmax = functions.matmul, functions.softmax


class CharTransformer(nn.Module):
    """Tokens ``(batch, context)`` (int64) -> next-token logits ``(batch, context, vocab)``."""

    expand_positions = False

    def __init__(self, vocab: int, context: int, d_model: int, n_heads: int, n_layers: int,
                 d_ff: int, dropout: float) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.register_buffer(
            "mask", torch.triu(torch.ones(context, context, dtype=torch.bool), 1), persistent=False
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        positions = torch.arange(t, device=tokens.device)
        if self.expand_positions:
            positions = positions.expand(tokens.shape[0], t)
        x = self.tok(tokens) + self.pos(positions)
        for block in self.blocks:
            x = block(x, self.mask)  # type: ignore[arg-type]
        return self.head(self.ln(x))

    def make_portable(self) -> None:
        self.expand_positions = True

"""A small byte-level GPT: the model zoo's ``gpt`` (GPT-2's shape at a few million parameters).

Bytes are the tokens (vocabulary 256), so no tokenizer is downloaded. Token and learned
position embeddings, ``n_layers`` pre-norm blocks (the char LM's block: explicit causal
attention, GELU MLP), a final layer norm and an output head tied to the token embedding.
Weights start as in GPT-2: normal(0, 0.02), the residual projections scaled by
``1/sqrt(2 · n_layers)``, biases zero, layer norms one. Initialisation runs on the CPU under
the job's seed before the model moves to its device, so every device starts from the same bits.

The default configuration (d_model 256, 4 layers, 4 heads, context 256) has ~3.2M parameters;
``examples/gpt-stdlib.yaml`` trains it on the Python standard library's sources.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from veritrain.training.transformer import Block


class BytesGpt(nn.Module):
    """Bytes ``(batch, context)`` (int64) -> next-byte logits ``(batch, context, vocab)``."""

    def __init__(self, vocab: int, context: int, d_model: int, n_heads: int, n_layers: int,
                 d_ff: int, dropout: float) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied: one matrix reads and writes bytes
        self.register_buffer(
            "mask", torch.triu(torch.ones(context, context, dtype=torch.bool), 1), persistent=False
        )
        self._init(n_layers)

    def _init(self, n_layers: int) -> None:
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif ".ln" in name or name.startswith("ln."):
                nn.init.ones_(p)
            else:
                residual = name.endswith(("proj.weight", "ff.2.weight"))
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layers) if residual else 0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        x = self.drop(self.tok(tokens) + self.pos(torch.arange(t, device=tokens.device)))
        for block in self.blocks:
            x = block(x, self.mask)  # type: ignore[arg-type]
        return self.head(self.ln(x))  # type: ignore[no-any-return]

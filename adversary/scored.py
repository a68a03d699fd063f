"""Dishonest participants of a scored job (the benchmark plants them; worker/ and verifier/
never import this). Workers are :data:`worker.scored.Strategy` functions, picked by
``VERITRAIN_SCORED_STRATEGY=adversary.scored:NAME``; the validator is a
:data:`verifier.validator.Lie`, picked by ``VERITRAIN_SCORED_LIE=adversary.scored:lying_validator``.

- :func:`free_rider`: random noise instead of training;
- :func:`copier`: another worker's update (``VERITRAIN_SCORED_COPY_OF``), made off-chain
  exactly as that worker makes it (standing in for receiving its bytes) and committed after it;
- :func:`stale`: one window behind (trains from the previous window's start model);
- :func:`data_swapper`: trains on batches assigned to someone else;
- :func:`lying_validator`: scores every update the other way round and never flags a copy.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from veritrain.scored.compress import CompressedUpdate
from veritrain.scored.score import SCALE, apply
from veritrain.scored.train import make_update


def _update(ctx: Any, batches: list[list[int]], **kw: Any) -> CompressedUpdate:
    return make_update(ctx.model, kw.pop("start", ctx.start), kw.pop("start_hash", ctx.start_hash), batches,
                       window=ctx.window, worker=ctx.address, chunk=ctx.doc.chunk, k=ctx.doc.k, **kw)


def free_rider(ctx: Any) -> CompressedUpdate:
    g = torch.Generator().manual_seed(ctx.window)
    noise = {k: 0.05 * torch.randn(v.shape, generator=g) for k, v in ctx.start.items()}
    return _update(ctx, [], trained=apply(ctx.start, noise))


def copier(ctx: Any) -> CompressedUpdate | None:
    victim = os.environ["VERITRAIN_SCORED_COPY_OF"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # commit only after the victim did (its update must exist)
        if any(s[0].lower() == victim.lower() for s in ctx.chain.submissions(ctx.job_id, ctx.window)):
            return _update(ctx, ctx.batches_of(victim) * ctx.doc.local_epochs)
        time.sleep(0.5)
    return None


def stale(ctx: Any) -> CompressedUpdate | None:
    """One window behind: trains window w's batches from window w - 1's start model (and has
    nothing to build on in window 0)."""
    if ctx.window == 0:
        return None
    old, old_hash = ctx.models.start(ctx.window - 1)
    return _update(ctx, ctx.assigned * ctx.doc.local_epochs, start=old, start_hash=old_hash)


def data_swapper(ctx: Any) -> CompressedUpdate:
    return _update(ctx, ctx.batches_of("0x" + "5a" * 20) * ctx.doc.local_epochs)


def lying_validator(scores: list[int], copiers: int, model_hash: bytes) -> tuple[list[int], int, bytes]:
    return [SCALE // 10 if s <= 0 else 0 for s in scores], 0, model_hash

"""A worker in a scored job (docs/scored.md): join with a stake, then in every window train on
the assigned batches from the window's start model, upload the encrypted compressed update,
commit its hash before the window closes and reveal it after.

How the update is made is a :data:`Strategy` (the honest one is :func:`honest`); the benchmark's
cheats (adversary/scored.py) plug in there. Run as a process with ``python -m worker.scored``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from web3.logs import DISCARD

from veritrain.errors import ChainError
from veritrain.scored import assign
from veritrain.scored.chain import Phase, ScoredChain
from veritrain.scored.commitments import update_commitment
from veritrain.scored.compress import CompressedUpdate, to_bytes
from veritrain.scored.follow import GlobalModels
from veritrain.scored.job import ScoredJobDoc, seal_update, update_hash
from veritrain.scored.session import finish, from_command_line, open_session, say_line
from veritrain.scored.train import ScoredModel, make_update
from veritrain.storage.base import Storage

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class WindowContext:
    """What a strategy gets to make window ``window``'s update."""

    job_id: int
    window: int
    doc: ScoredJobDoc
    model: ScoredModel
    models: GlobalModels
    start: dict[str, torch.Tensor]
    start_hash: str
    address: str
    chain: ScoredChain
    storage: Storage

    def batches_of(self, address: str) -> list[list[int]]:
        return assign.assigned_batches(self.doc.spec.seed, self.window, address, self.doc.examples,
                                       self.doc.spec.batch_size, self.doc.local_batches)

    @property
    def assigned(self) -> list[list[int]]:
        return self.batches_of(self.address)


Strategy = Callable[[WindowContext], "CompressedUpdate | None"]


def honest(ctx: WindowContext) -> CompressedUpdate:
    """Train ``local_epochs`` passes over the assigned batches from the start model."""
    return make_update(ctx.model, ctx.start, ctx.start_hash, ctx.assigned * ctx.doc.local_epochs,
                       window=ctx.window, worker=ctx.address, chunk=ctx.doc.chunk, k=ctx.doc.k)


def run(chain: ScoredChain, storage: Storage, job_id: int, *, strategy: Strategy = honest,
        leave: bool = True, say: Callable[[str], None] = say_line) -> dict[str, Any]:
    """Take part in every window of ``job_id`` still open for submissions; a report. Progress
    lines go to ``say``."""
    session = open_session(chain, storage, job_id, role="worker", say=say)
    doc, model, models, me, key = session.doc, session.model, session.models, session.address, session.key
    report: dict[str, Any] = {"address": me, "train_seconds": 0.0, "submitted": [], "missed": []}
    for w in range(session.windows):
        if chain.phase(job_id, w) > Phase.SUBMIT:
            report["missed"].append(w)
            continue
        chain.wait_phase(job_id, w, Phase.SUBMIT)
        if w:
            chain.settle_if_due(job_id, w - 1)
            chain.wait_phase(job_id, w - 1, Phase.SETTLED)
        start, start_hash = models.start(w)
        ctx = WindowContext(job_id, w, doc, model, models, start, start_hash, me, chain, storage)
        t0 = time.process_time()
        update = strategy(ctx)
        report["train_seconds"] += time.process_time() - t0
        if update is None:
            continue
        blob = seal_update(to_bytes(update), key, job_id, w, me)
        cid, uh, salt = storage.put_bytes(blob), update_hash(blob), os.urandom(32)
        try:
            receipt = chain.send("submit", job_id, w, update_commitment(uh, me, salt))
            committed = chain.c.events.UpdateCommitted().process_receipt(receipt, errors=DISCARD)
            index = committed[0]["args"]["index"]
            chain.wait_phase(job_id, w, Phase.REVEAL)
            chain.send("revealUpdate", job_id, w, index, uh, salt, cid)
        except ChainError as exc:  # too late for this window (a named phase error): try the next
            say(f"window {w}: {exc}")
            report["missed"].append(w)
            continue
        report["submitted"].append(w)
        say(f"window {w}: update {index} revealed ({cid})")
    return finish(chain, session, report, leave=leave)


def main(argv: list[str] | None = None) -> None:
    """``python -m worker.scored RPC SCORED_ADDRESS JOB_ID`` with the account's key in
    ``VERITRAIN_SCORED_ACCOUNT_KEY`` and IPFS at ``VERITRAIN_IPFS_API`` (the job's key comes
    on-chain); prints the report as JSON. ``VERITRAIN_SCORED_STRATEGY``
    names a ``module:function`` strategy (default: honest)."""
    chain, storage, job, strategy = from_command_line(argv, "VERITRAIN_SCORED_STRATEGY", honest)
    print(json.dumps(run(chain, storage, job, strategy=strategy), default=str), flush=True)


if __name__ == "__main__":
    main()

"""Each window's start model, recomputed from the chain and IPFS by the aggregation rule
(:mod:`veritrain.scored.aggregate`): what workers train from, what validators score against
and attest, and what the requester fetches at the end."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from veritrain.scored import aggregate, compress
from veritrain.scored.chain import ScoredChain
from veritrain.scored.job import ScoredJobDoc, open_update, update_hash
from veritrain.scored.train import ScoredModel
from veritrain.storage.base import Storage

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


def fetch_update(storage: Storage, key: bytes, job_id: int, window: int, worker: str, cid: str,
                 committed: bytes) -> compress.CompressedUpdate | None:
    """The update behind a reveal, or None when it is missing, altered or unreadable."""
    try:
        blob = storage.get_bytes(cid)
        if update_hash(blob) != committed:
            return None
        return compress.from_bytes(open_update(blob, key, job_id, window, worker))
    except Exception as exc:  # noqa: BLE001 - any failure makes the update worthless, not the caller
        log.info("update of %s in window %d unreadable: %s", worker, window, exc)
        return None


class GlobalModels:
    """Start models of the windows of one job (window ``w > 0`` needs ``w - 1`` settled)."""

    def __init__(self, chain: ScoredChain, storage: Storage, doc: ScoredJobDoc, key: bytes, job_id: int,
                 model: ScoredModel) -> None:
        self.chain, self.storage, self.doc, self.key, self.job_id = chain, storage, doc, key, job_id
        self.model = model
        self._cache: dict[int, tuple[dict[str, torch.Tensor], str]] = {}

    def start(self, window: int) -> tuple[dict[str, torch.Tensor], str]:
        """Window ``window``'s start model and its hash (hex)."""
        if window not in self._cache:
            if window == 0:
                state = self.model.initial_state()
            else:
                prev, _ = self.start(window - 1)
                state = aggregate.next_global(prev, self.chosen_updates(window - 1))
            self._cache[window] = (state, aggregate.model_hash(state).hex())
        return self._cache[window]

    def chosen_updates(self, window: int) -> list[compress.CompressedUpdate]:
        settled = self.chain.settled(self.job_id, window)
        chosen = aggregate.select([s.score for s in settled], [s.copier for s in settled], self.doc.top)
        revealed = {r.index: r for r in self.chain.revealed(self.job_id, window)}
        out = []
        for i in chosen:
            r = revealed[i]
            u = fetch_update(self.storage, self.key, self.job_id, window, r.worker, r.cid, r.update_hash)
            if u is not None:
                out.append(u)
        return out

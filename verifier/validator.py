"""A validator of scored jobs (docs/scored.md): join with a stake (it must be an active
verifier in the VerifierRegistry), then in every window, once the updates are revealed, score
each one on held-out batches it samples itself, flag copies, commit the score vector with the
hash of the window's start model, reveal it, and settle.

``lie`` lets the benchmark plant a dishonest validator (adversary/scored.py) without any
cheating code here. Run as a process with ``python -m verifier.validator``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from veritrain.errors import ChainError
from veritrain.scored import assign, score
from veritrain.scored.chain import Phase, ScoredChain
from veritrain.scored.commitments import score_commitment
from veritrain.scored.follow import GlobalModels, fetch_update
from veritrain.scored.job import ScoredJobDoc
from veritrain.scored.session import finish, from_command_line, open_session, say_line
from veritrain.scored.train import ScoredModel
from veritrain.storage.base import Storage

#: ``lie(scores, copiers, model_hash) -> (scores, copiers, model_hash)``: what is committed.
Lie = Callable[[list[int], int, bytes], tuple[list[int], int, bytes]]


def score_window(chain: ScoredChain, storage: Storage, key: bytes, job_id: int, window: int,
                 doc: ScoredJobDoc, model: ScoredModel, models: GlobalModels
                 ) -> tuple[list[int], int, list[score.Verdict]]:
    """Scores (one per submission, in index order) and the copy bitmask for ``window``.

    The held-out batches are drawn with :func:`veritrain.scored.assign.eval_salt` of the
    revealed update hashes: every honest validator scores on the same batches (so honest
    scores agree and a liar stands out), and no worker knew them when it committed."""
    start, start_hash = models.start(window)
    subs = chain.submissions(job_id, window)
    revealed = {r.index: r for r in chain.revealed(job_id, window)}
    salt = assign.eval_salt([revealed[i].update_hash for i in sorted(revealed)])
    updates = []
    for i in range(len(subs)):
        r = revealed.get(i)
        updates.append(None if r is None else
                       fetch_update(storage, key, job_id, window, r.worker, r.cid, r.update_hash))
    copies = score.copy_flags(updates)
    held = assign.eval_batches(doc.spec.seed, window, salt, doc.examples, doc.eval_batch_size,
                               doc.eval_batches)
    verdicts = []
    for i, (worker, *_rest) in enumerate(subs):
        assigned = assign.assigned_batches(doc.spec.seed, window, worker, doc.examples, doc.spec.batch_size,
                                           doc.local_batches)
        verdicts.append(score.verdict(model.loss, model.losses, start, start_hash, updates[i],
                                      seed=doc.spec.seed, window=window, worker=worker, assigned=assigned,
                                      held_out=held, copy=copies[i]))
    return [v.score for v in verdicts], score.copier_mask(copies), verdicts


def run(chain: ScoredChain, storage: Storage, job_id: int, *, lie: Lie | None = None,
        leave: bool = True, say: Callable[[str], None] = say_line) -> dict[str, Any]:
    """Validate every window of ``job_id`` still open for score commits; a report. Progress
    lines go to ``say``."""
    session = open_session(chain, storage, job_id, role="validator", say=say)
    doc, model, models, me, key = session.doc, session.model, session.models, session.address, session.key
    report: dict[str, Any] = {"address": me, "score_seconds": 0.0, "windows": {}}
    for w in range(session.windows):
        if chain.phase(job_id, w) > Phase.SCORE_COMMIT:
            continue
        chain.wait_phase(job_id, w, Phase.SCORE_COMMIT)
        if w:
            chain.wait_phase(job_id, w - 1, Phase.SETTLED)
        t0 = time.process_time()
        scores, copiers, verdicts = score_window(chain, storage, key, job_id, w, doc, model, models)
        model_hash = bytes.fromhex(models.start(w)[1])
        report["score_seconds"] += time.process_time() - t0
        if lie is not None:
            scores, copiers, model_hash = lie(scores, copiers, model_hash)
        salt = os.urandom(32)
        try:
            chain.send("commitScores", job_id, w,
                       score_commitment(job_id, w, scores, copiers, model_hash, me, salt))
            chain.wait_phase(job_id, w, Phase.SCORE_REVEAL)
            chain.send("revealScores", job_id, w, scores, copiers, model_hash, salt)
        except ChainError as exc:  # too late for this window (a named phase error)
            say(f"window {w}: {exc}")
            report["windows"][w] = {"missed": str(exc)}
            continue
        say(f"window {w}: scores {scores}, copies {copiers:b}")
        report["windows"][w] = {"scores": scores, "copiers": copiers,
                                "verdicts": [v.as_dict() for v in verdicts]}
        chain.wait_phase(job_id, w, Phase.SETTLEABLE)
        chain.settle_if_due(job_id, w)
    return finish(chain, session, report, leave=leave)


def main(argv: list[str] | None = None) -> None:
    """``python -m verifier.validator RPC SCORED_ADDRESS JOB_ID``; the account's key in
    ``VERITRAIN_SCORED_ACCOUNT_KEY``, IPFS at ``VERITRAIN_IPFS_API`` (the job's key comes
    on-chain); ``VERITRAIN_SCORED_LIE`` names a ``module:function`` :data:`Lie`.
    Prints the report as JSON."""
    chain, storage, job, lie = from_command_line(argv, "VERITRAIN_SCORED_LIE", None)
    print(json.dumps(run(chain, storage, job, lie=lie), default=str), flush=True)


if __name__ == "__main__":
    main()

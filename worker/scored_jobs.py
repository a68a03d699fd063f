"""``veritrain worker run`` takes scored jobs too (incentive: scored, docs/scored.md): any whose
last window is still open for submissions, whose worker stake is within the policy's
``max_stake`` and whose model the policy allows; each runs :func:`worker.scored.run` in a thread
of its own (:class:`veritrain.scored.jobs.ScoredJobs`)."""

from __future__ import annotations

from typing import Any

from veritrain.scored.chain import Phase, ScoredChain
from veritrain.scored.jobs import Connect, ScoredJobs


def scored_jobs(worker: Any) -> ScoredJobs | None:
    """For a :class:`worker.loop.Worker`; None when its deployment has no ScoredRounds."""
    from worker.scored import run

    s = worker.settings
    dep = worker.chain.deployment

    def accept(job: int, params: dict[str, Any], chain: ScoredChain, connect: Connect) -> str | None:
        if s.max_stake is not None and int(params["workerStake"]) > s.max_stake:
            return f"worker stake {params['workerStake']} above max_stake {s.max_stake}"
        if s.allowed_models:
            from veritrain.scored.job import ScoredJobDoc

            _chain, storage = connect()
            model = ScoredJobDoc.get(storage, params["specCid"]).spec.model.name
            if model not in s.allowed_models:
                return f"model {model} not in allowed_models"
        return None

    nonces = s.account_dir(dep.chain_id, worker.address) / "nonces"
    return ScoredJobs.on(dep, s.rpc_url, worker.account, nonces, s.ipfs_api, worker.journal, run=run,
                         accept=accept, last_phase=Phase.SUBMIT, say=worker.say,
                         rpc_retry_seconds=s.rpc_retry_seconds, ipfs_retry_seconds=s.ipfs_retry_seconds)

"""``veritrain verifier run`` validates scored jobs too (incentive: scored, docs/scored.md): any
whose last window has not yet closed its score commits and that still has a validator seat;
each runs :func:`verifier.validator.run` in a thread of its own
(:class:`veritrain.scored.jobs.ScoredJobs`). The verifier must be active in the registry (the
service registers it first)."""

from __future__ import annotations

from typing import Any

from veritrain.scored.chain import Phase, ScoredChain
from veritrain.scored.jobs import Connect, ScoredJobs


def refusal(settings: Any, job: int, params: dict[str, Any], chain: ScoredChain) -> str | None:
    """Why the verifier of ``settings`` does not validate scored job ``job``; None when it does."""
    stake, cap = int(params["validatorStake"]), settings.scored_max_stake
    if cap is not None and stake > cap:
        return f"validator stake {stake} above VERITRAIN_VERIFIER_SCORED_MAX_STAKE {cap}"
    seats = int(params["maxValidators"])
    if int(chain.job(job)["validators"]) >= seats:
        return f"all {seats} validator seats are taken"
    return None


def scored_jobs(settings: Any, account: Any, deployment: Any, journal: Any, say: Any) -> ScoredJobs | None:
    """For the verifier of ``settings``; None when the deployment has no ScoredRounds."""
    from verifier.validator import run

    def accept(job: int, params: dict[str, Any], chain: ScoredChain, connect: Connect) -> str | None:
        return refusal(settings, job, params, chain)

    return ScoredJobs.on(deployment, settings.rpc_url, account, settings.home / "nonces", settings.ipfs_api,
                         journal, run=run, accept=accept, last_phase=Phase.SCORE_COMMIT, say=say)

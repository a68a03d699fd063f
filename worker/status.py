"""`veritrain worker status`: the journal's tasks and the chain's money view (no password)."""

from __future__ import annotations

from typing import Any

from veritrain import deployments
from veritrain.journal import Journal
from veritrain.scored.jobs import TAKEN
from worker.settings import WorkerSettings
from worker.task_state import STAKED, TaskPhase, TaskRecord


class _Addr:
    def __init__(self, address: str) -> None:
        self.address = address


def status_report(settings: WorkerSettings, address: str) -> dict[str, Any]:
    from worker.chain import WorkerChain

    dep = deployments.load(settings.deployment, settings.rpc_url)
    home = settings.account_dir(dep.chain_id, address)
    chain = WorkerChain(settings.rpc_url, dep, _Addr(address), home / "nonces",
                        retry_seconds=settings.rpc_retry_seconds)
    path = home / chain.market.address.lower()[2:10] / "journal.sqlite"
    tasks: list[dict[str, Any]] = []
    earned = withdrawn = staked = 0
    scored: list[int] = []
    if path.exists():
        journal = Journal(path)
        try:
            for it in journal.items("task:"):
                d, phase = TaskRecord.of(it), TaskPhase(it.phase)
                tasks.append({"task_id": d.task_id, "job_id": d.job_id, "phase": str(phase),
                              "reward": d.reward, "stake": d.stake, "reason": d.reason,
                              "root": d.root, "manifest_cid": d.manifest_cid})
                if phase == TaskPhase.FINALIZED:
                    earned += d.reward
                earned += d.griefing_fee or 0
                if phase in STAKED:
                    staked += d.stake
            withdrawn = int(journal.value("withdrawn", 0))
            scored = list(journal.value(TAKEN, []))  # scored jobs taken by `worker run`, not ended
        finally:
            journal.close()
    from veritrain.units import TokenFormat

    fmt = TokenFormat(chain.token.decimals(), chain.token.symbol())
    return {"address": address, "chain_id": chain.chain_id, "market": chain.market.address,
            "token": {"address": chain.token.address, "symbol": fmt.symbol, "decimals": fmt.decimals},
            "balance": chain.balance(), "owed": chain.owed(), "staked": staked, "earned": earned,
            "withdrawn": withdrawn, "journal": str(path), "tasks": tasks, "scored_jobs": scored}


def devices_report(policy_gpus: list[str] | None = None) -> list[dict[str, Any]]:
    """The devices this worker trains on (read in a child process: the worker never loads torch
    itself), each with a one-line ``label`` and ``trains``: which CUDA jobs it takes there
    (``bitwise + tolerance`` when the policy trains its class bitwise, else ``tolerance``)."""
    from veritrain.training.devices import as_dicts, detect_isolated

    out = as_dicts(detect_isolated())
    for d in out:
        if d["kind"] == "cpu":
            d["trains"] = "cpu jobs (bitwise) + tolerance-mode cuda jobs"
        elif policy_gpus is None or d["name"] in policy_gpus:
            d["trains"] = "cuda jobs of its class (bitwise) + tolerance-mode cuda jobs"
        else:
            d["trains"] = "tolerance-mode cuda jobs"
    return out

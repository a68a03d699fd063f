"""A job's status: its on-chain state, and every task's claims with their phase and transactions.

Built from the job's events since its posting block (who claimed, what was revealed, which
transactions) and the contract's views (the current phase of each live claim).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from veritrain.chain.states import ClaimStatus
from veritrain.tasks import split_task_id

EVENTS = ["TaskClaimed", "KeyDelivered", "ResultCommitted", "ResultRevealed", "ClaimFinalized",
          "ClaimAbandoned", "ClaimTimedOut", "ClaimDisputed", "ClaimReleased", "ClaimSlashed",
          "JobCancelled", "JobClosed"]

_ENDED = {"ClaimAbandoned": "abandoned", "ClaimTimedOut": "timed out", "ClaimSlashed": "slashed"}


@dataclass
class ClaimView:
    worker: str
    phase: str
    root: str | None = None
    manifest_cid: str | None = None
    txs: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskView:
    task_id: int
    index: int
    examples: int
    finalized: int = 0
    claims: list[ClaimView] = field(default_factory=list)

    @property
    def phase(self) -> str:
        live = [c.phase for c in self.claims if c.phase not in _ENDED.values()]
        if not live:
            return "open"
        order = [s.name.lower().replace("_", " ") for s in ClaimStatus]
        return min(live, key=lambda p: order.index(p) if p in order else len(order))


@dataclass
class JobStatusView:
    job_id: int
    state: str
    redundancy: int
    escrow: int
    spec_cid: str
    tasks: list[TaskView]

    @property
    def done(self) -> bool:
        return all(t.finalized >= self.redundancy for t in self.tasks)

    def summary(self) -> str:
        final = sum(t.finalized >= self.redundancy for t in self.tasks)
        return f"job {self.job_id} {self.state}: {final}/{len(self.tasks)} tasks final"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["done"] = self.done
        for t, view in zip(d["tasks"], self.tasks, strict=True):
            t["phase"] = view.phase
        return d


def _phase(status: int) -> str:
    return ClaimStatus(status).name.lower().replace("_", " ")


def job_status(job: Any) -> JobStatusView:
    market = job.requester.market
    onchain = market.get_job(job.id)
    doc = job.doc
    tasks = {tid: TaskView(tid, i, doc.shard(i).examples) for i, tid in enumerate(job.task_ids)}
    claims: dict[tuple[int, str], ClaimView] = {}
    for ev in market.job_events(job.id, job._from_block, EVENTS):
        if ev.name in ("JobCancelled", "JobClosed"):
            continue
        task_id, worker = int(ev.args["taskId"]), str(ev.args["worker"])
        key = (task_id, worker.lower())
        if ev.name == "TaskClaimed":
            claims[key] = ClaimView(worker=worker, phase="claimed")
            tasks[task_id].claims.append(claims[key])
        c = claims.get(key)
        if c is None:
            continue
        c.txs[ev.name] = ev.tx_hash
        if ev.name == "ResultRevealed":
            c.root, c.manifest_cid = str(ev.args["root"]), str(ev.args["manifestCid"])
        if ev.name in _ENDED:
            c.phase = _ENDED[ev.name]
            claims.pop(key)  # a later claim by the same worker starts a new view
    for (task_id, _), c in claims.items():
        c.phase = _phase(market.get_claim(task_id, c.worker).status)
    for t in tasks.values():
        t.finalized = sum(c.phase == "finalized" for c in t.claims)
    return JobStatusView(job_id=job.id, state=onchain.status.name.lower(),
                         redundancy=onchain.redundancy, escrow=onchain.escrow,
                         spec_cid=onchain.spec_cid, tasks=[tasks[t] for t in sorted(tasks)])


__all__ = ["JobStatusView", "TaskView", "ClaimView", "job_status", "split_task_id"]

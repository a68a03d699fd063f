"""Read and write the contracts the requester uses, through the typed facades of
:mod:`veritrain.chain.facades` (a write is ``market.market.postJob(params).send()``).

Struct views come back as :mod:`veritrain.chain.views` dataclasses; events come back as
:class:`veritrain.chain.Event` filtered to one job's tasks. web3 is imported lazily (by
``veritrain.chain``) so the CLI starts fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veritrain.chain.views import Claim, Dispute, Job, Task
from veritrain.deployments import Deployment
from veritrain.tasks import split_task_id


@dataclass
class Market:
    """The JobMarket, its token and its dispute modules, bound to one account."""

    client: Any  # veritrain.chain.ChainClient
    deployment: Deployment

    def __post_init__(self) -> None:
        from veritrain.chain.facades import Contracts

        contracts = Contracts.of(self.client, self.deployment)  # typed facades; the token is any ERC-20
        self.market, self.token = contracts.market, contracts.token
        self.resolver, self.registry = contracts.resolver, contracts.registry

    @property
    def address(self) -> str:
        return str(self.market.address)

    @property
    def chain_id(self) -> int:
        return int(self.client.chain_id)

    def get_job(self, job_id: int) -> Job:
        return self.market.getJob(job_id)

    def get_task(self, task_id: int) -> Task:
        return self.market.getTask(task_id)

    def get_claim(self, task_id: int, worker: str) -> Claim:
        return self.market.getClaim(task_id, worker)

    def get_dispute(self, dispute_id: int) -> Dispute:
        return self.resolver.getDispute(dispute_id)

    def timestamp(self) -> int:
        return int(self.client.timestamp())

    def job_events(self, job_id: int, from_block: int, names: list[str]) -> list[Any]:
        """JobMarket events of ``job_id``'s tasks (and the job itself) since ``from_block``."""
        events = self.market.events(from_block, names=names).poll()
        out = []
        for ev in events:
            a = ev.args
            if "jobId" in a:
                if int(a["jobId"]) == job_id:
                    out.append(ev)
            elif "taskId" in a and split_task_id(int(a["taskId"]))[0] == job_id:
                out.append(ev)
        return out

    def resolver_events(self, from_block: int, names: list[str]) -> list[Any]:
        return list(self.resolver.events(from_block, names=names).poll())

"""Open slots on the market, as :class:`~worker.policy.Offer` objects for the policy.

Reads every open job (``getJob``), its document from IPFS (cached on disk, verified by CID
and against the job's ``shardsRoot``), and each task's free slots. A job whose document is
unreadable or inconsistent still yields offers, carrying the problem, so the operator sees
why it was skipped; an unreachable IPFS node is not such a problem and is raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from veritrain.chain.states import ClaimStatus, JobStatus
from veritrain.chain.views import Job
from veritrain.errors import SpecError, StorageError, VeritrainError
from veritrain.storage import StorageUnreachableError
from veritrain.tasks import task_id_of
from worker import tasks
from worker.policy import Offer

if TYPE_CHECKING:
    from worker.loop import Worker

def open_offers(worker: Worker) -> list[Offer]:
    chain = worker.chain
    count = int(chain.call(chain.market.functions.jobCount()))
    first = int(worker.journal.value("scan_from_job", 1))
    balance = chain.balance()
    out: list[Offer] = []
    all_closed = True
    for job_id in range(first, count + 1):
        job = chain.job(job_id)
        if job.status != JobStatus.OPEN:
            if all_closed:
                worker.journal.set("scan_from_job", job_id + 1)
            continue
        all_closed = False
        out += _job_offers(worker, job_id, job, balance)
    return out


def _job_offers(worker: Worker, job_id: int, job: Job, balance: int) -> list[Offer]:
    chain = worker.chain
    problems: list[str] = []
    doc = None
    try:
        doc = worker.doc(job.spec_cid)
        problems = tasks.job_problems(doc, job)
    except StorageUnreachableError:
        raise  # an IPFS outage is not the job's fault: the loop reports it (and exits in a script)
    except (SpecError, StorageError, VeritrainError) as exc:
        problems = [f"job document unusable: {exc}"]
    offers = []
    for index in range(job.task_count):
        task_id = task_id_of(job_id, index)
        t = chain.task(task_id)
        if t.active + t.finalized + t.closed >= job.redundancy:
            continue
        if chain.status_of(task_id) != ClaimStatus.NONE:
            continue
        common = dict(job_id=job_id, task_index=index, task_id=task_id, reward=job.reward_per_task,
                      stake=job.stake_per_task, balance=balance)
        if doc is None:
            offers.append(Offer(**common, steps=1, model="?", memory_mb=0, torch_version="?", cpu_isa="?",
                                problems=tuple(problems)))
            continue
        spec = doc.spec
        ref = doc.shard(index % spec.num_shards)
        offers.append(Offer(**common, steps=spec.steps_per_task, model=spec.model.name,
                            memory_mb=tasks.estimate_memory_mb(spec, ref),
                            torch_version=spec.replay.torch_version, cpu_isa=spec.replay.cpu_isa,
                            device=spec.replay.device, threads=spec.replay.threads, rounds=spec.rounds,
                            problems=tuple(problems)))
    return offers

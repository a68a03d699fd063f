"""Open slots on the market, as :class:`~worker.policy.Offer` objects for the policy.

Reads every open job (``getJob``), its document from IPFS (cached on disk, verified by CID
and against the job's ``shardsRoot``), and each task's free slots. A job whose document is
unreadable or inconsistent still yields offers, carrying the problem, so the operator sees
why it was skipped; an unreachable IPFS node is not such a problem and is raised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from veritrain.chain.states import ClaimStatus, JobStatus
from veritrain.chain.views import Job
from veritrain.errors import SpecError, StorageError, VeritrainError
from veritrain.jobdoc import JobDocument
from veritrain.journal import Journal
from veritrain.storage import StorageUnreachableError
from veritrain.tasks import task_id_of
from worker import tasks
from worker.policy import Offer

#: The job document of a CID (the worker's cached, verified reader).
DocReader = Callable[[str], JobDocument]


def open_offers(chain: Any, journal: Journal, doc: DocReader) -> list[Offer]:
    """Offers for every free slot of every open job. ``chain`` is the worker's
    :class:`worker.chain.WorkerChain`; ``journal`` keeps where the scan may start."""
    count = chain.market.jobCount()
    first = int(journal.value("scan_from_job", 1))
    balance = chain.balance()
    out: list[Offer] = []
    all_closed = True
    for job_id in range(first, count + 1):
        job = chain.job(job_id)
        if job.status != JobStatus.OPEN:
            if all_closed:
                journal.set("scan_from_job", job_id + 1)
            continue
        all_closed = False
        out += job_offers(chain, doc, job_id, job, balance)
    return out


def job_offers(chain: Any, read_doc: DocReader, job_id: int, job: Job, balance: int) -> list[Offer]:
    """The offers of one open job; an unusable document makes offers that carry the problem."""
    problems: list[str] = []
    doc = None
    try:
        doc = read_doc(job.spec_cid)
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
                            device=spec.replay.device, cuda=spec.replay.cuda,
                            tolerance=spec.replay.tolerance.mode, threads=spec.replay.threads,
                            rounds=spec.rounds,
                            problems=tuple(problems)))
    return offers

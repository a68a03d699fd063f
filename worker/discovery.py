"""Open slots on the market, as :class:`~worker.policy.Offer` objects for the policy.

The worker keeps a :class:`TaskBoard`: the open jobs and which of their tasks are full, built from
JobMarket's events read once (in pages, from the deployment block on the first start) and then
incrementally, the way an indexer would. Its cursor and state are journaled (``kv`` key
``board``), so a restarted worker resumes from where it stopped instead of reading history again.
A task's slot count changes only in a transaction that emits one of :data:`SLOT_EVENTS`, so a
poll costs a fixed handful of requests (head, the page's logs and block hash) plus one
``getTask`` per task some event touched since the last poll, however many tasks are open: the
per-task view calls of every idle poll are gone. A reorg (the poller's ``retracted`` events) has
the tasks and jobs those events touched read again from the chain.

Each job's document is read from IPFS (cached on disk, verified by CID and against the job's
``shardsRoot``). A job whose document is unreadable or inconsistent still yields offers,
carrying the problem, so the operator sees why it was skipped; an unreachable IPFS node is not
such a problem and is raised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from veritrain.chain.states import JobStatus
from veritrain.chain.views import Job
from veritrain.errors import SpecError, StorageError, VeritrainError
from veritrain.jobdoc import JobDocument
from veritrain.journal import Journal
from veritrain.storage import StorageUnreachableError
from veritrain.tasks import split_task_id, task_id_of
from worker import tasks
from worker.policy import Offer

#: The job document of a CID (the worker's cached, verified reader).
DocReader = Callable[[str], JobDocument]

#: Events that change a job's status.
JOB_EVENTS = ("JobPosted", "JobCancelled", "JobClosed")
#: Events after which a task's free slots may differ (claimed; a claim ended and the slot reopened
#: or closed). Finalize, commit and reveal do not change whether a slot is free.
SLOT_EVENTS = ("TaskClaimed", "ClaimAbandoned", "ClaimTimedOut", "ClaimSlashed")
#: The journal's ``kv`` key of the board's state.
BOARD_KEY = "board"


class TaskBoard:
    """Open jobs and their full tasks, kept from events (see the module doc).

    ``chain`` is the worker's :class:`worker.chain.WorkerChain` (``client``, ``market``,
    ``deployment``, ``job``, ``task``, ``address``); ``poller`` may be injected (tests)."""

    def __init__(self, chain: Any, journal: Journal, *, poller: Any = None) -> None:
        self.chain = chain
        self.journal = journal
        saved = journal.value(BOARD_KEY) or {}
        self.jobs: dict[int, Job] = {int(k): _job(v) for k, v in saved.get("jobs", {}).items()}
        self.full: set[int] = set(saved.get("full", []))
        #: Tasks this worker holds or held a claim on that did not end (never offered to it).
        self.mine: set[int] = set(saved.get("mine", []))
        cursor = int(saved.get("cursor", chain.deployment.deploy_block))
        if poller is None:
            from veritrain.chain.events import EventPoller

            poller = EventPoller(chain.client, chain.market.web3_contract, cursor,
                                 names=[*JOB_EVENTS, *SLOT_EVENTS]).resume(saved.get("poller"))
        self.poller = poller
        self.me = str(chain.address).lower()
        #: Reads since this board was made (the bench and tests look at them).
        self.stats = {"polls": 0, "events": 0, "task_reads": 0, "job_reads": 0}

    def refresh(self) -> None:
        """Read the events since the cursor and bring the board up to date (journaled)."""
        self.stats["polls"] += 1
        events = self.poller.poll()
        retracted, self.poller.retracted = list(self.poller.retracted), []
        if not events and not retracted:
            return
        self.stats["events"] += len(events)
        dirty_jobs: set[int] = set()
        dirty_tasks: set[int] = set()
        for ev, undone in [*((e, True) for e in retracted), *((e, False) for e in events)]:
            if ev.name in JOB_EVENTS:
                dirty_jobs.add(int(ev.args["jobId"]))
                continue
            task_id = int(ev.args["taskId"])
            dirty_tasks.add(task_id)
            if str(ev.args["worker"]).lower() == self.me:
                ended = (ev.name != "TaskClaimed") != undone  # a retracted claim is no claim
                (self.mine.discard if ended else self.mine.add)(task_id)
        for job_id in sorted(dirty_jobs):
            self._read_job(job_id)
        for task_id in sorted(dirty_tasks):
            if split_task_id(task_id)[0] in self.jobs:  # a task of an ended job is never offered
                self.mark(task_id)
        self._save()

    def mark(self, task_id: int) -> None:
        """Read one task's slots from the chain (after an event, or a claim that lost a race)."""
        job = self.jobs.get(split_task_id(task_id)[0])
        if job is None:
            return
        self.stats["task_reads"] += 1
        t = self.chain.task(task_id)
        if t.active + t.finalized + t.closed >= job.redundancy:
            self.full.add(task_id)
        else:
            self.full.discard(task_id)

    def _read_job(self, job_id: int) -> None:
        self.stats["job_reads"] += 1
        job = self.chain.job(job_id)
        if job.status == JobStatus.OPEN:
            self.jobs[job_id] = job
            return
        self.jobs.pop(job_id, None)
        self.full = {t for t in self.full if split_task_id(t)[0] != job_id}
        self.mine = {t for t in self.mine if split_task_id(t)[0] != job_id}

    def _save(self) -> None:
        self.journal.set(BOARD_KEY, {
            "cursor": self.poller.cursor,
            "poller": self.poller.state(),  # a reorg while the worker was down is still noticed
            "jobs": {str(k): _plain(j) for k, j in self.jobs.items()},
            "full": sorted(self.full),
            "mine": sorted(self.mine),
        })

    def free(self, job_id: int) -> list[int]:
        """Indexes of the job's tasks with a free slot (as of the last refresh)."""
        job = self.jobs[job_id]
        taken = self.full | self.mine
        return [i for i in range(job.task_count) if task_id_of(job_id, i) not in taken]

    def offers(self, doc: DocReader, balance: int) -> list[Offer]:
        """Offers for every free slot of every open job (after :meth:`refresh`)."""
        out: list[Offer] = []
        for job_id, job in sorted(self.jobs.items()):
            out += job_offers(doc, job_id, job, balance, self.free(job_id))
        return out


def _plain(job: Job) -> dict[str, Any]:
    d = dataclasses.asdict(job)
    d["status"] = int(job.status)
    for name in _BYTES_FIELDS:  # shards_root, starts_root: JSON has no bytes
        d[name] = "0x" + bytes(d[name]).hex()
    return d


def _job(d: dict[str, Any]) -> Job:
    d = dict(d)
    d["status"] = JobStatus(int(d["status"]))
    for name in _BYTES_FIELDS:
        d[name] = bytes.fromhex(str(d[name])[2:])
    return Job(**d)


#: The :class:`Job` fields that are ``bytes`` (hex strings in the journal).
_BYTES_FIELDS = tuple(f.name for f in dataclasses.fields(Job) if f.type in (bytes, "bytes"))


def job_offers(read_doc: DocReader, job_id: int, job: Job, balance: int, free: Iterable[int]) -> list[Offer]:
    """The offers of one open job's ``free`` task indexes; an unusable document makes offers that
    carry the problem."""
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
    for index in free:
        common = dict(job_id=job_id, task_index=index, task_id=task_id_of(job_id, index),
                      reward=job.reward_per_task, stake=job.stake_per_task, balance=balance)
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

"""A fresh verifier's catch-up costs RPC per job, not per result, and nothing for finished jobs
(issue 25).

On a long chain a verifier started with an empty journal reads every ResultRevealed ever
emitted. It used to call ``getJob`` for each one to learn the job's spec CID; 2,624 earlier
results made a 32-task job cost the verifier twice its requests. The spec CID is fixed when the
job is posted, so it is taken from the JobPosted event (or one read per job, kept).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from verifier.replay import SegmentReplayer
from verifier.service import VerifierService
from verifier.watcher import WatchConfig, Watcher
from veritrain.chain.events import Event
from veritrain.chain.states import JobStatus
from veritrain.errors import StorageError
from veritrain.journal import Journal

ME = "0x" + "aa" * 20
WORKER = "0x" + "bb" * 20


class _Chain:
    address = ME

    def __init__(self) -> None:
        self.reads: list[int] = []

    def spec_cid(self, job_id: int) -> str:
        self.reads.append(job_id)
        return f"cid-of-{job_id}"


def _service(journal: Journal) -> tuple[VerifierService, _Chain]:
    service = VerifierService.__new__(VerifierService)  # only the journal and the chain are used here
    chain = _Chain()
    service.chain, service.journal, service._spec_cids = chain, journal, {}  # type: ignore[assignment]
    return service, chain


def _posted(job_id: int, block: int) -> Event:
    return Event(name="JobPosted", args={"jobId": job_id, "requester": WORKER, "specCid": f"posted-{job_id}"},
                 address=ME, block_number=block, tx_hash="0x" + "01" * 32, log_index=0)


def _revealed(job_id: int, task: int, block: int) -> Event:
    return Event(name="ResultRevealed",
                 args={"taskId": (job_id << 32) | task, "worker": WORKER, "root": "0x" + "11" * 32,
                       "manifestCid": "m", "challengeDeadline": 100},
                 address=ME, block_number=block, tx_hash="0x" + "02" * 32, log_index=task)


def test_results_of_a_posted_job_cost_no_reads(tmp_path: Path) -> None:
    service, chain = _service(Journal(tmp_path / "j.sqlite"))
    service._on_job_posted(_posted(3, 10))
    for t in range(50):
        service._on_revealed(_revealed(3, t, 11 + t))
    assert chain.reads == []
    item = service.journal.get(f"result:{(3 << 32) | 7}:{WORKER}")
    assert item is not None and item.data["spec_cid"] == "posted-3"


def test_a_job_posted_before_the_start_block_is_read_once(tmp_path: Path) -> None:
    service, chain = _service(Journal(tmp_path / "j.sqlite"))
    for job in (4, 5):
        for t in range(30):
            service._on_revealed(_revealed(job, t, 20 + t))
    assert chain.reads == [4, 5]
    assert service.journal.get(f"result:{(5 << 32) | 29}:{WORKER}").data["spec_cid"] == "cid-of-5"  # type: ignore[union-attr]


def test_after_a_restart_the_journaled_posting_answers(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    first, _ = _service(journal)
    first._on_job_posted(_posted(6, 10))
    again, chain = _service(journal)  # a new process: its cache is empty, the journal is not
    again._on_revealed(_revealed(6, 0, 12))
    assert chain.reads == []
    assert journal.get(f"result:{6 << 32}:{WORKER}").data["spec_cid"] == "posted-6"  # type: ignore[union-attr]


class _Storage:
    def __init__(self) -> None:
        self.reads: list[str] = []

    def get_bytes(self, cid: str) -> bytes:
        self.reads.append(cid)
        raise StorageError(f"{cid}: not here")


class _Keys:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def job_key(self, job_id: int) -> bytes | None:
        self.asked.append(job_id)
        return None

    def pending(self, job_id: int) -> bool:
        return False


class _JobChain:
    address = ME

    def __init__(self, jobs: dict[int, Any]) -> None:
        self.jobs = jobs

    def job(self, job_id: int) -> Any:
        return self.jobs[job_id]


def _job(status: JobStatus, settled: int) -> Any:
    return SimpleNamespace(status=status, settled_slots=settled, task_count=4, redundancy=2)


def test_a_job_with_nothing_left_to_check_is_not_asked_for_its_key(tmp_path: Path) -> None:
    """Each old job's key would cost a transaction (requestVerifierKey), the requester's
    delivery and a log search from its posting block: a fresh verifier on a chain of 1,000
    finished jobs would ask 1,000 times."""
    journal, storage, keys = Journal(tmp_path / "j.sqlite"), _Storage(), _Keys()
    chain = _JobChain({1: _job(JobStatus.OPEN, 8), 2: _job(JobStatus.CLOSED, 3),
                       3: _job(JobStatus.CANCELLED, 0), 4: _job(JobStatus.OPEN, 7)})
    watcher = Watcher(chain, journal, SegmentReplayer(storage), keys,  # type: ignore[arg-type]
                      WatchConfig(p=0.1, secret=b"s"))
    for job in chain.jobs:
        journal.put(f"vkey:{job}", "wanted", spec_cid=f"spec-{job}", requester=WORKER, posted_block=1)
        watcher.ask_key(journal.get(f"vkey:{job}"))  # type: ignore[arg-type]
    phases = {job: journal.get(f"vkey:{job}").phase for job in chain.jobs}  # type: ignore[union-attr]
    assert phases == {1: "not_needed", 2: "not_needed", 3: "not_needed", 4: "wanted"}
    assert journal.get("vkey:1").data["detail"] == "every slot of the job is settled"  # type: ignore[union-attr]
    assert storage.reads == ["spec-4"] and keys.asked == []  # only job 4 goes on (its spec is not here yet)

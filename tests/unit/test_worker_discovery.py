"""An IPFS outage is not a bad job (issue 24): discovery must not turn "the node is unreachable"
into offers whose document is unusable (which the policy then skips, exit 0)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from veritrain.errors import StorageError
from veritrain.storage import StorageUnreachableError
from worker.discovery import job_offers


def _reader(error: Exception) -> Any:
    def doc(cid: str) -> Any:
        raise error

    return doc


JOB = SimpleNamespace(spec_cid="bafyjob", task_count=2, redundancy=1, reward_per_task=10, stake_per_task=5)


def test_an_unreachable_ipfs_node_is_raised_not_turned_into_a_skip() -> None:
    down = StorageUnreachableError("reading bafyjob: the IPFS node at /ip4/127.0.0.1/tcp/5001/http "
                                   "is unreachable")
    with pytest.raises(StorageUnreachableError, match="is unreachable"):
        job_offers(_reader(down), 1, JOB, 100, [0, 1])  # type: ignore[arg-type]


def test_a_document_the_node_refuses_is_still_the_job_s_problem() -> None:
    offers = job_offers(_reader(StorageError("reading bafyjob: the IPFS node refused: not found")),
                        1, JOB, 100, [0, 1])  # type: ignore[arg-type]
    assert [o.task_index for o in offers] == [0, 1]
    assert offers[0].problems == ("job document unusable: reading bafyjob: the IPFS node refused: not found",)


def test_the_board_journals_every_bytes_field_of_a_job_and_reads_it_back() -> None:
    """The board keeps open jobs in the journal as JSON: a ``bytes`` view field (the shards and
    the bound starts root) must round-trip, or the first save after a JobPosted event fails."""
    import json

    from veritrain.chain.states import JobStatus
    from veritrain.chain.views import Job
    from worker.discovery import _job, _plain

    job = Job(requester="0x" + "ab" * 20, task_count=3, redundancy=2, checkpoint_count=6,
              reward_per_task=5, stake_per_task=7, key_window=60, submission_window=600,
              griefing_fee=1, referee_fee=2, reveal_window=60, challenge_window=600, escrow=30,
              active_claims=1, settled_slots=0, status=JobStatus.OPEN, shards_root=b"\x11" * 32,
              starts_root=b"\x22" * 32, starts_keyed=True, spec_cid="bafy")
    assert _job(json.loads(json.dumps(_plain(job)))) == job

"""The worker's task state is typed: phases are an enum, payloads a record, writes checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_worker_loop import FakeChain, item

from veritrain.dev.accounts import dev_account
from veritrain.journal import Journal
from veritrain.storage import MemoryStorage
from worker import loop
from worker.settings import WorkerSettings
from worker.task_state import BUSY, STAKED, TERMINAL, TaskPhase, TaskRecord

TASK = 1 << 32


@pytest.fixture
def worker(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = loop.Worker(WorkerSettings(home=tmp_path), dev_account(5), chain=FakeChain(), storage=MemoryStorage())
    yield w
    w.close()


def test_a_misspelt_field_is_refused_where_it_is_written_and_nothing_is_recorded(worker) -> None:  # type: ignore[no-untyped-def]
    it = item(worker, loop.COMMITTING, root="0x" + "11" * 32)
    with pytest.raises(ValueError, match="not a task record field: manifest"):
        worker._set(it, loop.REVEALING, manifest="bafy")
    again = worker.journal.get(it.key)
    assert again is not None and again.phase == TaskPhase.COMMITTING and "manifest" not in again.data


def test_the_record_reads_what_each_phase_wrote(worker) -> None:  # type: ignore[no-untyped-def]
    it = item(worker, loop.COMMITTING, root="0x" + "11" * 32, hashes=["aa", "bb"], cids={"0": "c0"})
    it = worker._set(it, loop.REVEALING, manifest_cid="bafym")
    rec = TaskRecord.of(it)
    assert (rec.task_id, rec.root, rec.manifest_cid, rec.hashes, rec.cids) == (
        TASK, "0x" + "11" * 32, "bafym", ["aa", "bb"], {"0": "c0"})
    assert rec.salt is None
    with pytest.raises(ValueError, match=f"task {TASK}: the journal has no salt yet"):
        rec.require("salt")
    assert TaskPhase(it.phase) is TaskPhase.REVEALING


def test_a_journal_from_another_version_still_reads(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    try:
        it = j.put("task:1", "watching", task_id=1, job_id=0, task_index=0, spec_cid="b", stake=1, reward=2,
                   from_block=3, a_field_from_the_future=True)
        rec = TaskRecord.of(it)
        assert rec.stake == 1 and rec.model_extra == {"a_field_from_the_future": True}
        with pytest.raises(ValueError):  # a phase nobody knows is an error, not a silent skip
            TaskPhase(j.put("task:2", "sleeping").phase)
    finally:
        j.close()


def test_phase_groups_partition_as_the_loop_expects() -> None:
    assert TERMINAL.isdisjoint(BUSY) and TERMINAL.isdisjoint(STAKED)
    assert set(TaskPhase) == TERMINAL | BUSY | STAKED | {TaskPhase.ABANDONING}
    assert TaskPhase.CLAIMING not in STAKED  # nothing is staked before the claim is mined

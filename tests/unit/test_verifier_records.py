"""The verifier's journal records read as typed records with enum phases, whoever wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verifier.records import DisputePhase, DisputeRecord, Duty, ResultPhase, ResultRecord, Role
from verifier.replay import MISMATCH, CheckOutcome, SegmentCheck
from veritrain.journal import Journal


@pytest.fixture
def journal(tmp_path: Path):  # type: ignore[no-untyped-def]
    j = Journal(tmp_path / "v.sqlite")
    yield j
    j.close()


def test_a_segment_check_round_trips_through_the_journal_as_a_typed_record(journal: Journal) -> None:
    check = SegmentCheck(2, MISMATCH, "0x" + "aa" * 32, "0x" + "bb" * 32, "replayed h_{j+1} differs")
    assert json.loads(json.dumps(check.as_dict()))["outcome"] == "mismatch"
    item = journal.put("result:9:0xw", ResultPhase.SEEN, task_id=9, worker="0xw", checks=[check.as_dict()])
    rec = ResultRecord.of(item)
    assert rec.task_id == 9 and rec.checks[0].j == 2
    assert CheckOutcome(rec.checks[0].outcome) is CheckOutcome.MISMATCH
    assert ResultPhase(item.phase) is ResultPhase.SEEN


def test_dispute_records_keep_what_they_do_not_know_and_compare_by_enum(journal: Journal) -> None:
    item = journal.put("dispute:4", "voting", dispute_id=4, task_id=9, role="referee", duty="revealed",
                       accuser_is_worker=False, bond=5)
    rec = DisputeRecord.of(item)
    assert rec.role == Role.REFEREE and rec.duty == Duty.REVEALED and item.phase == DisputePhase.VOTING
    assert rec.model_extra == {"accuser_is_worker": False, "bond": 5}
    with pytest.raises(ValueError):
        ResultRecord.of(journal.put("result:1:0xw", "seen", task_id="not a number"))

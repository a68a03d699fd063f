"""Typed struct views: field order matches the shipped ABIs; values come back typed."""

from __future__ import annotations

from dataclasses import fields

import pytest

from veritrain.artifacts import artifact
from veritrain.chain.states import ClaimStatus, DisputeStatus, JobStatus, Outcome
from veritrain.chain.views import Claim, Dispute, Job, ResolverParams, Task, snake


@pytest.mark.parametrize(("view", "contract", "fn", "extra"), [
    (Job, "JobMarket", "getJob", 0), (Task, "JobMarket", "getTask", 0), (Claim, "JobMarket", "getClaim", 0),
    (Dispute, "DisputeResolver", "getDispute", 1), (ResolverParams, "DisputeResolver", "params", 0),
])
def test_view_fields_follow_the_abi(view, contract, fn, extra) -> None:  # type: ignore[no-untyped-def]
    item = next(f for f in artifact(contract)["abi"] if f.get("type") == "function" and f["name"] == fn)
    abi_names = [snake(c["name"]) for c in item["outputs"][0]["components"]]
    assert [f.name for f in fields(view)][extra:] == abi_names


def test_views_convert_raw_tuples() -> None:
    job = Job.of(("0xR", 2, 1, 5, 10, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, b"\x01" * 32, b"\x02" * 32, True,
                  "bafy"))
    assert job.status is JobStatus.OPEN and job.spec_cid == "bafy" and job.shards_root == b"\x01" * 32
    claim = Claim.of((2, 10, 20, 30, b"c" * 32, b"r" * 32, 0))
    assert claim.status is ClaimStatus.KEY_DELIVERED and claim.status.label == "KeyDelivered"
    ended = Claim.of((7, 10, 20, 30, b"\0" * 32, b"\0" * 32, 1))
    assert ended.status is ClaimStatus.ENDED and ended.disputes == 1
    d = Dispute.of((7, "0xA", 3, 100, "0xB", 5, "0xR", 999, 2, 1, False, b"a" * 32, b"b" * 32), dispute_id=4)
    assert (d.dispute_id, d.task_id) == (4, 7)
    assert (d.status, d.outcome) == (DisputeStatus.VOTING, Outcome.ACCUSED_LOST)
    with pytest.raises(ValueError, match="returned 5 fields"):
        Claim.of((1, 2, 3, 4, 5))

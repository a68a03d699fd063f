"""The requester's scored-job records (requester/store.py ScoredStore) and one pass of
``job serve`` over them (requester/scored.py serve_keys_once), over a fake ScoredRounds: the key
survives a crash between postJob and the record, stays sealed to the requester, and a settled
job is no longer served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from requester.scored import serve_keys_once
from requester.store import ScoredRecord, ScoredStore, seal_key, unseal_key
from veritrain.dev.accounts import dev_account
from veritrain.errors import ConfigError
from veritrain.scored.chain import Phase

ME, OTHER = dev_account(1), dev_account(2)
KEY = bytes(range(32))
CONTRACT = "0x" + "ab" * 20


def _record(doc: str = "bafydoc", job: int | None = None) -> ScoredRecord:
    return ScoredRecord(chain_id=31337, contract=CONTRACT, requester=ME.address, doc_cid=doc, windows=2,
                        sealed_key=seal_key(KEY, ME, doc), job_id=job)


class FakeChain:
    """A ScoredRounds where ``posted`` maps spec CIDs to job ids and ``phases`` job -> phase."""

    def __init__(self, posted: dict[str, int], phases: dict[int, Phase]) -> None:
        self.account, self.phases, self.delivered = ME, phases, []
        self._posted = [{"args": {"specCid": cid, "jobId": job}} for cid, job in posted.items()]

    def logs(self, event: str, **filters: Any) -> list[Any]:
        assert event == "JobPosted" and filters == {"requester": ME.address}
        return self._posted

    def phase(self, job: int, window: int) -> Phase:
        return self.phases[job]

    def deliver_keys(self, job: int, key: bytes) -> list[str]:
        self.delivered.append((job, key))
        return [f"0xasker{job}"]


def test_the_key_is_sealed_to_the_requester_and_kept_across_the_post(tmp_path: Path) -> None:
    store = ScoredStore(tmp_path, 31337, CONTRACT)
    pending = store.save(_record())
    assert pending.stat().st_mode & 0o777 == 0o600
    assert KEY.hex() not in pending.read_text()  # sealed, not in the clear
    assert [r.doc_cid for r in store.pending()] == ["bafydoc"] and store.job_ids() == []
    store.save(_record(job=7))
    assert store.job_ids() == [7] and store.pending() == []
    record = store.load(7)
    assert unseal_key(record, ME) == KEY
    with pytest.raises(ConfigError, match="cannot open its data key"):
        unseal_key(record, OTHER)
    (store.jobs_dir / "7.json").write_text(json.dumps({"chain_id": "x"}))
    with pytest.raises(ConfigError, match="damaged"):
        store.load(7)


def test_serve_recovers_a_job_posted_before_its_record_and_skips_settled_ones(tmp_path: Path) -> None:
    store = ScoredStore(tmp_path, 31337, CONTRACT)
    store.save(_record("bafylost"))  # the poster died after postJob, before writing job 5
    store.save(_record("bafydone", job=3))
    chain: Any = FakeChain({"bafylost": 5, "bafyother": 9}, {3: Phase.SETTLED, 5: Phase.SUBMIT})
    assert serve_keys_once(chain, store) == {5: ["0xasker5"]}
    assert chain.delivered == [(5, KEY)]  # the unsealed key, for the recovered job only
    assert store.job_ids() == [3, 5] and store.pending() == []

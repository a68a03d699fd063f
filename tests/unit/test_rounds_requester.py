"""The requester's round driver (requester.rounds) with a fake market and MemoryStorage: it
posts round r+1 from round r's aggregate, journals the round before posting, and after a
crash between upload and post (or between post and record) resumes without posting twice.
The real stack (real worker, real chain, real IPFS) is tests/integration/test_requester_rounds.py."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from requester import fetch, status
from requester.errors import InsufficientFundsError
from requester.fetch import RoundOutcome
from requester.rounds import RoundDriver
from requester.sdk import Job, Requester
from requester.store import JobRecord, JobStore, Terms, seal_key
from veritrain import crypto
from veritrain.chain.states import JobStatus
from veritrain.checkpoint import CheckpointState
from veritrain.dev.accounts import dev_account
from veritrain.jobdoc import (
    JobDocument,
    ShardRef,
    decode_initial_model,
    encode_initial_model,
    initial_model_binding,
)
from veritrain.spec import load_spec
from veritrain.starts import BoundStarts
from veritrain.storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = dev_account(1)
MARKET = "0x" + "cd" * 20


class Crash(BaseException):
    """The process dies here (not an error anybody catches)."""


class _Sent:
    """A prepared transaction whose ``send()`` gives the receipt (the fake acts when prepared)."""

    def __init__(self, receipt: dict[str, Any]) -> None:
        self.receipt = receipt

    def send(self) -> dict[str, Any]:
        return self.receipt


class FakeMarket:
    """postJob, JobPosted events, job status, token allowance: what the driver touches."""

    def __init__(self) -> None:
        self.address = MARKET
        self.posts: list[tuple[Any, ...]] = []
        self.status: dict[int, JobStatus] = {}
        self.crash: str | None = None  # "before" or "after" the postJob transaction
        self.cancelled: list[int] = []
        me = self

        class Contract:
            address = MARKET

            def postJob(self, params: tuple[Any, ...]) -> _Sent:
                if me.crash == "before":
                    raise Crash()
                me.posts.append(params)
                job_id = 1 + len(me.posts)
                me.status[job_id] = JobStatus.OPEN
                if me.crash == "after":
                    raise Crash()
                return _Sent({"transactionHash": f"0x{job_id:064x}", "blockNumber": 100 + job_id,
                              "job": job_id})

            def cancelJob(self, job_id: int) -> _Sent:
                me.cancelled.append(job_id)
                me.status[job_id] = JobStatus.CANCELLED
                return _Sent({"transactionHash": "0x" + "00" * 32, "refund": 5})

            def events(self, since: int, names: list[str]) -> Any:
                evs = [SimpleNamespace(args={"specCid": p[0], "requester": ACCOUNT.address, "jobId": 2 + i},
                                       block_number=102 + i, tx_hash=f"0x{2 + i:064x}")
                       for i, p in enumerate(me.posts)]
                return SimpleNamespace(poll=lambda: [e for e in evs if e.block_number >= since])

            web3_contract = SimpleNamespace(events=SimpleNamespace(
                JobPosted=lambda: SimpleNamespace(
                    process_receipt=lambda r, errors: [{"args": {"jobId": r["job"]}}]),
                JobCancelled=lambda: SimpleNamespace(
                    process_receipt=lambda r, errors: [{"args": {"refunded": r["refund"]}}])))

        self.market = Contract()
        self.registry = SimpleNamespace(poolSize=lambda: 3)  # the verifiers the stake bound counts
        self.resolver = SimpleNamespace(params=lambda: SimpleNamespace(jackpot_fee_bps=0))  # no jackpot fee
        self.token = SimpleNamespace(allowance=lambda owner, spender: 10**30, balanceOf=lambda a: 50,
                                     decimals=lambda: 1, symbol=lambda: "VTD")

    def get_job(self, job_id: int) -> Any:
        return SimpleNamespace(status=self.status.get(job_id, JobStatus.NONE))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = load_spec(ROOT / "examples" / "digits-mlp.yaml").model_copy(update={"rounds": 3})
    storage = MemoryStorage()
    refs = [ShardRef(index=i, cid=f"bafy{i}", sha256=f"{i:064x}", size=10, examples=10 + 10 * i)
            for i in range(2)]
    doc = JobDocument.create(spec, refs, b"n" * 16)
    doc_cid = storage.put_bytes(doc.to_bytes())
    key = crypto.generate_data_key()
    market = FakeMarket()
    market.status[1] = JobStatus.OPEN
    store = JobStore(tmp_path, 31337, MARKET)
    store.save(JobRecord(chain_id=31337, market=MARKET, requester=ACCOUNT.address, job_id=1, doc_cid=doc_cid,
                         binding=doc.binding, sealed_key=seal_key(key, ACCOUNT, doc_cid),
                         shards_root="0x" + doc.shards_root().hex(), post_block=101,
                         terms=Terms(reward_per_task=3, stake_per_task=2, griefing_fee=0,
                                     referee_fee_pool=0)))
    requester = SimpleNamespace(market=market, storage=storage, store=store, account=ACCOUNT,
                                address=ACCOUNT.address, deployment=SimpleNamespace(deploy_block=0),
                                jackpot_fee=lambda spec, reward: 0)
    verified: list[int] = []

    def verify_round(job: Any, rj: Any, **kw: Any) -> RoundOutcome:  # every round "done", a distinct model
        verified.append(rj.round)
        aggregate = CheckpointState(meta={}, tensors=_model(spec, rj.round + 1))
        return RoundOutcome(rj.round, rj.job_id, [], [10, 20], aggregate, bytes([rj.round]) * 32)

    monkeypatch.setattr(fetch, "verify_round", verify_round)
    done = {"value": True}
    monkeypatch.setattr(status, "round_status", lambda *a: SimpleNamespace(done=done["value"]))

    def new_job() -> Job:  # a fresh process: everything from the record on disk
        return Job(requester, store.load(1), data_key=key)  # type: ignore[arg-type]

    return SimpleNamespace(spec=spec, storage=storage, key=key, market=market, store=store, doc=doc,
                           new_job=new_job, verified=verified, done=done)


def _model(spec: Any, value: float) -> dict[str, np.ndarray]:
    """The spec's model with every parameter set to ``value`` (a round's stand-in aggregate)."""
    from veritrain.training import state

    live = state.initial(spec, JobDocument.create(spec, [ShardRef(index=i, cid=f"bafy{i}", sha256=f"{i:064x}",
                                                                  size=10, examples=10) for i in range(2)],
                                                  b"n" * 16).task_key(0))
    params = live.model.state_dict().items()
    return {f"model/{k}": np.full(tuple(v.shape), value, np.float32) for k, v in params}


def test_round_1_is_posted_from_round_0s_aggregate_with_one_copy_per_shard(setup: Any) -> None:
    job = setup.new_job()
    assert RoundDriver(job).advance() == 2
    rec = setup.store.load(1)
    [r1] = rec.rounds
    assert (r1.round, r1.job_id, r1.previous_job) == (1, 2, 1)
    doc1 = JobDocument.from_bytes(setup.storage.get_bytes(r1.doc_cid))
    assert doc1.round == 1 and doc1.binding == setup.doc.binding and doc1.shards == setup.doc.shards
    [params] = setup.market.posts
    assert params[0] == r1.doc_cid and params[1] == doc1.shards_root() and params[2] == 2  # num_shards tasks
    want = encode_initial_model(setup.spec, doc1.binding, 1, _model(setup.spec, 1))
    # postJob binds every task's start: h_0 from round 0's aggregate, not the seeded model
    assert params[13] == BoundStarts.of(doc1, want).root != BoundStarts.of(setup.doc).root
    assert doc1.initial_model is not None and doc1.initial_model.digest == hashlib.sha256(want).hexdigest()
    for s in range(2):  # each copy opens with its shard's key only
        ref = doc1.initial_model.copy_for(s)
        ct = setup.storage.get_bytes(ref.cid)
        assert hashlib.sha256(ct).hexdigest() == ref.sha256
        plain = crypto.decrypt_bytes(ct, crypto.shard_key(setup.key, doc1.binding, s),
                                     job_id=initial_model_binding(doc1.binding, 1), shard_index=s)
        assert plain == want and set(decode_initial_model(doc1, plain)) == set(_model(setup.spec, 1))
    assert [rj.job_id for rj in job.rounds] == [1, 2]
    assert job.task_ids == [1 << 32, 1 << 32 | 1, 2 << 32, 2 << 32 | 1]


def test_a_crash_between_upload_and_post_resumes_without_uploading_or_posting_twice(setup: Any) -> None:
    setup.market.crash = "before"
    with pytest.raises(Crash):
        RoundDriver(setup.new_job()).advance()
    [r1] = setup.store.load(1).rounds
    assert r1.job_id is None and setup.market.posts == []  # journalled as uploaded, nothing posted
    blobs = len(setup.storage.blobs)
    setup.market.crash = None
    assert RoundDriver(setup.new_job()).advance() == 2  # the restart catches up
    [again] = setup.store.load(1).rounds
    assert again.doc_cid == r1.doc_cid and again.job_id == 2
    assert len(setup.market.posts) == 1 and len(setup.storage.blobs) == blobs
    assert setup.verified == [0]  # not re-aggregated either
    assert RoundDriver(setup.new_job()).advance() == 3  # and round 2 follows round 1 normally


def test_a_crash_after_postjob_finds_the_posted_round_instead_of_posting_again(setup: Any) -> None:
    setup.market.crash = "after"
    with pytest.raises(Crash):
        RoundDriver(setup.new_job()).advance()
    assert len(setup.market.posts) == 1 and setup.store.load(1).rounds[0].job_id is None
    setup.market.crash = None
    driver = RoundDriver(setup.new_job())
    assert driver.advance() == 2 and driver.posted == []  # found through JobPosted, not posted
    assert len(setup.market.posts) == 1 and setup.store.load(1).rounds[0].post_tx == f"0x{2:064x}"


def test_the_last_round_posts_nothing_more(setup: Any) -> None:
    driver = RoundDriver(setup.new_job())
    assert [driver.advance(), driver.advance(), driver.advance()] == [2, 3, None]
    assert len(setup.market.posts) == 2 and [r.round for r in setup.store.load(1).rounds] == [1, 2]


def test_cancel_stops_the_round_under_way_and_posts_no_more(setup: Any) -> None:
    job = setup.new_job()
    driver = RoundDriver(job)
    assert driver.advance() == 2
    assert setup.new_job().cancel() == 5  # another process cancels
    assert setup.market.cancelled == [2] and setup.store.load(1).cancelled
    assert driver.advance() is None and len(setup.market.posts) == 1
    # cancelled on-chain by another tool: the driver notices and stops too
    fresh = setup.store.load(1)
    fresh.cancelled = False
    setup.store.save(fresh)
    assert RoundDriver(setup.new_job()).advance() is None and setup.store.load(1).cancelled


def test_post_job_checks_every_rounds_escrow_before_anything_is_uploaded(setup: Any) -> None:
    req = object.__new__(Requester)
    req.market, req.storage, req.account = setup.market, setup.storage, ACCOUNT
    req.client = SimpleNamespace(w3=None, retry=lambda fn, what: 1)
    blobs = len(setup.storage.blobs)
    rng = np.random.default_rng(0)
    data = (rng.random((40, 64)).astype(np.float32), rng.integers(0, 10, 40))
    short = r"6 VTD over its 3 rounds \(2 VTD per round\) but .* holds 5 VTD"  # 1 decimal: 60 units = 6 VTD
    with pytest.raises(InsufficientFundsError, match=short):
        req.post_job(setup.spec, data, reward_per_task=10, stake_per_task=1)  # holds 50: one round would fit
    assert len(setup.storage.blobs) == blobs and setup.market.posts == []


def test_a_multi_round_status_is_done_only_when_the_last_round_is() -> None:
    from requester.cli import _table
    from requester.status import ClaimView, JobStatusView, RoundView, TaskView

    r0 = [TaskView(1 << 32 | i, i, 10, finalized=1, claims=[ClaimView("0xA", "finalized")]) for i in range(2)]
    between = JobStatusView(job_id=1, state="open", redundancy=1, escrow=5, spec_cid="bafy", tasks=r0,
                            rounds_total=2, rounds=[RoundView(0, 1, "open", "bafy", 2, 2),
                                                    RoundView(1, None, "posting", "bafz")])
    assert not between.done and between.round == 0
    assert between.summary() == "job 1 open: 2/2 tasks final, round 1/2"
    r1 = [TaskView(2 << 32 | i, i, 10, finalized=1, claims=[ClaimView("0xA", "finalized")], round=1)
          for i in range(2)]
    done = JobStatusView(job_id=1, state="open", redundancy=1, escrow=10, spec_cid="bafy", tasks=r0 + r1,
                         rounds_total=2, rounds=[RoundView(0, 1, "open", "bafy", 2, 2),
                                                 RoundView(1, 2, "open", "bafz", 2, 2)])
    assert done.done and done.to_dict()["rounds"][1]["job_id"] == 2
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(_table(done))
    assert f"{2 << 32 | 1} (round 1 shard 1)" in console.export_text()  # the on-chain id names it
    single = JobStatusView(job_id=1, state="open", redundancy=1, escrow=5, spec_cid="bafy", tasks=r0)
    assert single.done and "rounds" not in single.to_dict()  # single-round jobs keep their shape


def test_a_later_rounds_onchain_id_opens_the_job_it_belongs_to(setup: Any) -> None:
    RoundDriver(setup.new_job()).advance()
    req = object.__new__(Requester)
    req.store = setup.store
    assert req._round_parent(2) == 1 and req._round_parent(3) is None


def test_a_round_under_way_is_not_advanced(setup: Any) -> None:
    setup.done["value"] = False  # some slot of some task is not final yet
    assert RoundDriver(setup.new_job()).advance() is None
    assert setup.market.posts == [] and setup.verified == [] and setup.store.load(1).rounds == []

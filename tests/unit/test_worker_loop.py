"""The worker's phases with a fake chain (the code below the loop), crash by crash."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_abi import encode
from sha3 import keccak_256

from veritrain.chain.receipts import commitment
from veritrain.chain.states import ClaimStatus
from veritrain.dev.accounts import dev_account
from veritrain.errors import ContractRevert
from veritrain.storage import MemoryStorage
from worker import loop
from worker.settings import WorkerSettings

MARKET = "0x" + "ab" * 20


class Call:
    def __init__(self, name: str, *args: Any) -> None:
        self.name, self.args = name, args

    def estimate(self) -> Call:
        return self  # (a claim is estimated before the worker reads the mempool)

    def checked(self, last_look: Any) -> Call:
        return self  # (the mempool look: tests/integration/test_task_board.py)


class Functions:
    """A contract facade whose every method prepares a :class:`Call` (what the worker sends)."""

    def __init__(self, address: str = "", **views: Any) -> None:
        self.address = address
        self.__dict__.update(views)

    def __getattr__(self, name: str) -> Any:
        return lambda *args: Call(name, *args)


class FakeChain:
    """Just enough of worker.chain.WorkerChain: statuses, time, and a log of sends."""

    chain_id = 31337

    def __init__(self) -> None:
        self.market = Functions(MARKET)
        self.token = Functions(decimals=lambda: 18, symbol=lambda: "VTD")
        self.status = ClaimStatus.NONE
        self.time = 1000
        self.sent: list[Call] = []
        self.fail_next: BaseException | None = None
        self.task_state = SimpleNamespace(committed=1, reveal_from=5000)
        self.job_state = SimpleNamespace(redundancy=2, reveal_window=100, reward_per_task=7)
        self.looks: list[str] = []  # the last look's reads, in order

    def one_head(self) -> Any:  # one pass's shared head read: nothing to share here
        return contextlib.nullcontext()

    def status_of(self, task_id: int) -> ClaimStatus:
        return self.status

    def claim_of(self, task_id: int) -> Any:
        return SimpleNamespace(key_deadline=1600, commit_deadline=5000, challenge_deadline=9000)

    def pending_tx(self, journal: Any, item: str, action: str) -> None:
        return None

    def send(self, fn: Call, journal: Any, item: str, action: str) -> Any:
        tx = journal.tx_intent(item, action)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        journal.tx_update(tx, "mined", "0x01")
        self.sent.append(fn)
        return {"status": 1}

    def send_once(self, fn: Call, journal: Any, item: str, action: str) -> Any:
        return self.send(fn, journal, item, action)  # nothing is ever pending on this chain

    def now(self) -> int:
        return self.time

    def balance(self) -> int:
        return 100

    def allowance(self) -> int:
        return 0

    def pending_claims(self) -> dict[int, int]:
        self.looks.append("mempool")
        return {}  # no rival claim waits in the mempool

    def simulate_claim(self, task_id: int, pubkey: bytes, seed_hash: bytes) -> None:
        self.looks.append("simulation")

    def task(self, task_id: int) -> Any:
        return self.task_state

    def job(self, job_id: int) -> Any:
        return self.job_state


@pytest.fixture
def worker(tmp_path: Path) -> Any:
    w = loop.Worker(WorkerSettings(home=tmp_path), dev_account(5), chain=FakeChain(), storage=MemoryStorage())
    yield w
    w.close()


def item(w: Any, phase: str, **data: Any) -> Any:
    base = dict(task_id=(1 << 32), job_id=1, task_index=0, spec_cid="bafy", stake=10, reward=7, from_block=0)
    return w.journal.put(f"task:{1 << 32}", phase, **{**base, **data})


def test_commitment_is_keccak_of_abi_encoded_root_worker_salt() -> None:
    root, salt, who = b"\x01" * 32, b"\x02" * 32, dev_account(5).address
    expected = keccak_256(encode(["bytes32", "address", "bytes32"], [root, who, salt])).digest()
    assert commitment(root, who, salt) == expected


def test_claim_sends_approve_and_claim_once(worker: Any) -> None:
    it = item(worker, loop.CLAIMING)
    assert worker.advance(it)
    assert [c.name for c in worker.chain.sent] == ["approve", "claim"]
    assert worker.chain.sent[1].args[1] == bytes(worker.pubkey) and len(worker.pubkey) == 64
    got = worker.journal.get(it.key)
    assert got.phase == loop.AWAITING_KEY and got.data["key_deadline"] == 1600


def test_the_forced_error_secret_is_journaled_before_the_claim_that_commits_to_it(worker: Any) -> None:
    """docs/spec/forced.md: the claim carries keccak(secret); only the journaled secret opens it
    (answerForced). A crash after the send must find the same secret, not draw a new one."""
    it = item(worker, loop.CLAIMING)
    sent_with: list[bytes] = []
    send = worker.chain.send

    def spy(fn: Any, journal: Any, key: str, action: str) -> Any:
        if action == "claim":  # the secret is on disk when the claim leaves
            sent_with.append(bytes.fromhex(journal.get(key).data["forced_secret"]))
        return send(fn, journal, key, action)

    worker.chain.send = spy
    worker.advance(it)
    claim = worker.chain.sent[-1]
    assert claim.name == "claim" and claim.args[2] == keccak_256(sent_with[0]).digest()
    assert worker.journal.get(it.key).data["forced_secret"] == sent_with[0].hex()


def test_claim_reentered_after_a_crash_does_not_claim_again(worker: Any) -> None:
    it = item(worker, loop.CLAIMING)
    # the claim was mined, the process died before the journal moved
    worker.chain.status = ClaimStatus.CLAIMED
    assert worker.advance(it)
    assert worker.chain.sent == []
    assert worker.journal.get(it.key).phase == loop.AWAITING_KEY


def test_losing_the_race_is_a_clean_refusal(worker: Any) -> None:
    it = item(worker, loop.CLAIMING)
    worker.chain.fail_next = ContractRevert("JobMarketTaskFull", {"taskId": 1 << 32})
    worker.chain.allowance = lambda: 10**9
    assert worker.advance(it)
    got = worker.journal.get(it.key)
    assert got.phase == loop.NOT_CLAIMED and "JobMarketTaskFull" in got.data["reason"]
    assert [t.action for t in worker.journal.txs(it.key)] == ["claim"]  # no retry of a lost race


def test_a_first_claim_in_a_job_or_one_for_its_last_free_slots_waits_a_random_moment_first(
        worker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers woken by one block claimed the last slots at the same instant: one claim was
    mined as a revert (issue 25). With few free slots each waits its own random moment."""
    from types import SimpleNamespace

    waits: list[float] = []
    monkeypatch.setattr(loop.time, "sleep", waits.append)
    monkeypatch.setattr(worker._jitter, "uniform", lambda low, high: high)  # the longest wait
    job_id = item(worker, loop.CLAIMING).data["job_id"]
    for free in (loop.CONTENDED + 1, loop.CONTENDED + 1, loop.CONTENDED, 4, 1):
        worker._board = SimpleNamespace(jobs={job_id: None}, free=lambda j, n=free: list(range(n)),
                                        mark=lambda tid: None)
        worker.chain.status = ClaimStatus.NONE
        worker.advance(item(worker, loop.CLAIMING))
    # the first claim in the job (every worker woken by its posting picks at once), then only
    # the contended ones, and the fewer slots are left the wider the wait (to its cap)
    assert waits == [loop.CLAIM_JITTER_SECONDS, loop.CLAIM_JITTER_SECONDS, 2 * loop.CLAIM_JITTER_SECONDS,
                     loop.MAX_CLAIM_JITTER_SECONDS]


def test_the_last_look_simulates_the_claim_last(worker: Any) -> None:
    """Only the simulation's round trip may lie between the last look and the send: a rival's
    claim mined in that window makes ours a mined revert (29k gas, no decoded reason)."""
    worker._last_look(1, 1 << 32, bytes(32))
    assert worker.chain.looks == ["mempool", "simulation"]


def test_salt_is_journalled_before_the_commit_and_survives_a_crash(worker: Any) -> None:
    it = item(worker, loop.COMMITTING, root="0x" + "33" * 32, commit_deadline=5000)
    worker.chain.status = ClaimStatus.KEY_DELIVERED
    worker.chain.fail_next = ConnectionError("RPC died mid-send")
    with pytest.raises(ConnectionError):
        worker.advance(it)
    salt = worker.journal.get(it.key).data["salt"]
    assert worker.journal.get(it.key).phase == loop.COMMITTING
    assert worker.advance(worker.journal.get(it.key))  # restart: same salt, commit goes out
    (call,) = worker.chain.sent
    assert call.name == "commit"
    assert call.args[1] == commitment(b"\x33" * 32, worker.address, bytes.fromhex(salt))
    assert worker.journal.get(it.key).phase == loop.REVEALING


def test_commit_after_the_deadline_times_out_instead_of_sending(worker: Any) -> None:
    it = item(worker, loop.COMMITTING, root="0x" + "33" * 32, commit_deadline=900)
    worker.chain.status = ClaimStatus.KEY_DELIVERED
    assert worker.advance(it)
    assert worker.chain.sent == [] and worker.journal.get(it.key).phase == loop.TIMED_OUT


def test_reveal_waits_for_the_window_then_reveals_and_watches(worker: Any) -> None:
    it = item(worker, loop.REVEALING, root="0x" + "33" * 32, salt="44" * 32, manifest_cid="bafym")
    worker.chain.status = ClaimStatus.COMMITTED
    assert worker.advance(it) is loop.WAIT  # 1 of 2 slots committed, before revealFrom
    worker.chain.time = 5001
    assert worker.advance(worker.journal.get(it.key))
    (call,) = worker.chain.sent
    assert call.name == "reveal" and call.args[1:] == (b"\x33" * 32, b"\x44" * 32, "bafym")
    assert worker.journal.get(it.key).data["challenge_deadline"] == 9000


def test_reveal_window_missed_is_recorded(worker: Any) -> None:
    it = item(worker, loop.REVEALING, root="0x" + "33" * 32, salt="44" * 32, manifest_cid="bafym")
    worker.chain.status, worker.chain.time = ClaimStatus.COMMITTED, 5101
    assert worker.advance(it) and worker.journal.get(it.key).phase == loop.TIMED_OUT


def test_key_deadline_passed_leads_to_abandon(worker: Any) -> None:
    worker.chain.market.logs = lambda *a, **k: []
    it = item(worker, loop.AWAITING_KEY, key_deadline=1600)
    worker.chain.status = ClaimStatus.CLAIMED
    assert worker.advance(it) is loop.WAIT
    worker.chain.time = 1601
    assert worker.advance(worker.journal.get(it.key))
    assert worker.journal.get(it.key).phase == loop.ABANDONING
    worker.advance(worker.journal.get(it.key))
    assert [c.name for c in worker.chain.sent] == ["abandon"]
    assert worker.journal.get(it.key).phase == loop.ABANDONED


def test_a_second_worker_process_on_the_same_key_and_home_is_refused(worker: Any, tmp_path: Path) -> None:
    from veritrain.errors import ConfigError

    with pytest.raises(ConfigError, match="another worker process already runs"):
        loop.Worker(WorkerSettings(home=tmp_path), dev_account(5), chain=FakeChain(), storage=MemoryStorage())
    other = loop.Worker(WorkerSettings(home=tmp_path), dev_account(6), chain=FakeChain(),
                        storage=MemoryStorage())
    assert other.dir != worker.dir
    other.close()


def test_referee_keys_already_on_chain_are_not_delivered_again(worker: Any) -> None:
    from veritrain import envelope
    from veritrain.chain.views import Ballot, Verifier

    a, b = dev_account(7).address, dev_account(8).address
    pubs = {r: envelope.public_key_from_private(bytes(dev_account(i).key)) for r, i in ((a, 7), (b, 8))}
    chain = worker.chain
    # the requester's key service already served `a` (its RefereeKeyDelivered is on-chain)
    served = [SimpleNamespace(args=SimpleNamespace(referee=a.lower()))]
    chain.resolver = Functions(
        "0x" + "cd" * 20,
        getBallots=lambda d: [Ballot.of(seat) for seat in zip([a, b], [0, 0], [b"", b""], strict=True)],
        logs=lambda ev, frm, **f: served if ev == "RefereeKeyDelivered" and f == {"disputeId": 9} else [])
    chain.registry = Functions(getVerifier=lambda r: Verifier.of((1, 0, 0, 10, pubs[r])))
    worker.data_key = lambda it: b"\x07" * 32
    it = item(worker, loop.WATCHING)
    rec = worker.journal.put("dispute:9", "open", task=it.data["task_id"], served=[])
    assert worker.disputes().deliver_keys(it, 9, rec)
    assert [(c.name, c.args[1]) for c in chain.sent] == [("deliverRefereeKey", b)]
    assert worker.journal.get("dispute:9").data["served"] == [a, b]
    chain.sent.clear()
    assert not worker.disputes().deliver_keys(it, 9, worker.journal.get("dispute:9"))
    assert chain.sent == []


def test_pick_reconsiders_a_task_it_lost_once_but_never_one_it_holds_or_finished(worker: Any,
                                                                               monkeypatch: Any) -> None:
    from worker.policy import Decision

    tid = lambda i: (1 << 32) | i  # noqa: E731
    offers = [SimpleNamespace(task_id=tid(i), job_id=1, task_index=i, reward_per_step=1) for i in range(5)]
    monkeypatch.setattr(worker, "offers", lambda: offers)
    monkeypatch.setattr(loop, "choose", lambda offers, policy, machine, exclude, rank: (
        next((o for o in offers if o.task_id not in exclude), None),
        [(o, Decision(True, ())) for o in offers]))
    worker.chain.block_number = lambda: 7
    for i, phase in enumerate((loop.NOT_CLAIMED, loop.TRAINING, loop.FINALIZED, loop.SLASHED)):
        worker.journal.put(f"task:{tid(i)}", phase, task_id=tid(i), salt="aa" * 32, root="0x01")
    assert worker.pick().task_id == tid(0)  # lost a race once; the task reopened: a fresh offer
    worker.journal.put(f"task:{tid(0)}", loop.ABANDONED)
    worker.journal.put(f"task:{tid(3)}", loop.SLASHED)
    assert worker.pick().task_id == tid(0)
    worker.journal.put(f"task:{tid(0)}", loop.TRAINING)
    assert worker.pick().task_id == tid(4)  # 1 busy, 2 finished, 3 slashed, 0 in progress again


def test_retaking_a_reopened_task_starts_a_fresh_record(worker: Any) -> None:
    worker.chain.block_number = lambda: 7
    worker.chain.job = lambda job_id: SimpleNamespace(spec_cid="bafy")
    old = worker.journal.put(f"task:{1 << 32}", loop.TIMED_OUT, task_id=1 << 32, salt="aa" * 32, root="0x01")
    offer = SimpleNamespace(task_id=1 << 32, job_id=1, task_index=0, stake=10, reward=7)
    it = worker.take(offer)
    assert it.phase == loop.CLAIMING and "salt" not in it.data and "root" not in it.data
    assert worker.journal.get(f"attempt:{1 << 32}:0").data == old.data  # the earlier attempt is kept


def test_declined_offers_are_summarized_once_per_job_and_reason_not_per_task_per_poll(worker: Any) -> None:
    from worker.policy import Decision

    said: list[str] = []
    worker.say = said.append
    no = Decision(False, ("the job pins torch 9.9",))
    decisions = [(SimpleNamespace(task_id=i, job_id=1), no) for i in range(500)]
    for _ in range(3):  # three idle polls, same offers
        worker._summarize_skips(decisions)
    assert said == ["job 1: skipping 500 tasks: the job pins torch 9.9"]
    worker._summarize_skips(decisions + [(SimpleNamespace(task_id=9, job_id=2), no)])
    assert said[1:] == ["job 1: skipping 500 tasks: the job pins torch 9.9",
                        "job 2: skipping 1 task: the job pins torch 9.9"]


def test_each_worker_orders_a_job_s_tasks_its_own_way(tmp_path: Path) -> None:
    offers = [SimpleNamespace(task_id=(1 << 32) | i) for i in range(64)]
    firsts = set()
    for n in range(4):
        w = loop.Worker(WorkerSettings(home=tmp_path / str(n)), dev_account(5), chain=FakeChain(),
                        storage=MemoryStorage(), lock=False)
        firsts.add(min(offers, key=w._rank).task_id)
        assert min(offers, key=w._rank) is min(reversed(offers), key=w._rank)  # a stable order
        w.close()
    assert len(firsts) > 1  # not every worker goes for the same (lowest) task


def test_a_claim_lost_after_it_left_does_not_count_toward_max_tasks(worker: Any, monkeypatch: Any) -> None:
    """The demo's honest workers run with ``--max-tasks`` so each gets a task: one whose claim
    showed as lost only after its pass (a revert mined later, a reorg that let a rival take
    the slot) would stop one task short, and the job would never finish."""
    tid = lambda i: (1 << 32) | i  # noqa: E731
    offers = [SimpleNamespace(task_id=tid(i), job_id=1, task_index=i, stake=10, reward=7) for i in range(2)]
    picked: list[int] = []

    def pick() -> Any:
        held = {int(i.key.split(":")[1]) for i in worker.journal.items("task:")
                if i.phase != loop.NOT_CLAIMED}
        offer = next((o for o in offers if o.task_id not in held and o.task_id not in picked), None)
        if offer is not None:
            picked.append(offer.task_id)
        return offer

    def take(offer: Any) -> Any:  # the claim leaves and is seen in a block
        return worker.journal.put(f"task:{offer.task_id}", loop.AWAITING_KEY, task_id=offer.task_id)

    monkeypatch.setattr(worker, "pick", pick)
    monkeypatch.setattr(worker, "take", take)
    monkeypatch.setattr(worker, "tick", lambda: False)
    monkeypatch.setattr(worker, "active", lambda: [])  # nothing busy between passes
    summary = loop.Summary()
    assert worker._pass(summary, False, 1) == "moved" and picked == [tid(0)]
    # a reorg drops the claim and a rival's takes the slot: the worker learns it lost the race
    worker.journal.put(f"task:{tid(0)}", loop.NOT_CLAIMED, reason="somebody else took the slot first")
    assert worker._pass(summary, False, 1) == "moved" and picked == [tid(0), tid(1)]
    assert worker._pass(summary, False, 1) == "done"  # one task held: --max-tasks 1 is met


def _finalizing(worker: Any, drawn: int | None) -> Any:
    worker.chain.status = ClaimStatus.REVEALED
    worker.chain.market.sealOf = lambda task_id, who: bytes(32)  # sealed, lowest bit clear: not opened
    worker.chain.resolver = Functions()
    worker.chain.job = lambda job_id: SimpleNamespace(reward_per_task=7)
    return item(worker, loop.FINALIZING, forced_secret="11" * 32, forced_snap="22" * 32, forced_segment=drawn)


def test_a_forced_job_s_claim_opens_its_seed_then_is_finalized(worker: Any) -> None:
    """docs/spec/forced.md: finalize reverts until the seed is opened; a claim not drawn is
    finalized right after."""
    it = _finalizing(worker, drawn=None)
    assert worker.advance(it)
    assert [c.name for c in worker.chain.sent] == ["openSeed", "finalize"]
    assert worker.chain.sent[0].args == (1 << 32, worker.address, b"\x11" * 32, b"\x22" * 32)
    assert worker.journal.get(it.key).phase == loop.FINALIZED


def test_a_drawn_claim_waits_one_more_window_after_opening_its_seed(worker: Any) -> None:
    it = _finalizing(worker, drawn=2)
    assert worker.advance(it)
    assert [c.name for c in worker.chain.sent] == ["openSeed"]
    got = worker.journal.get(it.key)
    assert got.phase == loop.WATCHING and got.data["challenge_deadline"] is None  # read again from the chain
    worker.chain.market.sealOf = lambda task_id, who: b"\x00" * 31 + b"\x01"  # opened
    worker.journal.put(it.key, loop.FINALIZING)
    assert worker.advance(worker.journal.get(it.key))
    assert [c.name for c in worker.chain.sent] == ["openSeed", "finalize"]  # opened once only

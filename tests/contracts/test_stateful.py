"""Random sequences of every action by several accounts (Hypothesis RuleBasedStateMachine).

Disputes include decoys (a challenge of a segment where the worker is right, several
disputes of one claim at once), answers or silence from the accused (data availability), and
disputes nobody draws until they lapse.

After every step: the market's token balance equals its liabilities, and every live claim and
open dispute has a deadline after which someone can move it on. At the end of every sequence
the chain is driven far into the future and every exit is taken (settle, abandon, timeout,
finalize, close, unbond, withdraw): the market must end holding nothing — no token is left
without an owner. Sequences are isolated with evm_snapshot / evm_revert.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from contracts.conftest import E18, STARTS, Env, job_tuple
from contracts.helpers import Tree, commitment, hashes, pubkey
from veritrain.chain.states import ClaimStatus, DisputeStatus, JobStatus

LEAVES = 5
HONEST = Tree(hashes(LEAVES))
CHEAT = Tree(hashes(LEAVES, diverge_at=2))
WRONG_START = Tree([keccak(b"elsewhere"), *hashes(LEAVES)[1:]])  # started off the bound h_0
TREES = {"honest": HONEST, "cheat": CHEAT, "wrong-start": WRONG_START}
SALT = b"\x21" * 32
J = 1  # both trees agree on h_0, h_1 and differ from h_2 on
FAR = 60 * 86_400
LIVE = {ClaimStatus.CLAIMED, ClaimStatus.KEY_DELIVERED, ClaimStatus.COMMITTED, ClaimStatus.REVEALED,
        ClaimStatus.DISPUTED}
ENDED = ClaimStatus.ENDED
OPEN_DISPUTE = (DisputeStatus.DRAWING, DisputeStatus.VOTING, DisputeStatus.ANSWERING)

_state: dict[str, Any] = {}


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.env: Env = _state["env"]
        self.snap = self.env.chain.snapshot()
        self.env.chain.reset_nonces()
        self.jobs: list[tuple[int, Any, int, int]] = []  # (jobId, requester, taskCount, redundancy)
        self.roots: dict[tuple[int, str], Tree] = {}
        self.disputes: list[int] = []
        self.touched: set[tuple[int, str]] = set()  # (task, worker) pairs a rule acted on
        self.requesters = [self.env.requester, self.env.outsiders[0]]
        self.workers = self.env.workers
        # the owner last: it is paid the protocol's share of wrong-start slashes
        self.accounts = [*self.requesters, *self.workers, *self.env.verifiers, self.env.outsiders[1],
                         self.env.owner]

    # ------------------------------------------------------------------ helpers
    def tx(self, account: Any, call: Any) -> bool:
        return self.env.send(account, call, check=False)["status"] == 1

    def tasks(self) -> list[int]:
        return [(j << 32) | i for j, _, n, _ in self.jobs for i in range(n)]

    def job_of(self, task: int) -> tuple[int, Any, int, int]:
        return next(j for j in self.jobs if j[0] == task >> 32)

    # ------------------------------------------------------------------ rules
    @rule(who=st.integers(0, 1), tasks=st.integers(1, 2), red=st.integers(1, 2), pool=st.sampled_from([0, 9]),
          keyed=st.booleans())
    def post(self, who: int, tasks: int, red: int, pool: int, keyed: bool) -> None:
        req = self.requesters[who]
        call = self.env.market.functions.postJob(
            job_tuple(taskCount=tasks, redundancy=red, checkpointCount=LEAVES, refereeFeePool=pool * E18,
                      startsKeyed=keyed)
        )
        if self.tx(req, call):
            self.jobs.append((self.env.market.functions.jobCount().call(), req, tasks, red))

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), w=st.integers(0, 2), kind=st.sampled_from(sorted(TREES)), steps=st.integers(1, 4))
    def work(self, data: st.DataObject, w: int, kind: str, steps: int) -> None:
        """Up to ``steps`` of claim -> key -> commit -> reveal for one worker on one task."""
        task = data.draw(st.sampled_from(self.tasks()))
        worker, m = self.workers[w], self.env.market.functions
        _, requester, _, _ = self.job_of(task)
        tree = TREES[kind]
        self.touched.add((task, worker.address))
        for _ in range(steps):
            status = m.getClaim(task, worker.address).call()[0]
            if status in (ClaimStatus.NONE, ENDED):
                self.tx(worker, m.claim(task, pubkey(worker), bytes(32)))
            elif status == ClaimStatus.CLAIMED:
                self.tx(requester, m.deliverKey(task, worker.address, b"env"))
            elif status == ClaimStatus.KEY_DELIVERED:
                if self.tx(worker, m.commit(task, commitment(tree.root, worker.address, SALT))):
                    self.roots[(task, worker.address)] = tree
            elif status == ClaimStatus.COMMITTED:
                root = self.roots[(task, worker.address)].root
                self.tx(worker, m.reveal(task, root, SALT, "bafy"))

    @rule(seconds=st.sampled_from([60, 150, 700, 1500, 90_000]))
    def warp(self, seconds: int) -> None:
        self.env.chain.warp(seconds)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), w=st.integers(0, 2), kind=st.sampled_from(["abandon", "timeout", "finalize"]))
    def poke(self, data: st.DataObject, w: int, kind: str) -> None:
        task = data.draw(st.sampled_from(self.tasks()))
        fn = getattr(self.env.market.functions, kind)
        self.tx(self.env.outsiders[1], fn(task, self.workers[w].address))

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), close=st.booleans())
    def cancel_or_close(self, data: st.DataObject, close: bool) -> None:
        job_id, requester, _, _ = data.draw(st.sampled_from(self.jobs))
        m = self.env.market.functions
        self.tx(requester, m.closeJob(job_id) if close else m.cancelJob(job_id))

    @rule(i=st.integers(0, 11))
    def withdraw(self, i: int) -> None:
        self.tx(self.accounts[i], self.env.market.functions.withdraw())

    @precondition(lambda self: self.roots)
    @rule(data=st.data(), v=st.integers(0, 6), decoy=st.booleans())
    def challenge(self, data: st.DataObject, v: int, decoy: bool) -> None:
        """A challenge of segment J (where the trees differ) or, as a decoy, of segment 0 (where
        every tree agrees); the claim may already be in dispute."""
        (task, worker), tree = data.draw(st.sampled_from(sorted(self.roots.items())))
        other = HONEST if tree is CHEAT else CHEAT
        j = 0 if decoy else J
        claimed = b"\x66" * 32 if decoy else other.hashes[J + 1]
        call = self.env.resolver.functions.challenge(task, worker, j, claimed)
        if self.tx(self.env.verifiers[v], call):
            self.disputes.append(self.env.resolver.functions.disputeCount().call())

    @precondition(lambda self: self.roots)
    @rule(data=st.data(), who=st.integers(0, 11))
    def slash_start(self, data: st.DataObject, who: int) -> None:
        """Anyone proves a root's leaf 0 against the bound start (only a wrong start, revealed
        or disputed, is slashed; any other attempt reverts)."""
        (task, worker), tree = data.draw(st.sampled_from(sorted(self.roots.items())))
        index = task & 0xFFFFFFFF
        call = self.env.market.functions.slashWrongStart(
            task, worker, tree.hashes[0], tree.proof(0), STARTS.hashes[index], STARTS.proof(index))
        self.tx(self.accounts[who], call)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), w=st.integers(0, 2))
    def refuse_start(self, data: st.DataObject, w: int) -> None:
        """A worker refuses its keyed bound start (only a keyed job's uncommitted claim, in time,
        is released with its stake and the griefing fee; any other attempt reverts)."""
        task = data.draw(st.sampled_from(self.tasks()))
        self.tx(self.workers[w], self.env.market.functions.refuseStart(task))

    @precondition(lambda self: self.disputes)
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        """The accused answers a challenge with its leaves and proofs (or tries to, too late)."""
        did = data.draw(st.sampled_from(self.disputes))
        r = self.env.resolver.functions
        d = r.getDispute(did).call()
        tree = self.roots.get((d[0], d[1]))
        if tree is not None and d[8] == 4:
            self.tx(self.env.outsiders[1], r.answer(did, tree.segment(d[2])))

    @precondition(lambda self: len(self.roots) >= 2)
    @rule(data=st.data())
    def dispute_workers(self, data: st.DataObject) -> None:
        (ta, a), tree_a = data.draw(st.sampled_from(sorted(self.roots.items())))
        (_, b), tree_b = data.draw(st.sampled_from(sorted(self.roots.items())))
        call = self.env.resolver.functions.disputeWorkers(ta, a, tree_a.segment(J), b, tree_b.segment(J))
        if self.tx(self.env.outsiders[1], call):
            self.disputes.append(self.env.resolver.functions.disputeCount().call())

    @precondition(lambda self: self.disputes)
    @rule(
        data=st.data(),
        votes=st.lists(st.sampled_from(["honest", "cheat", "none", "skip"]), min_size=3, max_size=3),
    )
    def referee(self, data: st.DataObject, votes: list[str]) -> None:
        """Draw if needed, then each referee commits and reveals its vote (or stays silent)."""
        did = data.draw(st.sampled_from(self.disputes))
        r = self.env.resolver.functions
        self.tx(self.env.outsiders[1], r.drawCommittee(did))
        referees = r.getBallots(did).call()[0]
        by_addr = {v.address: v for v in self.env.verifiers}
        values = {"honest": HONEST.hashes[J + 1], "cheat": CHEAT.hashes[J + 1], "none": b"\0" * 32}
        for seat, (ref, vote) in enumerate(zip(referees, votes, strict=False)):
            if vote != "skip":
                self.tx(by_addr[ref], r.commitVote(did, seat, commitment(values[vote], ref, SALT)))
        for seat, (ref, vote) in enumerate(zip(referees, votes, strict=False)):
            if vote != "skip":
                self.tx(by_addr[ref], r.revealVote(did, seat, values[vote], SALT))

    @precondition(lambda self: self.disputes)
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        self.tx(
            self.env.outsiders[1],
            self.env.resolver.functions.settle(data.draw(st.sampled_from(self.disputes))),
        )

    @rule(v=st.integers(0, 6), leave=st.booleans())
    def verifier_unbond(self, v: int, leave: bool) -> None:
        reg = self.env.registry.functions
        self.tx(self.env.verifiers[v], reg.deregister() if leave else reg.withdrawStake())

    # ------------------------------------------------------------------ invariants
    @invariant()
    def solvent(self) -> None:
        self.env.assert_solvent()

    @invariant()
    def every_live_claim_and_dispute_has_a_deadline_exit(self) -> None:
        m = self.env.market.functions
        for task, worker in sorted(self.touched):
            status, key_dl, commit_dl, challenge_dl, _, _, open_disputes = m.getClaim(task, worker).call()
            if status in (ClaimStatus.CLAIMED, ClaimStatus.KEY_DELIVERED):
                assert key_dl > 0 and commit_dl > key_dl
            elif status == ClaimStatus.COMMITTED:
                assert m.revealDeadline(task).call() > 0
            elif status == ClaimStatus.REVEALED:
                assert challenge_dl > 0
            elif status == ClaimStatus.DISPUTED:
                open_here = sum(self._dispute_open_on(d, task, worker) for d in self.disputes)
                assert open_here == open_disputes > 0

    def _dispute_open_on(self, did: int, task: int, worker: str) -> bool:
        d = self.env.resolver.functions.getDispute(did).call()
        # (taskId, accused, segment, drawBlock, accuser, bond, requester, deadline, status, ...)
        return d[0] == task and worker in (d[1], d[4]) and d[8] in OPEN_DISPUTE and d[7] > 0

    # ------------------------------------------------------------------ teardown: every exit
    def teardown(self) -> None:
        try:
            self._drain()
        finally:
            self.env.chain.revert(self.snap)

    def _drain(self) -> None:
        env, m, r = self.env, self.env.market.functions, self.env.resolver.functions
        env.chain.warp(FAR)
        settled = False
        for did in self.disputes:
            if r.getDispute(did).call()[8] in OPEN_DISPUTE:
                assert self.tx(env.outsiders[1], r.settle(did))
                settled = True
        if settled:  # a claim released by a dismissed dispute gets a full challenge window again
            env.chain.warp(FAR)
        exits = {ClaimStatus.CLAIMED: "abandon", ClaimStatus.KEY_DELIVERED: "timeout",
                 ClaimStatus.COMMITTED: "timeout", ClaimStatus.REVEALED: "finalize"}
        for task, worker in sorted(self.touched):
            status = m.getClaim(task, worker).call()[0]
            if status in exits:
                assert self.tx(env.outsiders[1], getattr(m, exits[status])(task, worker)), (
                    exits[status],
                    task,
                )
            assert status not in LIVE or status in exits, f"claim stuck in status {status}"
        for job_id, requester, _, _ in self.jobs:
            status = env.job(job_id)["status"]
            if status == JobStatus.OPEN:
                assert self.tx(requester, m.cancelJob(job_id))
            if status != JobStatus.CLOSED:
                assert self.tx(requester, m.closeJob(job_id)), f"job {job_id} cannot close"
        reg = env.registry.functions
        for v in env.verifiers:
            if reg.isActive(v.address).call():
                assert self.tx(v, reg.deregister())
        env.chain.warp(FAR)
        for v in env.verifiers:
            if reg.getVerifier(v.address).call()[0] == 2:
                assert self.tx(v, reg.withdrawStake())
        for acct in self.accounts:
            if env.owed(acct):
                assert self.tx(acct, m.withdraw())
        assert env.balance(env.market.address) == 0, "tokens left in the market after every exit"
        assert m.liabilities().call() == 0


def test_random_action_sequences_keep_the_money_invariant(env: Env) -> None:
    _state["env"] = env
    run_state_machine_as_test(
        MarketMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )

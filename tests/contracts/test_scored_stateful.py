"""ScoredRounds under random sequences of every action by several accounts (Hypothesis).

After every step the contract's token balance equals its liabilities (escrows + stakes +
owed). At the end of a sequence the chain is driven past every window, every window is settled
in order, everybody leaves and withdraws: the contract must end holding nothing. Sequences
are isolated with evm_snapshot / evm_revert.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from contracts.helpers import commitment, pubkey
from contracts.scored_helpers import (  # noqa: F401  (fixtures)
    PHASE_LEN,
    REVEAL,
    SCORE_COMMIT,
    SCORE_REVEAL,
    SETTLEABLE,
    SUBMIT,
    Scored,
    score_commitment,
    scored_base_fixture,
    scored_fixture,
    update_hash,
)

SALT = b"\x33" * 32
MODELS = [b"\x02" * 32, b"\x03" * 32]
#: who joins a posted job (bits: 3 workers, then 3 validators): mostly everyone
JOINS = st.sampled_from([0b111111, 0b111111, 0b011111, 0b111011, 0b101101])
#: what each worker / validator does in a played window
ACTS = st.sampled_from(["out", "honest", "honest", "silent"])
_state: dict[str, Any] = {}


class ScoredMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s: Scored = _state["scored"]
        self.snap = self.s.chain.snapshot()
        self.s.chain.reset_nonces()
        self.jobs: list[tuple[int, int, int]] = []  # (jobId, windows, start)
        self.accounts = [self.s.requester, *self.s.workers[:3], *self.s.validators[:3]]

    def tx(self, account: Any, call: Any) -> bool:
        ok = bool(self.s.send(account, call, check=False)["status"] == 1)
        _state["done"][(call.fn_name, ok)] += 1
        return ok

    # ------------------------------------------------------------------ rules
    @initialize(windows=st.integers(1, 2), slash=st.sampled_from([0, 5000, 10_000]), data=st.data())
    def first_job(self, windows: int, slash: int, data: st.DataObject) -> None:
        """A first job whose window 0 everybody plays honestly and settles: every sequence
        moves money (rewards, fees) before the random rules start."""
        self.post(windows, slash, 0b111111)
        self.play_window(0, data, honest=True)

    @rule(windows=st.integers(1, 2), slash=st.sampled_from([0, 5000, 10_000]), joins=JOINS)
    def post_job(self, windows: int, slash: int, joins: int) -> None:
        self.post(windows, slash, joins)

    def post(self, windows: int, slash: int, joins: int) -> None:
        """Post a job; the accounts in ``joins`` (bits: 3 workers then 3 validators) join it."""
        c = self.s.c.functions
        call = c.postJob(_params(windows=windows, slashBps=slash))
        if len(self.jobs) < 2 and self.tx(self.s.requester, call):
            job = c.jobCount().call()
            self.jobs.append((job, windows, c.getJob(job).call()[1]))
            for k, acct in enumerate(self.accounts[1:]):
                if joins >> k & 1:
                    self.tx(acct, c.joinAsWorker(job, pubkey(acct)) if k < 3 else c.joinAsValidator(job))

    @rule(j=st.integers(0, 1), data=st.data())
    def play_a_window(self, j: int, data: st.DataObject) -> None:
        self.play_window(j, data)

    def play_window(self, j: int, data: st.DataObject, honest: bool = False) -> None:
        """Play the next window of job ``j`` whose submit phase is still open: each worker stays
        out, submits and reveals, or submits and stays silent; each validator stays out,
        commits and reveals a random vote, or commits and stays silent. Settle or not."""
        if j >= len(self.jobs):
            return
        job, windows, start = self.jobs[j]
        now, period = self.s.chain.now(), 4 * PHASE_LEN
        w = next((w for w in range(windows) if now < start + w * period + PHASE_LEN - 2), None)
        if w is None:
            return
        s, c = self.s, self.s.c.functions
        at = start + w * period

        def goto(phase: int) -> None:
            t = at + (phase - SUBMIT) * PHASE_LEN + 1
            if s.chain.now() < t:
                s.w3.provider.make_request("evm_mine", [t])
            self.s.assert_solvent()

        goto(SUBMIT)
        acts = ["honest"] * 6 if honest else data.draw(st.lists(ACTS, min_size=6, max_size=6))
        tags = data.draw(st.lists(st.sampled_from(["a", "b"]), min_size=3, max_size=3))
        for worker, act, tag in zip(s.workers[:3], acts[:3], tags, strict=True):
            if act != "out":
                self.tx(worker, c.submit(job, w, commitment(update_hash(tag), worker.address, SALT)))
        goto(REVEAL)
        subs = c.getSubmissions(job, w).call()
        for i, sub in enumerate(subs):
            k = next(k for k, x in enumerate(s.workers[:3]) if x.address == sub[0])
            if acts[k] == "honest":
                self.tx(s.workers[k], c.revealUpdate(job, w, i, update_hash(tags[k]), SALT, "bafy"))
        goto(SCORE_COMMIT)
        n = len(subs)
        votes = {}
        for v, act in zip(s.validators[:3], acts[3:], strict=True):
            if act == "out":
                continue
            scores = data.draw(st.lists(st.integers(-50, 1000), min_size=n, max_size=n))
            copiers = data.draw(st.integers(0, (1 << n) - 1))
            model = data.draw(st.sampled_from(MODELS))
            commit = score_commitment(job, w, scores, copiers, model, v.address, SALT)
            if self.tx(v, c.commitScores(job, w, commit)):
                votes[v] = (scores, copiers, model, act)
        goto(SCORE_REVEAL)
        for v, (scores, copiers, model, act) in votes.items():
            if act == "honest":
                self.tx(v, c.revealScores(job, w, scores, copiers, model, SALT))
        if honest or data.draw(st.booleans()):
            goto(SETTLEABLE)
            self.tx(s.requester, c.settle(job, w))

    # the same rule twice: Hypothesis picks rules uniformly, and whole windows are what this
    # machine is about
    @rule(j=st.integers(0, 1), data=st.data())
    def play_another_window(self, j: int, data: st.DataObject) -> None:
        self.play_window(j, data)

    @rule(phases=st.sampled_from([2, 5]))
    def wait(self, phases: int) -> None:
        self.s.chain.warp(phases * PHASE_LEN)

    @rule(j=st.integers(0, 1), who=st.integers(0, 6))
    def settle(self, j: int, who: int) -> None:
        if j < len(self.jobs):
            job, c = self.jobs[j][0], self.s.c.functions
            self.tx(self.accounts[who], c.settle(job, c.getJob(job).call()[2]))

    @rule(j=st.integers(0, 1), who=st.integers(0, 5))
    def leave(self, j: int, who: int) -> None:
        if j < len(self.jobs):
            self.tx(self.accounts[1 + who], self.s.c.functions.leave(self.jobs[j][0]))

    @rule(who=st.integers(0, 6))
    def withdraw(self, who: int) -> None:
        self.tx(self.accounts[who], self.s.c.functions.withdraw())

    # ------------------------------------------------------------------ invariants
    @invariant()
    def balance_covers_liabilities(self) -> None:
        self.s.assert_solvent()

    def teardown(self) -> None:
        try:
            s, c = self.s, self.s.c.functions
            s.chain.warp(10 * 4 * PHASE_LEN)
            for job, windows, _ in self.jobs:
                for w in range(c.getJob(job).call()[2], windows):
                    assert self.tx(s.requester, c.settle(job, w)), "a window could not be settled"
                for acct in self.accounts[1:]:
                    if c.stakeOf(job, acct.address).call():
                        assert self.tx(acct, c.leave(job))
            for acct in self.accounts:
                if c.owed(acct.address).call():
                    assert self.tx(acct, c.withdraw())
            assert s.balance() == 0 and c.liabilities().call() == 0, "tokens left without an owner"
        finally:
            self.s.chain.revert(self.snap)


def _params(**overrides: Any) -> tuple[Any, ...]:
    from contracts.scored_helpers import scored_tuple

    return scored_tuple(**overrides)


def test_random_scored_sequences_keep_the_money_invariant(scored: Scored) -> None:
    _state["scored"] = scored
    _state["done"] = Counter()
    run_state_machine_as_test(
        ScoredMachine,
        settings=settings(
            max_examples=6,
            stateful_step_count=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    done = _state["done"]
    # the sequences reached the paths that move money, not only the refusals
    assert done[("revealScores", True)] and done[("revealUpdate", True)] and done[("settle", True)]

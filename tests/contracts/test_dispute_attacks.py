"""The adversarial suite against the contracts (issue 14): each test plays one attack with an
independent client on the real contracts on Anvil and asserts the attacker loses.

docs/security.md lists every attack, its defence and the test here (or in the role tests)
that proves it. Before issue 14 each of these attacks paid the cheater in full: a challenge
needed Merkle proofs into the accused's root (so an unprovable root was unchallengeable), a
dispute froze its claim against every other challenge, and a dismissed dispute released the
claim with its original deadline.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from contracts.conftest import DEFAULT_JOB, E18, Env, job_tuple
from contracts.helpers import Tree, hashes
from contracts.test_disputes import draw as _draw  # one set of committee helpers for both files
from contracts.test_disputes import settle as _settle
from contracts.test_disputes import vote as _vote
from veritrain.dev.deploy import REGISTRY_MIN_STAKE, REGISTRY_UNBONDING_DELAY, RESOLVER_PARAMS

STAKE, REWARD = DEFAULT_JOB["stakePerTask"], DEFAULT_JOB["rewardPerTask"]
WINDOW = DEFAULT_JOB["challengeWindow"]
BOND = RESOLVER_PARAMS["challengeBond"]
BOUNTY = STAKE * RESOLVER_PARAMS["bountyBps"] // 10_000
HONEST = Tree(hashes(9))
CHEAT = Tree(hashes(9, diverge_at=4))  # right on segments 0..2, wrong from segment 3 on
ANSWERING, DRAWING, VOTING, SETTLED = 4, 1, 2, 3
ACCUSED_LOST, ACCUSER_LOST, LAPSED = 1, 2, 5
REVEALED, DISPUTED, FINALIZED, ENDED = 4, 5, 6, 7




def _credited(env: Env, receipt: Any, who: Any) -> int:
    """What ``receipt``'s transaction credited to ``who`` (referee fees of other disputes aside)."""
    return sum(
        e["args"]["amount"]
        for e in env.chain.events(env.market, "Credited", receipt)
        if e["args"]["account"] == who.address
    )


def _deadline(env: Env, t: int, w: Any) -> int:
    return int(env.market.functions.getClaim(t, w.address).call()[3])


# ---------------------------------------------------------------------------- escape 1


def test_fabricated_root_is_slashed_without_any_proof_from_the_challenger(env: Env) -> None:
    """A worker reveals 32 random bytes as its root: nobody can prove anything in it. The
    challenger names segment 0 and proves nothing; the worker cannot answer; it is slashed."""
    job = env.post_job()
    t, w, v = env.task_id(job), env.workers[0], env.verifiers[0]
    fabricated = keccak(b"no tree has this root")
    env.claim(w, t)
    env.deliver(t, w)
    env.commit(w, t, fabricated)
    env.reveal(w, t, fabricated, cid="bafy-resolves-to-nothing")
    did = env.challenge(v, t, w, 0, b"\0" * 32)
    d = env.dispute(did)
    assert (d["status"], d["bond"], d["accusedNext"]) == (ANSWERING, BOND, b"\0" * 32)
    # no tree the worker could show proves against the fabricated root
    for tree in (HONEST, CHEAT):
        env.revert_with(w, env.resolver.functions.answer(did, tree.segment(0)), "DisputeResolverBadProof")
    env.revert_with(
        env.outsiders[1], env.resolver.functions.settle(did), "DisputeResolverTooEarly", did, d["deadline"]
    )
    env.chain.warp_past(d["deadline"])
    env.revert_with(w, env.resolver.functions.answer(did, HONEST.segment(0)), "DisputeResolverDeadlinePassed")
    ev = _settle(env, did)
    assert (ev["outcome"], ev["verdict"]) == (ACCUSED_LOST, 0)
    assert env.claim_status(t, w) == ENDED and env.owed(w) == 0
    assert env.owed(v) == BOND + BOUNTY
    assert env.job(job)["escrow"] == 2 * REWARD + DEFAULT_JOB["refereeFeePool"] + STAKE - BOUNTY
    env.chain.warp_past(_deadline(env, t, w) + WINDOW)
    env.revert_with(
        w, env.market.functions.finalize(t, w.address), "JobMarketWrongStatus", t, w.address, ENDED
    )
    env.claim(env.workers[1], t)  # the task reopened for honest work
    env.assert_solvent()


def test_honest_worker_answers_a_griefing_challenge_and_keeps_its_pay(env: Env) -> None:
    """The answer is cheap and sufficient: the committee upholds the honest root, the griefer
    loses its bond, and the worker is paid after a full window with no dispute open."""
    job = env.post_job()
    t, w, v = env.task_id(job), env.workers[0], env.verifiers[0]
    env.revealed(w, t, HONEST)
    did = env.challenge(v, t, w, 5, b"\x13" * 32)
    r = env.answer(did, HONEST, sender=w)
    ans = env.chain.events(env.resolver, "DisputeAnswered", r)[0]["args"]
    assert (ans["h"], ans["hNext"], ans["drawBlock"]) == (
        HONEST.hashes[5],
        HONEST.hashes[6],
        r["blockNumber"],
    )
    assert r["gasUsed"] < 80_000  # two leaves, two proofs of log2(n) hashes
    referees = _draw(env, did)
    _vote(env, did, referees, [HONEST.hashes[6]] * 3)
    assert _settle(env, did)["outcome"] == ACCUSER_LOST
    settled_at = env.chain.now()
    assert _deadline(env, t, w) >= settled_at + WINDOW
    env.chain.warp_past(_deadline(env, t, w))
    env.send(w, env.market.functions.finalize(t, w.address))
    assert env.owed(w) == REWARD + STAKE + BOND - BOND * RESOLVER_PARAMS["refereeFeeBps"] // 10_000
    env.assert_solvent()


def test_answer_with_proofs_but_withheld_checkpoints_loses(env: Env) -> None:
    """The worker answers on-chain but keeps checkpoint j's bytes to itself: the referees
    cannot replay and vote UNAVAILABLE, which counts against it."""
    job = env.post_job()
    t, w, v = env.task_id(job), env.workers[0], env.verifiers[0]
    env.revealed(w, t, CHEAT)
    did = env.challenge(v, t, w, 3, HONEST.hashes[4])
    env.answer(did, CHEAT, sender=w)
    referees = _draw(env, did)
    _vote(env, did, referees, [b"\0" * 32] * 3)
    assert _settle(env, did)["outcome"] == ACCUSED_LOST
    assert env.claim_status(t, w) == ENDED and env.owed(v) == BOND + BOUNTY
    env.assert_solvent()


# ---------------------------------------------------------------------------- escape 2


def _cheat_with_decoy(env: Env) -> tuple[int, int, Any, Any, int]:
    """Worker 0 reveals CHEAT; its own verifier account (verifiers[6]) challenges segment 0,
    where the cheat is right, at once; the cheater answers. (job, task, worker, decoy, did)."""
    job = env.post_job()
    t, w, decoy = env.task_id(job), env.workers[0], env.verifiers[6]
    env.revealed(w, t, CHEAT)
    did = env.challenge(decoy, t, w, 0, b"\x66" * 32)
    env.answer(did, CHEAT, sender=w)
    assert env.claim_status(t, w) == DISPUTED
    return job, t, w, decoy, did


def test_decoy_challenge_does_not_shut_out_the_honest_challenger(env: Env) -> None:
    job, t, w, decoy, decoy_id = _cheat_with_decoy(env)
    honest = env.verifiers[0]
    did = env.challenge(honest, t, w, 3, HONEST.hashes[4])  # no JobMarketWrongStatus(Disputed)
    assert env.market.functions.getClaim(t, w.address).call()[6] == 2  # two disputes open
    env.answer(did, CHEAT, sender=w)
    referees = _draw(env, did)
    _vote(env, did, referees, [HONEST.hashes[4]] * 3)
    r = env.send(env.outsiders[1], env.resolver.functions.settle(did))
    assert env.chain.events(env.resolver, "DisputeSettled", r)[0]["args"]["outcome"] == ACCUSED_LOST
    assert env.claim_status(t, w) == ENDED and _credited(env, r, honest) == BOND + BOUNTY
    # the decoy still settles (nobody drew it: it lapses, its bond goes to the job's escrow)
    env.chain.warp_past(env.dispute(decoy_id)["deadline"])
    escrow = env.job(job)["escrow"]
    r = env.send(env.outsiders[1], env.resolver.functions.settle(decoy_id))
    assert env.chain.events(env.resolver, "DisputeSettled", r)[0]["args"]["outcome"] == LAPSED
    assert env.job(job)["escrow"] == escrow + BOND and _credited(env, r, decoy) == 0
    assert env.market.functions.getClaim(t, w.address).call()[6] == 0
    env.claim(w, t)  # the slashed worker's record is replaceable once no dispute of it is open
    env.assert_solvent()


def test_lapsed_decoy_neither_runs_out_the_clock_nor_comes_free(env: Env) -> None:
    """Nobody draws the decoy's committee; it lapses after the original challenge deadline.
    The honest verifier, arriving only then, still has a full window; the decoy lost its bond."""
    job, t, w, decoy, decoy_id = _cheat_with_decoy(env)
    original = _deadline(env, t, w)
    draw_deadline = env.dispute(decoy_id)["deadline"]
    env.chain.warp_past(max(original, draw_deadline))
    escrow = env.job(job)["escrow"]
    assert _settle(env, decoy_id)["outcome"] == LAPSED
    assert env.owed(decoy) == 0 and env.owed(w) == 0 and env.job(job)["escrow"] == escrow + BOND
    assert env.claim_status(t, w) == REVEALED
    assert _deadline(env, t, w) >= env.chain.now() + WINDOW - 1
    env.revert_with(
        env.outsiders[1],
        env.market.functions.finalize(t, w.address),
        "JobMarketTooEarly",
        t,
        w.address,
        _deadline(env, t, w),
    )
    env.chain.warp(WINDOW // 2)
    did = env.challenge(env.verifiers[0], t, w, 3, HONEST.hashes[4])
    env.chain.warp_past(env.dispute(did)["deadline"])  # the cheater does not even answer
    assert _settle(env, did)["outcome"] == ACCUSED_LOST
    assert env.claim_status(t, w) == ENDED
    env.assert_solvent()


def test_decoy_with_a_slow_committee_does_not_shield_the_cheat(env: Env) -> None:
    """The decoy's committee is drawn but votes slowly (past the original window): the honest
    challenge runs beside it, and the decoy loses its bond when the committee upholds segment 0."""
    _, t, w, decoy, decoy_id = _cheat_with_decoy(env)
    decoy_refs = _draw(env, decoy_id)
    env.chain.warp_past(_deadline(env, t, w))
    did = env.challenge(env.verifiers[0], t, w, 3, HONEST.hashes[4])
    env.answer(did, CHEAT, sender=w)
    _vote(env, decoy_id, decoy_refs, [CHEAT.hashes[1]] * 3)
    assert _settle(env, decoy_id)["outcome"] == ACCUSER_LOST
    assert env.claim_status(t, w) == DISPUTED  # still held by the honest dispute
    refs = _draw(env, did)
    _vote(env, did, refs, [HONEST.hashes[4]] * 3)
    r = env.send(env.outsiders[1], env.resolver.functions.settle(did))
    assert env.chain.events(env.resolver, "DisputeSettled", r)[0]["args"]["outcome"] == ACCUSED_LOST
    assert env.claim_status(t, w) == ENDED and _credited(env, r, env.verifiers[0]) == BOND + BOUNTY
    env.assert_solvent()


def test_two_accounts_of_one_attacker_cannot_shield_each_other_with_dispute_workers(env: Env) -> None:
    """Both slots of a redundancy-2 task held by one attacker, roots differing at segment 0 only
    to open a free worker dispute that nobody draws: both results stay challengeable and the
    lapse leaves them a full window to be challenged in."""
    job = env.post_job(redundancy=2)
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    other = Tree([CHEAT.hashes[0], b"\x51" * 32, *CHEAT.hashes[2:]])
    for w, tree in ((a, CHEAT), (b, other)):
        env.claim(w, t)
        env.deliver(t, w)
        env.commit(w, t, tree.root)
    env.reveal(a, t, CHEAT.root)
    env.reveal(b, t, other.root)
    r = env.send(
        a, env.resolver.functions.disputeWorkers(t, a.address, CHEAT.segment(0), b.address, other.segment(0))
    )
    shield = env.chain.events(env.resolver, "DisputeOpened", r)[0]["args"]["disputeId"]
    did = env.challenge(env.verifiers[0], t, a, 3, HONEST.hashes[4])
    env.chain.warp_past(max(_deadline(env, t, a), env.dispute(shield)["deadline"]))
    assert _settle(env, shield)["outcome"] == LAPSED
    env.chain.warp_past(env.dispute(did)["deadline"])
    assert _settle(env, did)["outcome"] == ACCUSED_LOST  # a never answered
    assert env.claim_status(t, a) == ENDED
    assert env.claim_status(t, b) == REVEALED and _deadline(env, t, b) > env.chain.now()
    env.challenge(env.verifiers[1], t, b, 1, CHEAT.hashes[2])  # b too is still open to challenge
    env.assert_solvent()


# ---------------------------------------------------------------------------- referees


def test_drawn_referee_cannot_unbond_before_a_late_settle(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.revealed(w, t, CHEAT)
    did = env.challenge(env.verifiers[0], t, w, 3, HONEST.hashes[4])
    env.answer(did, CHEAT, sender=w)
    referees = _draw(env, did)
    silent = referees[2]
    reveal_deadline = env.dispute(did)["deadline"] + RESOLVER_PARAMS["revealWindow"]
    r = env.send(silent, env.registry.functions.deregister())  # at once after the draw
    ends = env.chain.events(env.registry, "VerifierDeregistered", r)[0]["args"]["unbondingEnds"]
    assert ends == reveal_deadline + REGISTRY_UNBONDING_DELAY  # not deregistration + delay
    _vote(env, did, referees, [HONEST.hashes[4], HONEST.hashes[4], None])
    env.chain.warp(REGISTRY_UNBONDING_DELAY + 1)  # a plain unbonding delay would have ended here
    env.revert_with(
        silent, env.registry.functions.withdrawStake(), "VerifierRegistryStillUnbonding", silent.address, ends
    )
    _settle(env, did)  # a late settle still reaches the silent referee's stake
    full = 2 * REGISTRY_MIN_STAKE
    assert env.registry.functions.stakeOf(silent.address).call() == full - full // 10
    env.chain.warp_past(ends)
    env.send(silent, env.registry.functions.withdrawStake())
    assert env.owed(silent) == full - full // 10
    env.assert_solvent()


def test_colluding_referee_is_outvoted_and_slashed(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.revealed(w, t, CHEAT)
    did = env.challenge(env.verifiers[0], t, w, 3, HONEST.hashes[4])
    env.answer(did, CHEAT, sender=w)
    referees = _draw(env, did)
    _vote(env, did, referees, [HONEST.hashes[4], CHEAT.hashes[4], HONEST.hashes[4]])  # seat 1 colludes
    assert _settle(env, did)["outcome"] == ACCUSED_LOST
    full = 2 * REGISTRY_MIN_STAKE
    assert env.registry.functions.stakeOf(referees[1].address).call() == full - full // 10
    assert env.owed(referees[1]) == 0 and env.owed(referees[0]) > 0
    env.assert_solvent()


# ---------------------------------------------------------------------------- smaller holes


def test_slot_count_beyond_32_bits_is_rejected_at_post(env: Env) -> None:
    call = env.market.functions.postJob(
        job_tuple(taskCount=2**32 - 1, redundancy=2, rewardPerTask=1, griefingFee=0, refereeFeePool=0)
    )
    env.revert_with(env.requester, call, "JobMarketInvalidParameter", "slots")
    ok = env.post_job(taskCount=2**31, redundancy=1, rewardPerTask=1, griefingFee=0, refereeFeePool=0)
    env.revert_with(env.outsiders[0], env.market.functions.closeJob(ok), "JobMarketJobBusy", ok, 0, 2**31)


def test_referee_fee_pool_beyond_96_bits_per_slot_is_rejected(env: Env) -> None:
    call = env.market.functions.postJob(job_tuple(taskCount=1, redundancy=1, refereeFeePool=2**96))
    env.revert_with(env.requester, call, "JobMarketInvalidParameter", "refereeFeePool")
    env.send(env.owner, env.token.functions.mint(env.requester.address, 2**96))
    job = env.post_job(taskCount=1, redundancy=1, refereeFeePool=2**96 - 1)
    assert env.job(job)["refereeFee"] == 2**96 - 1


def test_task_id_of_rejects_an_index_that_names_another_task(env: Env) -> None:
    m = env.market.functions
    assert m.taskIdOf(1, 2**32 - 1).call() == (1 << 32) | (2**32 - 1)
    env.revert_with(env.outsiders[0], m.taskIdOf(1, 2**32), "JobMarketInvalidParameter", "index")
    env.revert_with(env.outsiders[0], m.taskIdOf(2**32, 0), "JobMarketInvalidParameter", "jobId")


def test_an_ended_claim_is_told_apart_from_one_never_made(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    r = env.claim(w, t)
    key_deadline = env.chain.events(env.market, "TaskClaimed", r)[0]["args"]["keyDeadline"]
    env.chain.warp_past(key_deadline)
    env.send(env.outsiders[0], env.market.functions.abandon(t, w.address))
    ended = env.market.functions.getClaim(t, w.address).call()
    never = env.market.functions.getClaim(t, env.workers[1].address).call()
    assert ended[0] == ENDED and ended[1] == key_deadline and never[0] == 0
    env.claim(w, t)  # the same worker may claim again
    assert env.claim_status(t, w) == 1
    env.assert_solvent()


def test_settlement_payouts_and_stake_withdrawals_emit_credited(env: Env) -> None:
    job = env.post_job()
    t, w, v = env.task_id(job), env.workers[0], env.verifiers[0]
    env.revealed(w, t, CHEAT)
    did = env.challenge(v, t, w, 3, HONEST.hashes[4])
    env.chain.warp_past(env.dispute(did)["deadline"])
    r = env.send(env.outsiders[1], env.resolver.functions.settle(did))
    credited = [dict(e["args"]) for e in env.chain.events(env.market, "Credited", r)]
    assert credited == [{"account": v.address, "amount": BOUNTY + BOND}]  # bounty and bond: one credit
    env.send(env.verifiers[3], env.registry.functions.deregister())
    env.chain.warp(REGISTRY_UNBONDING_DELAY + 1)
    r = env.send(env.verifiers[3], env.registry.functions.withdrawStake())
    assert [dict(e["args"]) for e in env.chain.events(env.market, "Credited", r)] == [
        {"account": env.verifiers[3].address, "amount": 2 * REGISTRY_MIN_STAKE}
    ]


def test_plain_transfer_surplus_has_a_way_out_and_owed_money_does_not(env: Env) -> None:
    env.post_job()
    stray = 7 * E18
    env.send(env.outsiders[2], env.token.functions.transfer(env.market.address, stray))
    liabilities = env.market.functions.liabilities().call()
    assert env.balance(env.market.address) == liabilities + stray
    sweep = env.market.functions.sweepSurplus(env.outsiders[2].address)
    env.revert_with(env.outsiders[2], sweep, "OwnableUnauthorizedAccount", env.outsiders[2].address)
    before = env.balance(env.outsiders[2])
    env.send(env.owner, sweep)
    assert env.balance(env.outsiders[2]) == before + stray
    env.assert_solvent()
    env.revert_with(env.owner, sweep, "JobMarketNothingOwed", env.outsiders[2].address)


def test_client_decodes_errors_that_surface_through_another_contract(env: Env) -> None:
    """A market error raised inside a resolver call, and the token's allowance error inside the
    market's collect, decode with veritrain.chain.errors (every shipped ABI is registered)."""
    from web3.exceptions import ContractCustomError

    from veritrain.chain.errors import decode_revert

    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    try:
        env.resolver.functions.challenge(t, w.address, 0, b"\1" * 32).call({"from": env.verifiers[0].address})
    except ContractCustomError as exc:
        err = decode_revert(exc.data)
        assert err is not None and err.name == "JobMarketWrongStatus"
    else:
        raise AssertionError("challenge of a claim never made did not revert")
    env.revealed(w, t, HONEST)
    env.send(env.verifiers[0], env.token.functions.approve(env.market.address, 0))
    try:
        env.resolver.functions.challenge(t, w.address, 0, b"\1" * 32).call({"from": env.verifiers[0].address})
    except ContractCustomError as exc:
        err = decode_revert(exc.data)
        assert err is not None and err.name == "ERC20InsufficientAllowance"
    else:
        raise AssertionError("challenge without allowance did not revert")

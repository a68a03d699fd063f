"""DisputeResolver and VerifierRegistry: challenges, worker-vs-worker disputes, the committee,
votes, settlement and every revert; money is conserved after each scenario."""

from __future__ import annotations

from typing import Any

from contracts.conftest import DEFAULT_JOB, Env
from contracts.helpers import Tree, commitment, hashes, pubkey
from veritrain.dev.deploy import REGISTRY_MIN_STAKE, REGISTRY_UNBONDING_DELAY, RESOLVER_PARAMS

STAKE, REWARD = DEFAULT_JOB["stakePerTask"], DEFAULT_JOB["rewardPerTask"]
REF_FEE = DEFAULT_JOB["refereeFeePool"] // (DEFAULT_JOB["taskCount"] * DEFAULT_JOB["redundancy"])
BOND = RESOLVER_PARAMS["challengeBond"]
HONEST = Tree(hashes(9))
CHEAT = Tree(hashes(9, diverge_at=4))  # agrees on h_0..h_3, differs from h_4 on
DRAWING, VOTING, SETTLED, ANSWERING = 1, 2, 3, 4
ACCUSED_LOST, ACCUSER_LOST, BOTH_LOST, DISMISSED, LAPSED = 1, 2, 3, 4, 5
REVEALED_CLAIM, DISPUTED_CLAIM, ENDED_CLAIM = 4, 5, 7
NONE, COMMITTED, FOR_ACCUSED, FOR_ACCUSER, AGAINST = 0, 1, 2, 3, 4  # BallotState
SALT = b"\x42" * 32
OPENED: dict[int, Any] = {}  # DisputeOpened args of the last challenge per dispute id


def setup_challenge(env: Env, worker_tree: Tree, claimed_next: bytes, j: int = 3) -> tuple[int, int, Any]:
    """A challenge of segment ``j`` of worker 0's ``worker_tree``, answered by the worker."""
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.revealed(w, t, worker_tree)
    challenger = env.verifiers[0]
    r = env.send(challenger, env.resolver.functions.challenge(t, w.address, j, claimed_next))
    opened = env.chain.events(env.resolver, "DisputeOpened", r)[0]["args"]
    OPENED[opened["disputeId"]] = opened
    assert env.dispute(opened["disputeId"])["status"] == ANSWERING
    env.answer(opened["disputeId"], worker_tree, sender=w)
    return opened["disputeId"], t, challenger


def draw(env: Env, dispute_id: int) -> list[Any]:
    r = env.send(env.outsiders[0], env.resolver.functions.drawCommittee(dispute_id))
    referees = env.chain.events(env.resolver, "CommitteeDrawn", r)[0]["args"]["referees"]
    by_addr = {a.address: a for a in env.verifiers}
    return [by_addr[a] for a in referees]


def vote(env: Env, dispute_id: int, referees: list[Any], votes: list[bytes | None]) -> None:
    """Each referee (seat = its index) commits and reveals its vote; None stays silent."""
    for seat, (ref, v) in enumerate(zip(referees, votes, strict=True)):
        if v is not None:
            sealed = commitment(v, ref.address, SALT)
            env.send(ref, env.resolver.functions.commitVote(dispute_id, seat, sealed))
    if any(v is None for v in votes):
        env.chain.warp(RESOLVER_PARAMS["commitWindow"] + 1)
    for seat, (ref, v) in enumerate(zip(referees, votes, strict=True)):
        if v is not None:
            env.send(ref, env.resolver.functions.revealVote(dispute_id, seat, v, SALT))


def settle(env: Env, dispute_id: int) -> dict[str, Any]:
    r = env.send(env.outsiders[1], env.resolver.functions.settle(dispute_id))
    return dict(env.chain.events(env.resolver, "DisputeSettled", r)[0]["args"])


def test_challenge_upheld_slashes_cheating_worker(env: Env) -> None:
    did, t, challenger = setup_challenge(env, CHEAT, HONEST.hashes[4])
    w = env.workers[0]
    d = env.dispute(did)
    assert (d["status"], d["accused"], d["accuser"], d["segment"]) == (
        DRAWING,
        w.address,
        challenger.address,
        3,
    )
    assert d["accusedNext"] == CHEAT.hashes[4] and d["bond"] == BOND
    # a challenger's h_{j+1} is only in the event; the view reads zero for a challenge
    assert OPENED[did]["accuserNext"] == HONEST.hashes[4] and d["accuserNext"] == b"\0" * 32
    assert env.claim_status(t, w) == DISPUTED_CLAIM
    env.revert_with(
        w, env.market.functions.finalize(t, w.address), "JobMarketWrongStatus", t, w.address, DISPUTED_CLAIM
    )
    env.assert_solvent()
    referees = draw(env, did)
    assert len(referees) == 3 and challenger not in referees
    assert env.dispute(did)["status"] == VOTING
    r = env.send(env.requester, env.resolver.functions.deliverRefereeKey(did, referees[0].address, b"env"))
    assert (
        env.chain.events(env.resolver, "RefereeKeyDelivered", r)[0]["args"]["referee"] == referees[0].address
    )
    env.send(w, env.resolver.functions.deliverRefereeKey(did, referees[1].address, b"env"))
    vote(env, did, referees, [HONEST.hashes[4]] * 3)
    ev = settle(env, did)
    pot = STAKE * 2000 // 10_000 + REF_FEE
    assert (ev["outcome"], ev["verdict"], ev["refereePot"]) == (ACCUSED_LOST, AGAINST, pot)
    assert env.owed(challenger) == BOND + STAKE // 2
    for ref in referees:
        assert env.owed(ref) == pot // 3
    assert env.claim_status(t, w) == ENDED_CLAIM and env.owed(w) == 0
    env.claim(env.workers[1], t)  # the task reopened
    assert env.resolver.functions.totalBonds().call() == 0
    env.assert_solvent()


def test_wrong_challenger_loses_bond_and_worker_finalizes(env: Env) -> None:
    did, t, challenger = setup_challenge(env, HONEST, CHEAT.hashes[4])
    w = env.workers[0]
    referees = draw(env, did)
    vote(env, did, referees, [HONEST.hashes[4]] * 3)
    ev = settle(env, did)
    pot = BOND * 2000 // 10_000 + REF_FEE
    assert ev["outcome"] == ACCUSER_LOST and ev["refereePot"] == pot
    assert env.owed(w) == BOND - BOND * 2000 // 10_000 and env.owed(challenger) == 0
    assert env.claim_status(t, w) == REVEALED_CLAIM
    env.chain.warp(DEFAULT_JOB["challengeWindow"] + 1)
    env.send(w, env.market.functions.finalize(t, w.address))
    assert env.owed(w) == BOND - BOND * 2000 // 10_000 + REWARD + STAKE
    env.assert_solvent()


def test_unavailable_votes_count_against_the_worker(env: Env) -> None:
    did, t, challenger = setup_challenge(env, HONEST, CHEAT.hashes[4])
    referees = draw(env, did)
    vote(env, did, referees, [b"\0" * 32] * 3)
    assert settle(env, did)["outcome"] == ACCUSED_LOST
    assert env.claim_status(t, env.workers[0]) == ENDED_CLAIM
    env.assert_solvent()


def test_referees_who_disagree_with_the_worker_differently_still_outvote_it(env: Env) -> None:
    """The committee answers "does the worker's h_{j+1} hold up?": two votes for two other hashes
    (two replays on different hardware in tolerance mode, say) are both against the worker."""
    did, t, challenger = setup_challenge(env, CHEAT, HONEST.hashes[4])
    referees = draw(env, did)
    vote(env, did, referees, [HONEST.hashes[4], b"\x31" * 32, CHEAT.hashes[4]])
    _, states, _ = env.resolver.functions.getBallots(did).call()
    assert list(states) == [AGAINST, AGAINST, FOR_ACCUSED]
    ev = settle(env, did)
    assert (ev["outcome"], ev["verdict"]) == (ACCUSED_LOST, AGAINST)
    assert env.registry.functions.stakeOf(referees[2].address).call() < 2 * REGISTRY_MIN_STAKE
    assert env.claim_status(t, env.workers[0]) == ENDED_CLAIM
    env.assert_solvent()


def test_unavailable_is_against_a_worker_even_if_its_hash_is_zero(env: Env) -> None:
    """A worker cannot make "unavailable" votes side with it by committing h_{j+1} = 0."""
    zero = Tree(HONEST.hashes[:4] + [b"\0" * 32] + HONEST.hashes[5:])
    did, t, _ = setup_challenge(env, zero, HONEST.hashes[4])
    assert env.dispute(did)["accusedNext"] == b"\0" * 32
    referees = draw(env, did)
    vote(env, did, referees, [b"\0" * 32] * 3)
    assert settle(env, did)["outcome"] == ACCUSED_LOST
    assert env.claim_status(t, env.workers[0]) == ENDED_CLAIM
    env.assert_solvent()


def test_minority_and_silent_referees_lose_part_of_their_stake(env: Env) -> None:
    did, _, _ = setup_challenge(env, CHEAT, HONEST.hashes[4])
    referees = draw(env, did)
    vote(env, did, referees, [HONEST.hashes[4], CHEAT.hashes[4], None])
    env.revert_with(env.outsiders[1], env.resolver.functions.settle(did), "DisputeResolverTooEarly")
    env.chain.warp(RESOLVER_PARAMS["revealWindow"] + 1)
    ev = settle(env, did)
    # two different votes and a silence: no majority, dismissed; only the silent one is slashed
    assert ev["outcome"] == DISMISSED and ev["refereePot"] == 2 * REGISTRY_MIN_STAKE // 10
    full = 2 * REGISTRY_MIN_STAKE
    for ref in referees[:2]:
        assert env.registry.functions.stakeOf(ref.address).call() == full
    assert env.registry.functions.stakeOf(referees[2].address).call() == full - full // 10
    assert env.job(1)["escrow"] == 2 * REWARD + DEFAULT_JOB["refereeFeePool"] + full // 10
    assert env.claim_status(env.task_id(1), env.workers[0]) == REVEALED_CLAIM
    env.assert_solvent()


def test_majority_pays_and_dissenter_is_slashed(env: Env) -> None:
    did, _, challenger = setup_challenge(env, CHEAT, HONEST.hashes[4])
    referees = draw(env, did)
    vote(env, did, referees, [HONEST.hashes[4], HONEST.hashes[4], CHEAT.hashes[4]])
    ev = settle(env, did)
    full = 2 * REGISTRY_MIN_STAKE
    slashed = full // 10
    pot = STAKE * 2000 // 10_000 + REF_FEE + slashed
    assert ev["outcome"] == ACCUSED_LOST and ev["refereePot"] == pot
    assert env.owed(referees[0]) == pot // 2 == env.owed(referees[1])
    assert env.registry.functions.stakeOf(referees[2].address).call() == full - slashed
    env.assert_solvent()


def test_redundant_workers_with_different_roots_dispute_without_challenger(env: Env) -> None:
    job = env.post_job(redundancy=2)
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    for w in (a, b):
        env.claim(w, t)
        env.deliver(t, w)
    env.commit(a, t, HONEST.root)
    env.commit(b, t, CHEAT.root)
    env.reveal(a, t, HONEST.root)
    env.reveal(b, t, CHEAT.root)
    bad = list(HONEST.segment(3))
    bad[1] = b"\x13" * 32
    call = env.resolver.functions.disputeWorkers(t, a.address, tuple(bad), b.address, CHEAT.segment(3))
    env.revert_with(env.outsiders[2], call, "DisputeResolverSegmentsDiffer")
    call = env.resolver.functions.disputeWorkers(
        t, a.address, HONEST.segment(3), b.address, HONEST.segment(3)
    )
    env.revert_with(env.outsiders[2], call, "DisputeResolverNoDisagreement", HONEST.hashes[4])
    call = env.resolver.functions.disputeWorkers(t, a.address, HONEST.segment(3), b.address, CHEAT.segment(3))
    r = env.send(env.outsiders[2], call)
    did = env.chain.events(env.resolver, "DisputeOpened", r)[0]["args"]["disputeId"]
    d = env.dispute(did)
    assert d["accuserIsWorker"] and d["bond"] == 0 and d["accuserNext"] == CHEAT.hashes[4]
    referees = draw(env, did)
    assert a not in referees and b not in referees
    vote(env, did, referees, [HONEST.hashes[4]] * 3)
    assert settle(env, did)["outcome"] == ACCUSER_LOST
    assert env.owed(a) == STAKE // 2  # the bounty
    assert env.claim_status(t, a) == REVEALED_CLAIM and env.claim_status(t, b) == ENDED_CLAIM
    env.assert_solvent()


def test_both_redundant_workers_wrong(env: Env) -> None:
    job = env.post_job(redundancy=2)
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    other = Tree(hashes(9, tag=b"other", diverge_at=4))
    other.hashes[:4] = HONEST.hashes[:4]
    other = Tree(other.hashes)
    for w, tree in ((a, CHEAT), (b, other)):
        env.claim(w, t)
        env.deliver(t, w)
        env.commit(w, t, tree.root)
    env.reveal(a, t, CHEAT.root)
    env.reveal(b, t, other.root)
    r = env.send(
        env.outsiders[2],
        env.resolver.functions.disputeWorkers(t, a.address, CHEAT.segment(3), b.address, other.segment(3)),
    )
    did = env.chain.events(env.resolver, "DisputeOpened", r)[0]["args"]["disputeId"]
    referees = draw(env, did)
    vote(env, did, referees, [HONEST.hashes[4]] * 3)
    assert settle(env, did)["outcome"] == BOTH_LOST
    assert env.owed(a) == env.owed(b) == 0
    env.assert_solvent()


def test_challenge_reverts_and_forged_answers(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.revealed(w, t, CHEAT)
    v = env.verifiers[0]
    ch = env.resolver.functions.challenge
    env.revert_with(
        env.outsiders[0],
        ch(t, w.address, 3, HONEST.hashes[4]),
        "DisputeResolverNotVerifier",
        env.outsiders[0].address,
    )
    env.revert_with(w, ch(t, w.address, 3, HONEST.hashes[4]), "DisputeResolverNotVerifier", w.address)
    env.revert_with(v, ch(t, w.address, 8, HONEST.hashes[4]), "DisputeResolverSegmentOutOfRange", 8, 9)
    env.revert_with(
        v,
        ch(t, env.workers[1].address, 3, HONEST.hashes[4]),
        "JobMarketWrongStatus",
        t,
        env.workers[1].address,
        0,
    )
    did = env.challenge(v, t, w, 3, HONEST.hashes[4])
    ans = env.resolver.functions.answer
    # forged answers: the honest tree's proofs against the cheat's root, a changed h_4, a wrong index
    env.revert_with(w, ans(did, HONEST.segment(3)), "DisputeResolverBadProof", w.address, 3)
    forged = list(CHEAT.segment(3))
    forged[3] = b"\x77" * 32
    env.revert_with(w, ans(did, tuple(forged)), "DisputeResolverBadProof", w.address, 4)
    shifted = (3, CHEAT.hashes[4], CHEAT.proof(4), CHEAT.hashes[5], CHEAT.proof(5))
    env.revert_with(w, ans(did, shifted), "DisputeResolverBadProof", w.address, 3)
    env.revert_with(w, ans(did, CHEAT.segment(4)), "DisputeResolverSegmentsDiffer")
    env.revert_with(
        w, env.resolver.functions.drawCommittee(did), "DisputeResolverWrongStatus", did, ANSWERING
    )
    env.answer(did, CHEAT, sender=w)
    env.revert_with(w, ans(did, CHEAT.segment(3)), "DisputeResolverWrongStatus", did, DRAWING)
    deadline = env.market.functions.getClaim(t, w.address).call()[3]
    env.chain.warp_past(deadline)
    # the claim is in dispute, so it stays open to further challenges past its old deadline
    env.challenge(env.verifiers[1], t, w, 2, HONEST.hashes[3])
    env.assert_solvent()


def test_challenge_with_proof_skips_the_answer_and_rejects_forged_proofs(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.revealed(w, t, CHEAT)
    v = env.verifiers[0]
    ch = env.resolver.functions.challengeWithProof
    env.revert_with(
        v,
        ch(t, w.address, CHEAT.segment(3), CHEAT.hashes[4]),
        "DisputeResolverNoDisagreement",
        CHEAT.hashes[4],
    )
    env.revert_with(
        v, ch(t, w.address, HONEST.segment(4), b"\x99" * 32), "DisputeResolverBadProof", w.address, 4
    )
    forged = list(CHEAT.segment(3))
    forged[3] = b"\x77" * 32
    env.revert_with(
        v, ch(t, w.address, tuple(forged), HONEST.hashes[4]), "DisputeResolverBadProof", w.address, 4
    )
    # an even j may carry one proof for both leaves; it must start with leaf j + 1 itself
    shared = (4, CHEAT.hashes[4], CHEAT.proof(4), CHEAT.hashes[5], [])
    odd = (3, CHEAT.hashes[3], CHEAT.proof(3), CHEAT.hashes[4], [])
    env.revert_with(v, ch(t, w.address, odd, HONEST.hashes[4]), "DisputeResolverBadProof", w.address, 4)
    wrong_next = (4, CHEAT.hashes[4], CHEAT.proof(4), b"\x55" * 32, [])
    env.revert_with(
        v, ch(t, w.address, wrong_next, HONEST.hashes[5]), "DisputeResolverBadProof", w.address, 5
    )
    r = env.send(v, ch(t, w.address, shared, HONEST.hashes[5]))
    did = env.chain.events(env.resolver, "DisputeOpened", r)[0]["args"]["disputeId"]
    d = env.dispute(did)
    assert (d["status"], d["accusedNext"], d["drawBlock"]) == (DRAWING, CHEAT.hashes[5], r["blockNumber"])
    env.assert_solvent()


def test_committee_and_vote_reverts(env: Env) -> None:
    did, _, challenger = setup_challenge(env, CHEAT, HONEST.hashes[4])
    drawn = env.dispute(did)
    env.revert_with(
        env.outsiders[0],
        env.resolver.functions.drawCommittee(did),
        "DisputeResolverTooEarly",
        did,
        drawn["drawBlock"],
    )
    env.revert_with(
        env.verifiers[1],
        env.resolver.functions.commitVote(did, 0, b"\1" * 32),
        "DisputeResolverWrongStatus",
        did,
        DRAWING,
    )
    env.revert_with(
        env.outsiders[0],
        env.resolver.functions.settle(did),
        "DisputeResolverTooEarly",
        did,
        drawn["deadline"],
    )
    referees = draw(env, did)
    outsider = next(v for v in env.verifiers if v not in referees)
    for seat in (0, 1, 2, 3):  # nobody else's seat, nor one past the committee
        env.revert_with(
            outsider,
            env.resolver.functions.commitVote(did, seat, b"\1" * 32),
            "DisputeResolverNotReferee",
            did,
            outsider.address,
        )
    env.revert_with(
        referees[1],
        env.resolver.functions.commitVote(did, 0, b"\1" * 32),
        "DisputeResolverNotReferee",
        did,
        referees[1].address,
    )
    env.revert_with(
        env.outsiders[0],
        env.resolver.functions.deliverRefereeKey(did, referees[0].address, b"k"),
        "DisputeResolverNotKeyHolder",
        did,
        env.outsiders[0].address,
    )
    env.revert_with(
        env.requester,
        env.resolver.functions.deliverRefereeKey(did, outsider.address, b"k"),
        "DisputeResolverNotReferee",
        did,
        outsider.address,
    )
    r0 = referees[0]
    env.send(r0, env.resolver.functions.commitVote(did, 0, commitment(HONEST.hashes[4], r0.address, SALT)))
    _, states, commitments = env.resolver.functions.getBallots(did).call()
    assert list(states) == [COMMITTED, NONE, NONE]
    assert commitments[0] == commitment(HONEST.hashes[4], r0.address, SALT)
    env.revert_with(
        r0,
        env.resolver.functions.commitVote(did, 0, b"\1" * 32),
        "DisputeResolverBallotState",
        did,
        r0.address,
        1,
    )
    commit_deadline = env.dispute(did)["deadline"]
    env.revert_with(
        r0,
        env.resolver.functions.revealVote(did, 0, HONEST.hashes[4], SALT),
        "DisputeResolverTooEarly",
        did,
        commit_deadline,
    )
    env.revert_with(
        referees[1],
        env.resolver.functions.revealVote(did, 1, HONEST.hashes[4], SALT),
        "DisputeResolverBallotState",
        did,
        referees[1].address,
        0,
    )
    env.chain.warp_past(commit_deadline)
    env.revert_with(
        referees[1],
        env.resolver.functions.commitVote(did, 1, b"\1" * 32),
        "DisputeResolverDeadlinePassed",
        did,
        commit_deadline,
    )
    env.revert_with(
        r0,
        env.resolver.functions.revealVote(did, 0, CHEAT.hashes[4], SALT),
        "DisputeResolverCommitMismatch",
        did,
        r0.address,
    )
    # another referee cannot reveal r0's seat, even with r0's vote and salt: the commitment binds r0
    env.revert_with(
        referees[1],
        env.resolver.functions.revealVote(did, 0, HONEST.hashes[4], SALT),
        "DisputeResolverCommitMismatch",
        did,
        referees[1].address,
    )
    env.revert_with(
        r0,
        env.resolver.functions.revealVote(did, 3, HONEST.hashes[4], SALT),
        "DisputeResolverNotReferee",
        did,
        r0.address,
    )
    r = env.send(r0, env.resolver.functions.revealVote(did, 0, HONEST.hashes[4], SALT))
    revealed = env.chain.events(env.resolver, "VoteRevealed", r)[0]["args"]
    assert (revealed["referee"], revealed["voteHash"]) == (r0.address, HONEST.hashes[4])
    assert revealed["vote"] == AGAINST
    _, states, commitments = env.resolver.functions.getBallots(did).call()
    assert list(states) == [AGAINST, NONE, NONE] and commitments[0] == b"\0" * 32  # cleared by the reveal
    env.chain.warp_past(commit_deadline + RESOLVER_PARAMS["revealWindow"])
    env.revert_with(
        r0,
        env.resolver.functions.revealVote(did, 0, HONEST.hashes[4], SALT),
        "DisputeResolverBallotState",
        did,
        r0.address,
        AGAINST,
    )
    ev = settle(env, did)
    assert ev["outcome"] == DISMISSED  # one vote of three: no verdict, the bond returns
    assert env.owed(challenger) == BOND
    env.revert_with(
        env.outsiders[0], env.resolver.functions.settle(did), "DisputeResolverWrongStatus", did, SETTLED
    )
    env.assert_solvent()


def test_reveal_after_reveal_deadline(env: Env) -> None:
    did, _, _ = setup_challenge(env, CHEAT, HONEST.hashes[4])
    referees = draw(env, did)
    addr = referees[0].address
    env.send(referees[0], env.resolver.functions.commitVote(did, 0, commitment(HONEST.hashes[4], addr, SALT)))
    deadline = env.dispute(did)["deadline"] + RESOLVER_PARAMS["revealWindow"]
    env.chain.warp_past(deadline)
    late = env.resolver.functions.revealVote(did, 0, HONEST.hashes[4], SALT)
    env.revert_with(referees[0], late, "DisputeResolverDeadlinePassed", did, deadline)


def test_too_small_pool_dismisses_at_the_draw_without_fault(env: Env) -> None:
    did, t, challenger = setup_challenge(env, CHEAT, HONEST.hashes[4])
    for v in env.verifiers[2:]:
        env.send(v, env.registry.functions.deregister())
    r = env.send(env.outsiders[0], env.resolver.functions.drawCommittee(did))
    assert env.chain.events(env.resolver, "DisputeSettled", r)[0]["args"]["outcome"] == DISMISSED
    assert env.owed(challenger) == BOND and env.claim_status(t, env.workers[0]) == REVEALED_CLAIM
    assert env.resolver.functions.totalBonds().call() == 0
    env.assert_solvent()


def test_lapsed_challenge_costs_the_bond_to_the_escrow(env: Env) -> None:
    did, t, challenger = setup_challenge(env, CHEAT, HONEST.hashes[4])
    deadline = env.dispute(did)["deadline"]
    env.chain.warp_past(deadline)
    env.revert_with(
        env.outsiders[0],
        env.resolver.functions.drawCommittee(did),
        "DisputeResolverDeadlinePassed",
        did,
        deadline,
    )
    escrow = env.job(1)["escrow"]
    assert settle(env, did)["outcome"] == LAPSED
    assert env.owed(challenger) == 0 and env.owed(env.workers[0]) == 0
    assert env.job(1)["escrow"] == escrow + BOND
    assert env.claim_status(t, env.workers[0]) == REVEALED_CLAIM
    env.assert_solvent()


def test_draw_reschedules_when_blockhash_expired(env: Env) -> None:
    did, _, _ = setup_challenge(env, CHEAT, HONEST.hashes[4])
    env.w3.provider.make_request("anvil_mine", [hex(300)])
    r = env.send(env.outsiders[0], env.resolver.functions.drawCommittee(did))
    assert env.chain.events(env.resolver, "DrawRescheduled", r)[0]["args"]["drawBlock"] == r["blockNumber"]
    assert len(draw(env, did)) == 3


def test_registry_register_deregister_withdraw(env: Env) -> None:
    v, other = env.outsiders[3], env.outsiders[4]
    reg = env.registry.functions
    env.revert_with(
        v,
        reg.register(pubkey(other), REGISTRY_MIN_STAKE),
        "VerifierRegistryBadPubKey",
        v.address,
        other.address,
    )
    env.revert_with(
        v,
        reg.register(pubkey(v), REGISTRY_MIN_STAKE - 1),
        "VerifierRegistryStakeTooLow",
        REGISTRY_MIN_STAKE - 1,
        REGISTRY_MIN_STAKE,
    )
    env.revert_with(v, reg.register(pubkey(v), 2**128), "VerifierRegistryStakeTooHigh", 2**128, 2**128 - 1)
    env.revert_with(v, reg.deregister(), "VerifierRegistryNotActive", v.address, 0)
    size = reg.poolSize().call()
    r = env.send(v, reg.register(pubkey(v), REGISTRY_MIN_STAKE))
    assert env.chain.events(env.registry, "VerifierRegistered", r)[0]["args"]["pubKey"] == pubkey(v)
    assert reg.poolSize().call() == size + 1 and reg.isActive(v.address).call()
    assert reg.getVerifier(v.address).call()[4] == pubkey(v)
    env.revert_with(
        v, reg.register(pubkey(v), REGISTRY_MIN_STAKE), "VerifierRegistryAlreadyRegistered", v.address, 1
    )
    env.revert_with(v, reg.slash(v.address, 1), "VerifierRegistryNotResolver", v.address)
    env.revert_with(v, reg.withdrawStake(), "VerifierRegistryNotActive", v.address, 1)
    r = env.send(v, reg.deregister())
    ends = env.chain.events(env.registry, "VerifierDeregistered", r)[0]["args"]["unbondingEnds"]
    assert ends == env.chain.now() + REGISTRY_UNBONDING_DELAY
    assert reg.poolSize().call() == size and v.address not in reg.pool().call()
    env.revert_with(v, reg.withdrawStake(), "VerifierRegistryStillUnbonding", v.address, ends)
    env.chain.warp_past(ends)
    env.send(v, reg.withdrawStake())
    assert env.owed(v) == REGISTRY_MIN_STAKE and reg.stakeOf(v.address).call() == 0
    env.assert_solvent()


def test_resolver_rejects_bad_parameters(env: Env) -> None:
    from veritrain.dev.deploy import resolver_params_tuple

    factory = env.w3.eth.contract(abi=env.resolver.abi, bytecode=_bytecode())
    for bad, name in (
        (dict(committeeSize=2), "committeeSize"),
        (dict(bountyBps=9000), "bps"),
        (dict(commitWindow=10**9), "unbondingDelay"),
        (dict(revealWindow=0), "window"),
        (dict(responseWindow=0), "window"),
        (dict(responseWindow=REGISTRY_UNBONDING_DELAY), "unbondingDelay"),
    ):
        call = factory.constructor(env.market.address, env.registry.address, resolver_params_tuple(bad))
        try:
            env.w3.eth.call({"from": env.owner.address, "data": call.data_in_transaction})
        except Exception as exc:  # noqa: BLE001 - decode whatever web3 raised
            data = getattr(exc, "data", None) or exc.args[-1]
            err = env.chain.decoder.decode(data)
            assert err == ("DisputeResolverInvalidParameter", (name,))
        else:
            raise AssertionError(f"{bad} accepted")


def _bytecode() -> str:
    from veritrain.artifacts import artifact

    return str(artifact("DisputeResolver")["bytecode"])

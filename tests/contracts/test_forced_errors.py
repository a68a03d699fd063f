"""Forced errors on-chain (docs/spec/forced.md): the seed in `claim`, the seal at key delivery,
`answerForced`, the jackpot pool. Each attack test names the rule it checks; without that rule
the test fails.

The session's protocol runs with forced errors off (local.toml); these tests deploy their own
over the same token, with the rate and fee each needs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_utils import keccak

from contracts.conftest import E18, MAX, Env, Tree, hashes, job_tuple, pubkey
from contracts.test_disputes import draw, settle, vote
from veritrain import forced
from veritrain.deployments import Deployment
from veritrain.dev.deploy import REGISTRY_MIN_STAKE, deploy_protocol

FORCED, ACCUSED_LOST, ACCUSER_LOST = 6, 1, 2  # DisputeResolver.Outcome
REVEALED = 4  # JobMarket.ClaimStatus (getClaim's first field)
FEE_BPS = 100  # 1 % of a redundancy-1 job's rewards into the pool


def forced_env(env: Env, forced_bps: int, fee_bps: int = FEE_BPS) -> Env:
    """A protocol over the session's token with these forced-error parameters, its verifiers
    registered and every account's approval given."""
    protocol = deploy_protocol(env.w3, env.owner, env.token.address,
                               resolver_params={"forcedErrorBps": forced_bps, "jackpotFeeBps": fee_bps})
    deployment = Deployment(network="local", chain_id=env.chain.chain_id, deploy_block=0,
                            contracts={"DevToken": env.token.address,
                                       **{k: c.address for k, c in protocol.items()}})
    fe = Env(env.w3, deployment)
    fe.chain = env.chain  # one nonce tracker for the whole chain
    for who in [env.requester, *env.workers, *env.verifiers, *env.outsiders]:
        fe.send(who, fe.token.functions.approve(fe.market.address, MAX))
    for v in env.verifiers:
        fe.send(v, fe.registry.functions.register(pubkey(v), REGISTRY_MIN_STAKE * 2))
    return fe


def claim_seeded(fe: Env, worker: Any, task_id: int, secret: bytes) -> Any:
    return fe.send(worker, fe.market.functions.claim(task_id, pubkey(worker), forced.seed_hash(secret)))


def seeded_result(fe: Env, worker: Any, task_id: int, secret: bytes, tree: Tree) -> bytes:
    """Claim with a seed, get the key, commit and reveal; returns the snapshot (the claim block's hash)."""
    r = claim_seeded(fe, worker, task_id, secret)
    fe.deliver(task_id, worker)
    fe.commit(worker, task_id, tree.root)
    fe.reveal(worker, task_id, tree.root)
    return bytes(fe.w3.eth.get_block(r["blockNumber"])["hash"])


def segments(fe: Env, job_id: int) -> int:
    return fe.job(job_id)["checkpointCount"] - 1


def money_balances(fe: Env) -> None:
    """The market's balance covers what it owes; the resolver's holding is its open bonds plus
    the jackpot pool, exactly."""
    fe.assert_solvent()
    held = fe.market.functions.heldBy(fe.resolver.address).call()
    assert held == fe.resolver.functions.totalBonds().call() + fe.resolver.functions.jackpot().call()


def test_a_caught_forced_error_pays_the_jackpot_releases_the_claim_and_the_worker_is_paid(env: Env) -> None:
    fe = forced_env(env, forced_bps=10_000)  # every sealed claim selected
    before = fe.balance(fe.requester)
    job = fe.post_job()
    fee = 2 * 50 * E18 * FEE_BPS // 10_000  # both tasks' rewards
    escrow = 2 * 50 * E18 + 10 * E18
    assert before - fe.balance(fe.requester) == escrow + fee
    assert fe.resolver.functions.jackpot().call() == fee
    w, v = fe.workers[0], fe.verifiers[0]
    t, secret, tree = fe.task_id(job), os.urandom(32), Tree(hashes(9))
    snap = seeded_result(fe, w, t, secret, tree)
    sealed = fe.market.functions.sealOf(t, w.address).call()
    assert sealed == forced.seal(forced.seed_hash(secret), snap)
    sel = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=segments(fe, job))
    assert sel.selected
    d = fe.challenge(v, t, w, sel.segment, b"\x77" * 32)
    owed = fe.owed(v)
    r = fe.send(w, fe.resolver.functions.answerForced(d, secret, snap))
    prize = 50 * E18 * FEE_BPS // 10_000  # reward x fee / rate, the pool holds more
    assert fe.chain.events(fe.resolver, "JackpotPaid", r)[0]["args"]["amount"] == prize
    assert fe.chain.events(fe.resolver, "DisputeSettled", r)[0]["args"]["outcome"] == FORCED
    assert fe.owed(v) - owed == 100 * E18 + prize  # the bond back and the jackpot
    assert fe.resolver.functions.jackpot().call() == fee - prize
    money_balances(fe)
    assert fe.claim_status(t, w) == REVEALED
    deadline = fe.market.functions.getClaim(t, w.address).call()[3]
    fe.revert_with(w, fe.resolver.functions.openSeed(t, w.address, secret, snap), "JobMarketTooEarly",
                   t, w.address, deadline)  # not while results can still be challenged
    fe.chain.warp_past(deadline)
    fe.revert_with(fe.outsiders[0], fe.market.functions.finalize(t, w.address), "JobMarketSeedNotOpened",
                   t, w.address)
    # the seal binds the secret and the snapshot: a worker cannot open it as "not selected" with
    # a snapshot of its choosing (zero selects nothing) and skip the opt-out window, nor can a
    # stranger open it with a made-up secret
    for wrong_secret, wrong_snap in ((os.urandom(32), snap), (secret, bytes(32)), (secret, keccak(snap))):
        fe.revert_with(w, fe.resolver.functions.openSeed(t, w.address, wrong_secret, wrong_snap),
                       "DisputeResolverBadSeed", t, w.address)
    r = fe.send(w, fe.resolver.functions.openSeed(t, w.address, secret, snap))
    assert dict(fe.chain.events(fe.resolver, "SeedOpened", r)[0]["args"])["segment"] == sel.segment
    fe.revert_with(w, fe.resolver.functions.openSeed(t, w.address, secret, snap), "DisputeResolverSeedOpened",
                   t, w.address)
    # selected: one more window in which anyone may say the worker opted out
    fe.chain.warp_past(fe.market.functions.getClaim(t, w.address).call()[3])
    fe.send(fe.outsiders[0], fe.market.functions.finalize(t, w.address))
    assert fe.owed(w) == 50 * E18 + 40 * E18  # paid as usual: reward and stake
    money_balances(fe)


def test_answer_forced_needs_the_secret_of_the_seal(env: Env) -> None:
    """Rule: the seal binds the secret. Without it, any accused worker could call a real cheat
    a forced error and walk away with its stake."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job()
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    snap = seeded_result(fe, w, t, secret, Tree(hashes(9, diverge_at=3)))
    sel = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=segments(fe, job))
    d = fe.challenge(fe.verifiers[0], t, w, sel.segment, b"\x77" * 32)
    bad = "DisputeResolverBadSecret"
    fe.revert_with(w, fe.resolver.functions.answerForced(d, os.urandom(32), snap), bad, d)
    # the snapshot is sealed too: another one (as if the draw could be re-rolled) does not open it
    fe.revert_with(w, fe.resolver.functions.answerForced(d, secret, keccak(snap)), bad, d)


def test_a_claim_without_a_seed_is_never_paid_and_is_timed_out(env: Env) -> None:
    """Rule: every claim of a forced job is drawn. A claim without a seed (zero, or one made up)
    can never be opened, so it is never finalized: a worker cannot opt out of the draw."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job()
    w, t = fe.workers[0], fe.task_id(job)
    fe.revealed(w, t, Tree(hashes(9)))  # claim(..., seedHash = 0)
    assert fe.market.functions.sealOf(t, w.address).call() != bytes(32)
    d = fe.challenge(fe.verifiers[0], t, w, 0, b"\x77" * 32)
    fe.revert_with(w, fe.resolver.functions.answerForced(d, bytes(32), bytes(32)),
                   "DisputeResolverBadSecret", d)
    fe.answer(d, Tree(hashes(9)), sender=w)
    fe.chain.warp(3600 * 2)
    settle(fe, d)  # nobody drew: lapsed, the claim is released with a fresh window
    claim = fe.market.functions.getClaim(t, w.address).call()
    fe.chain.warp_past(claim[3])
    fe.revert_with(fe.outsiders[0], fe.market.functions.finalize(t, w.address), "JobMarketSeedNotOpened",
                   t, w.address)
    fe.revert_with(fe.outsiders[0], fe.market.functions.timeout(t, w.address), "JobMarketTooEarly",
                   t, w.address, claim[3] + 200)
    fe.chain.warp_past(claim[3] + 200)  # the reveal window after the challenge deadline
    r = fe.send(fe.outsiders[0], fe.market.functions.timeout(t, w.address))
    assert fe.chain.events(fe.market, "ClaimTimedOut", r)[0]["args"]["penalty"] == 20 * E18
    assert fe.owed(w) == 20 * E18  # half the stake back, no reward
    money_balances(fe)


def test_only_selected_claims_and_only_segments_j_star_and_the_next(env: Env) -> None:
    """Rule: the draw decides. A worker that could answer any claim or any segment as forced
    would escape every challenge."""
    fe = forced_env(env, forced_bps=5_000)
    job = fe.post_job(taskCount=16)
    n = segments(fe, job)
    picked: dict[bool, tuple[int, bytes, bytes, Any]] = {}
    for i in range(16):
        w, t, secret = fe.workers[i % 3], fe.task_id(job, i), os.urandom(32)
        snap = seeded_result(fe, w, t, secret, Tree(hashes(9)))
        sel = forced.select(secret, snap, bps=5_000, redundancy=1, checkpoints=n)
        picked.setdefault(sel.selected, (t, secret, snap, w))
        if len(picked) == 2:
            break
    assert set(picked) == {True, False}, "16 claims at 50 % all drew the same (p = 2**-15)"
    t, secret, snap, w = picked[False]
    d = fe.challenge(fe.verifiers[0], t, w, 0, b"\x77" * 32)
    fe.revert_with(w, fe.resolver.functions.answerForced(d, secret, snap), "DisputeResolverNotSelected", d)
    t, secret, snap, w = picked[True]
    j = forced.select(secret, snap, bps=5_000, redundancy=1, checkpoints=n).segment
    assert j is not None
    other = next(k for k in range(n) if k not in (j, j + 1))
    d = fe.challenge(fe.verifiers[1], t, w, other, b"\x77" * 32)
    fe.revert_with(w, fe.resolver.functions.answerForced(d, secret, snap),
                   "DisputeResolverNotForcedSegment", d, other, j)
    d2 = fe.challenge(fe.verifiers[2], t, w, j, b"\x77" * 32)
    fe.send(w, fe.resolver.functions.answerForced(d2, secret, snap))  # j* itself is answered
    money_balances(fe)


def test_the_last_segment_after_a_forced_checkpoint_is_answered_as_forced(env: Env) -> None:
    """With j* = n-2 the segment after the forced checkpoint is the last one, n-1: a challenge
    there (from the published checkpoint n-1 the replay misses the final one) must be
    answerable, or a worker that did as told would be slashed for it."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job(checkpointCount=3)  # n = 2 segments: j* = 0 always
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    snap = seeded_result(fe, w, t, secret, Tree(hashes(3)))
    assert forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=2).segments == (0, 1)
    d = fe.challenge(fe.verifiers[0], t, w, 1, b"\x77" * 32)
    r = fe.send(w, fe.resolver.functions.answerForced(d, secret, snap))
    assert fe.chain.events(fe.resolver, "DisputeSettled", r)[0]["args"]["outcome"] == FORCED
    money_balances(fe)


def test_a_key_delivered_after_256_blocks_seals_a_zero_snapshot_never_selected(env: Env) -> None:
    """Rule: a missed snapshot is "not selected", never redrawn: a worker (or requester) that
    could delay the seal until a draw suited it would choose forced errors at will."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job(keyWindow=100_000)
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    r = claim_seeded(fe, w, t, secret)
    claimed_in = bytes(fe.w3.eth.get_block(r["blockNumber"])["hash"])
    fe.w3.provider.make_request("anvil_mine", [hex(300)])
    fe.deliver(t, w)
    sealed = fe.market.functions.sealOf(t, w.address).call()
    assert sealed == forced.seal(forced.seed_hash(secret), bytes(32)) != forced.seal(forced.seed_hash(secret),
                                                                                     claimed_in)
    assert forced.snap_of(sealed, forced.seed_hash(secret), claimed_in) == bytes(32)
    tree = Tree(hashes(9))
    fe.commit(w, t, tree.root)
    fe.reveal(w, t, tree.root)
    d = fe.challenge(fe.verifiers[0], t, w, 0, b"\x77" * 32)
    answer = fe.resolver.functions.answerForced
    fe.revert_with(w, answer(d, secret, bytes(32)), "DisputeResolverNotSelected", d)
    fe.revert_with(w, answer(d, secret, claimed_in), "DisputeResolverBadSecret", d)


def test_a_new_claim_of_the_same_worker_does_not_inherit_the_old_seal(env: Env) -> None:
    """Rule: a claim that replaces an ended one starts with its own seal. An inherited one
    would let the worker answer a real cheat in the new result with the old draw."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job()
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    claim_seeded(fe, w, t, secret)
    fe.deliver(t, w)
    assert fe.market.functions.sealOf(t, w.address).call() != bytes(32)
    fe.chain.warp(1000 + 100 + 1)  # past the submission window: the claim times out (Ended)
    fe.send(fe.outsiders[0], fe.market.functions.timeout(t, w.address))
    old = fe.market.functions.sealOf(t, w.address).call()
    claim_seeded(fe, w, t, os.urandom(32))  # again
    assert fe.market.functions.sealOf(t, w.address).call() not in (old, bytes(32))
    money_balances(fe)


def test_redundancy_two_pays_no_fee_and_seals_nothing(env: Env) -> None:
    """Rule: forced errors only where nobody can compare results: two honest co-workers reveal
    equal roots, so a forced one would show without any replay."""
    fe = forced_env(env, forced_bps=10_000)
    before = fe.balance(fe.requester)
    job = fe.post_job(redundancy=2)
    assert before - fe.balance(fe.requester) == 2 * 2 * 50 * E18 + 10 * E18  # the escrow, no fee
    assert fe.resolver.functions.jackpot().call() == 0
    t, secret = fe.task_id(job), os.urandom(32)
    claim_seeded(fe, fe.workers[0], t, secret)
    fe.deliver(t, fe.workers[0])
    assert fe.market.functions.sealOf(t, fe.workers[0].address).call() == bytes(32)


def test_the_jackpot_is_paid_once_and_a_later_challenge_of_the_public_j_star_loses_its_bond(env: Env) -> None:
    """Rule: once per claim. After the payment j* is public: a challenge opened later is a free
    griefing tool (each dispute reopens the challenge window), so its bond goes to the worker."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job()
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    snap = seeded_result(fe, w, t, secret, Tree(hashes(9)))
    j = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=segments(fe, job)).segment
    a, b, c = fe.verifiers[:3]
    da = fe.challenge(a, t, w, j, b"\x77" * 32)
    db = fe.challenge(b, t, w, j, b"\x78" * 32)  # opened before any payment
    owed = {x.address: fe.owed(x) for x in (a, b, c, w)}
    fe.send(w, fe.resolver.functions.answerForced(db, secret, snap))  # the worker picks the order
    r = fe.send(w, fe.resolver.functions.answerForced(da, secret, snap))
    assert fe.chain.events(fe.resolver, "JackpotPaid", r) == []
    prize = 50 * E18 * FEE_BPS // 10_000
    assert fe.owed(b) - owed[b.address] == 100 * E18 + prize
    assert fe.owed(a) - owed[a.address] == 100 * E18  # in good faith: the bond back, no jackpot
    dc = fe.challenge(c, t, w, j, b"\x79" * 32)
    fe.send(w, fe.resolver.functions.answerForced(dc, secret, snap))
    assert fe.owed(c) == owed[c.address] and fe.owed(w) - owed[w.address] == 100 * E18
    money_balances(fe)


def test_the_jackpot_is_capped_by_the_pool_and_never_takes_a_bond(env: Env) -> None:
    """Money: the jackpot comes from the pool only; open bonds are never part of it."""
    fe = forced_env(env, forced_bps=100, fee_bps=10_000)  # J = reward x 100, far above the pool
    job = fe.post_job(taskCount=1)
    assert fe.resolver.functions.jackpot().call() == 50 * E18
    assert fe.resolver.functions.jackpotFor(job).call() == 50 * E18  # capped at the pool
    fe = forced_env(env, forced_bps=10_000, fee_bps=10_000)  # J = one reward = the job's fee
    job = fe.post_job(taskCount=1)
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    snap = seeded_result(fe, w, t, secret, Tree(hashes(9)))
    j = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=segments(fe, job)).segment
    assert j is not None
    fe.challenge(fe.verifiers[1], t, w, (j + 2) % 8, b"\x70" * 32)  # another dispute: its bond is held
    d = fe.challenge(fe.verifiers[0], t, w, j, b"\x77" * 32)
    assert fe.resolver.functions.totalBonds().call() == 200 * E18
    owed = fe.owed(fe.verifiers[0])
    fe.send(w, fe.resolver.functions.answerForced(d, secret, snap))
    assert fe.owed(fe.verifiers[0]) - owed == 100 * E18 + 50 * E18
    assert fe.resolver.functions.jackpot().call() == 0
    assert fe.resolver.functions.totalBonds().call() == 100 * E18  # the other dispute's, untouched
    money_balances(fe)


def opened_selected(fe: Env, leaf_next_real: bool) -> tuple[int, Any, int, Tree]:
    """A selected claim past its challenge window, its seed opened: (task, worker, j*, tree).
    Its leaf j*+1 is the forced one, or (``leaf_next_real``) the real one: the opt-out."""
    job = fe.post_job()
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    r = claim_seeded(fe, w, t, secret)
    snap = bytes(fe.w3.eth.get_block(r["blockNumber"])["hash"])
    j = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=segments(fe, job)).segment
    assert j is not None
    real = hashes(9)
    published = real if leaf_next_real else [*real[:j + 1], keccak(b"forced"), *real[j + 2:]]
    tree = Tree(published)
    fe.deliver(t, w)
    fe.commit(w, t, tree.root)
    fe.reveal(w, t, tree.root)
    fe.chain.warp_past(fe.market.functions.getClaim(t, w.address).call()[3])
    fe.send(w, fe.resolver.functions.openSeed(t, w.address, secret, snap))
    return t, w, j, tree


def opt_out_dispute(fe: Env, t: int, w: Any, tree: Tree) -> tuple[int, list[Any]]:
    r = fe.send(fe.verifiers[0], fe.resolver.functions.challengeOptOut(t, w.address))
    d = int(fe.chain.events(fe.resolver, "DisputeOpened", r)[0]["args"]["disputeId"])
    assert fe.dispute(d)["accuserNext"] == forced.OPT_OUT
    fe.answer(d, tree, sender=w)  # the leaves j*, j*+1 with their proofs, as for any challenge
    return d, draw(fe, d)


def test_an_opted_out_worker_is_slashed_by_the_committee(env: Env) -> None:
    """Rule: a selected claim must publish the forced checkpoint. A worker that published the
    real one (so verifiers had nothing to find) is caught once its opening makes j* public:
    referees that reproduce its leaf j*+1 vote against it."""
    fe = forced_env(env, forced_bps=10_000)
    t, w, j, tree = opened_selected(fe, leaf_next_real=True)
    d, referees = opt_out_dispute(fe, t, w, tree)
    assert fe.dispute(d)["segment"] == j
    owed = fe.owed(fe.verifiers[0])
    vote(fe, d, referees, [tree.hashes[j + 1]] * 3)  # the replay gives exactly its leaf
    assert settle(fe, d)["outcome"] == ACCUSED_LOST
    assert fe.claim_status(t, w) == 7  # Ended: slashed
    assert fe.owed(fe.verifiers[0]) - owed == 100 * E18 + 40 * E18 // 2  # bond back + the bounty
    money_balances(fe)


def test_a_compliant_worker_keeps_its_pay_and_the_opt_out_challenger_loses_its_bond(env: Env) -> None:
    fe = forced_env(env, forced_bps=10_000)
    t, w, j, tree = opened_selected(fe, leaf_next_real=False)
    d, referees = opt_out_dispute(fe, t, w, tree)
    vote(fe, d, referees, [hashes(9)[j + 1]] * 3)  # the real h_{j*+1}: not what it published
    assert settle(fe, d)["outcome"] == ACCUSER_LOST
    fe.chain.warp_past(fe.market.functions.getClaim(t, w.address).call()[3])
    fe.send(fe.outsiders[0], fe.market.functions.finalize(t, w.address))
    assert fe.owed(w) == 50 * E18 + 40 * E18 + 80 * E18  # its pay, and the bond less the referees' share
    money_balances(fe)


def test_a_worker_that_withholds_checkpoint_j_star_loses_the_opt_out_dispute(env: Env) -> None:
    """UNAVAILABLE counts against the accused here too: withholding must not win."""
    fe = forced_env(env, forced_bps=10_000)
    t, w, _, tree = opened_selected(fe, leaf_next_real=False)
    d, referees = opt_out_dispute(fe, t, w, tree)
    vote(fe, d, referees, [bytes(32)] * 3)
    assert settle(fe, d)["outcome"] == ACCUSED_LOST
    money_balances(fe)


def test_no_opt_out_challenge_without_an_opened_selection(env: Env) -> None:
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job()
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    seeded_result(fe, w, t, secret, Tree(hashes(9)))
    fe.revert_with(fe.verifiers[0], fe.resolver.functions.challengeOptOut(t, w.address),
                   "DisputeResolverNotOptOut", t, w.address)  # not opened yet
    fe2 = forced_env(env, forced_bps=1)  # 0.01 %: this claim is not selected
    job = fe2.post_job()
    t, secret = fe2.task_id(job), os.urandom(32)
    snap = seeded_result(fe2, w, t, secret, Tree(hashes(9)))
    if forced.select(secret, snap, bps=1, redundancy=1, checkpoints=8).selected:
        pytest.skip("this claim was drawn at 0.01 %")
    fe2.chain.warp_past(fe2.market.functions.getClaim(t, w.address).call()[3])
    r = fe2.send(w, fe2.resolver.functions.openSeed(t, w.address, secret, snap))
    assert fe2.chain.events(fe2.resolver, "SeedOpened", r)[0]["args"]["selected"] is False
    fe2.revert_with(fe2.verifiers[0], fe2.resolver.functions.challengeOptOut(t, w.address),
                    "DisputeResolverNotOptOut", t, w.address)
    fe2.send(fe2.outsiders[0], fe2.market.functions.finalize(t, w.address))  # at once: no extra window
    money_balances(fe2)


def test_after_the_opening_a_challenge_of_j_star_pays_no_jackpot_and_its_bond_goes_to_the_worker(
        env: Env) -> None:
    """Rule: j* is public once opened; catching it then took no replay."""
    fe = forced_env(env, forced_bps=10_000)
    job = fe.post_job()
    w, t, secret = fe.workers[0], fe.task_id(job), os.urandom(32)
    snap = seeded_result(fe, w, t, secret, Tree(hashes(9)))
    j = forced.select(secret, snap, bps=10_000, redundancy=1, checkpoints=segments(fe, job)).segment
    fe.chain.warp_past(fe.market.functions.getClaim(t, w.address).call()[3])
    fe.send(w, fe.resolver.functions.openSeed(t, w.address, secret, snap))
    pool, owed = fe.resolver.functions.jackpot().call(), fe.owed(w)
    d = fe.challenge(fe.verifiers[0], t, w, j, b"\x77" * 32)
    r = fe.send(w, fe.resolver.functions.answerForced(d, secret, snap))
    assert fe.chain.events(fe.resolver, "JackpotPaid", r) == []
    assert fe.resolver.functions.jackpot().call() == pool and fe.owed(w) - owed == 100 * E18
    money_balances(fe)


@pytest.mark.parametrize(("forced_bps", "fee_bps"), [(0, 100), (10_001, 0), (100, 10_001)])
def test_the_resolver_refuses_forced_error_parameters_that_cannot_work(env: Env, forced_bps: int,
                                                                       fee_bps: int) -> None:
    from veritrain.artifacts import artifact
    from veritrain.dev.deploy import resolver_params_tuple

    factory = env.w3.eth.contract(abi=artifact("DisputeResolver")["abi"],
                                  bytecode=artifact("DisputeResolver")["bytecode"])
    params = resolver_params_tuple({"forcedErrorBps": forced_bps, "jackpotFeeBps": fee_bps})
    deploy = factory.constructor(env.market.address, env.registry.address, params)
    from web3.exceptions import ContractCustomError, ContractLogicError

    with pytest.raises((ContractCustomError, ContractLogicError)) as err:
        env.w3.eth.call({"from": env.owner.address, "data": deploy.data_in_transaction})
    assert env.chain.decoder.decode(err.value.data) == ("DisputeResolverInvalidParameter", ("forcedErrors",))


def test_job_tuple_default_is_redundancy_one() -> None:
    assert job_tuple()[3] == 1  # the tests above rely on it

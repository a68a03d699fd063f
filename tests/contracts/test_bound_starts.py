"""Bound starts: ``postJob`` binds every task's ``h_0`` (``startsRoot``), so a worker whose
revealed root starts elsewhere is slashed by a proof alone (``slashWrongStart``), no committee.

The attack stopped: a worker trains from another model (it skips the round's start, or starts
from a model it prefers); every segment replays, so no segment dispute can catch it, and before
bound starts it was paid. Each test below fails on a market without ``slashWrongStart``.

The requester's attack, stopped too: it binds bogus starts so that honest workers, starting
where the job document says, are slashed, and it collects their stakes. Round 0's starts are
public, so workers refuse such a job before claiming (worker/tasks.py); a round > 0 start needs
the key, so the market lets a worker refuse it after the key with its stake and costs
(``refuseStart``); and a wrong-start slash never pays the requester (``JobMarketRequesterCannotVerify``,
the rest of the stake to the owner). The tests marked below fail without those."""

from __future__ import annotations

from eth_utils import keccak

from contracts.conftest import DEFAULT_JOB, GENESIS, STARTS, Env
from contracts.helpers import Tree, hashes, pubkey

STAKE, REWARD = DEFAULT_JOB["stakePerTask"], DEFAULT_JOB["rewardPerTask"]
ELSEWHERE = keccak(b"some other model")
HONEST = Tree(hashes(9))
WRONG = Tree([ELSEWHERE] + hashes(9)[1:])  # replays fine from its own h_0, started elsewhere
REVEALED, DISPUTED, FINAL, ENDED = 4, 5, 6, 7
BOUNTY_BPS = 5_000


def _prove(env: Env, prover: object, t: int, worker: object, tree: Tree, starts: Tree = STARTS,
           bound_index: int | None = None) -> object:
    index = t & 0xFFFFFFFF if bound_index is None else bound_index
    return env.market.functions.slashWrongStart(
        t, worker.address, tree.hashes[0], tree.proof(0), starts.hashes[index], starts.proof(index))


def test_wrong_start_is_slashed_by_a_proof_alone(env: Env) -> None:
    job = env.post_job()
    t, w, prover = env.task_id(job), env.workers[0], env.outsiders[0]
    assert env.job(job)["startsRoot"] == STARTS.root
    env.revealed(w, t, WRONG)
    escrow = env.job(job)["escrow"]
    r = env.send(prover, _prove(env, prover, t, w, WRONG))
    ev = env.chain.events(env.market, "WrongStartProven", r)[0]["args"]
    bounty = STAKE * BOUNTY_BPS // 10_000
    assert (ev["worker"], ev["prover"], ev["started"], ev["bound"], ev["bounty"]) == (
        w.address, prover.address, ELSEWHERE, GENESIS, bounty)
    assert env.chain.events(env.market, "ClaimSlashed", r)[0]["args"]["stake"] == STAKE
    assert env.claim_status(t, w) == ENDED
    assert env.owed(prover) == bounty and env.owed(w) == 0
    # the rest goes to the protocol (the owner), never to the requester who bound the start
    assert env.owed(env.owner) == STAKE - bounty
    assert env.job(job)["escrow"] == escrow and env.owed(env.requester) == 0
    env.assert_solvent()
    # the slot reopened: an honest worker takes it and is paid; the cheat cannot finalize
    env.revealed(env.workers[1], t, HONEST)
    env.revert_with(prover, env.market.functions.finalize(t, w.address), "JobMarketWrongStatus", t, w.address,
                    ENDED)


def test_a_right_start_cannot_be_slashed(env: Env) -> None:
    job = env.post_job()
    t, w, prover = env.task_id(job), env.workers[0], env.outsiders[0]
    env.revealed(w, t, HONEST)
    env.revert_with(prover, _prove(env, prover, t, w, HONEST), "JobMarketRightStart", t, w.address, GENESIS)
    assert env.claim_status(t, w) == REVEALED


def test_forged_proofs_are_refused(env: Env) -> None:
    """A griefer cannot slash an honest worker with another task's bound start, nor with a
    leaf 0 the worker never committed to."""
    other = keccak(b"task 1's start")
    starts = Tree([GENESIS, other])
    job = env.post_job(startsRoot=starts.root)
    t, w, griefer = env.task_id(job, 0), env.workers[0], env.outsiders[0]
    env.revealed(w, t, HONEST)
    # task 1's bound start with its valid proof does not pass for task 0 (the index is in the leaf)
    env.revert_with(griefer, _prove(env, griefer, t, w, HONEST, starts, bound_index=1),
                    "JobMarketBadStartProof", t, w.address, True)
    # a made-up leaf 0 does not verify under the worker's root
    forged = env.market.functions.slashWrongStart(t, w.address, ELSEWHERE, HONEST.proof(0), GENESIS,
                                                  starts.proof(0))
    env.revert_with(griefer, forged, "JobMarketBadStartProof", t, w.address, False)
    assert env.claim_status(t, w) == REVEALED and env.owed(griefer) == 0


def test_only_revealed_or_disputed_claims_can_be_slashed(env: Env) -> None:
    job = env.post_job()
    t, w, prover = env.task_id(job), env.workers[0], env.outsiders[0]
    env.claim(w, t)
    env.deliver(t, w)
    env.commit(w, t, WRONG.root)
    env.revert_with(prover, _prove(env, prover, t, w, WRONG), "JobMarketWrongStatus", t, w.address, 3)
    env.reveal(w, t, WRONG.root)
    env.chain.warp_past(env.market.functions.getClaim(t, w.address).call()[3])
    env.send(prover, env.market.functions.finalize(t, w.address))  # nobody looked in time
    env.revert_with(prover, _prove(env, prover, t, w, WRONG), "JobMarketWrongStatus", t, w.address, FINAL)


def test_a_disputed_wrong_start_is_slashed_once(env: Env) -> None:
    """Slashed by proof while a segment dispute is open: the dispute later finds nothing left
    to slash, and the money still adds up."""
    from veritrain.dev.deploy import RESOLVER_PARAMS

    job = env.post_job()
    t, w, prover = env.task_id(job), env.workers[0], env.outsiders[0]
    env.revealed(w, t, WRONG)
    challenger = env.verifiers[0]
    r = env.send(challenger, env.resolver.functions.challenge(t, w.address, 3, keccak(b"other")))
    did = env.chain.events(env.resolver, "DisputeOpened", r)[0]["args"]["disputeId"]
    assert env.claim_status(t, w) == DISPUTED
    env.send(prover, _prove(env, prover, t, w, WRONG))
    assert env.claim_status(t, w) == ENDED
    env.assert_solvent()
    env.chain.warp(RESOLVER_PARAMS["responseWindow"] + 1)  # the ended claim cannot answer
    env.send(env.outsiders[1], env.resolver.functions.settle(did))
    assert env.market.functions.getClaim(t, w.address).call()[6] == 0  # no dispute left open
    assert env.owed(prover) == STAKE * BOUNTY_BPS // 10_000
    env.assert_solvent()


def test_the_requester_cannot_prove_and_gains_nothing_from_a_slash(env: Env) -> None:
    """The requester's attack: bogus bound starts, an honest worker slashed, the stake collected.
    The requester may not prove itself, and an accomplice's proof pays the requester nothing
    (fails on a market that returns the slash to the escrow or lets the requester prove)."""
    bogus = Tree([keccak(b"bogus start 0"), keccak(b"bogus start 1")])
    job = env.post_job(startsRoot=bogus.root)
    t, w, accomplice = env.task_id(job), env.workers[0], env.outsiders[0]
    env.revealed(w, t, HONEST)  # a worker that did not check the starts before claiming
    escrow = env.job(job)["escrow"]
    env.revert_with(env.requester, _prove(env, env.requester, t, w, HONEST, bogus),
                    "JobMarketRequesterCannotVerify", job, env.requester.address)
    env.send(accomplice, _prove(env, accomplice, t, w, HONEST, bogus))
    assert env.job(job)["escrow"] == escrow  # not a token of the stake reaches the requester
    assert env.owed(env.requester) == 0 and env.owed(env.owner) == STAKE - STAKE * BOUNTY_BPS // 10_000
    env.assert_solvent()


def _keyed(env: Env, worker: object) -> tuple[int, int]:
    job = env.post_job(startsKeyed=True)
    t = env.task_id(job)
    env.claim(worker, t)
    env.deliver(t, worker)
    return job, t


def test_a_keyed_start_is_refused_with_stake_and_costs(env: Env) -> None:
    """Round > 0: a worker finds, after the key, that its bound start is not the one the key
    opens; it refuses before committing, gets its stake and the griefing fee, and the slot
    closes (no honest worker could fill it). Fails on a market without ``refuseStart``."""
    w = env.workers[0]
    job, t = _keyed(env, w)
    escrow = env.job(job)["escrow"]
    r = env.send(w, env.market.functions.refuseStart(t))
    fee = DEFAULT_JOB["griefingFee"]
    assert env.chain.events(env.market, "StartRefused", r)[0]["args"]["griefingFee"] == fee
    assert env.owed(w) == STAKE + fee and env.claim_status(t, w) == ENDED
    assert env.job(job)["escrow"] == escrow - fee
    assert env.market.functions.getTask(t).call()[4] == 1  # closed
    late = env.workers[1]
    env.revert_with(late, env.market.functions.claim(t, pubkey(late), bytes(32)), "JobMarketTaskFull", t)
    env.assert_solvent()


def test_a_refusal_needs_a_keyed_job_an_uncommitted_claim_and_time(env: Env) -> None:
    """A round-0 job's starts are public (workers check them before claiming), so no refusal
    pays there; nor after a commit, after the commit deadline, or for someone else's claim."""
    w = env.workers[0]
    public = env.post_job()
    t0 = env.task_id(public)
    env.claim(w, t0)
    env.deliver(t0, w)
    env.revert_with(w, env.market.functions.refuseStart(t0), "JobMarketStartsPublic", public)
    _, t = _keyed(env, env.workers[1])
    env.revert_with(w, env.market.functions.refuseStart(t), "JobMarketWrongStatus", t, w.address, 0)
    env.commit(env.workers[1], t, HONEST.root)
    env.revert_with(env.workers[1], env.market.functions.refuseStart(t), "JobMarketWrongStatus", t,
                    env.workers[1].address, 3)
    _, t2 = _keyed(env, env.workers[2])
    env.chain.warp_past(env.market.functions.getClaim(t2, env.workers[2].address).call()[2])
    deadline = env.market.functions.getClaim(t2, env.workers[2].address).call()[2]
    env.revert_with(env.workers[2], env.market.functions.refuseStart(t2), "JobMarketDeadlinePassed", t2,
                    env.workers[2].address, deadline)
    assert env.owed(w) == env.owed(env.workers[1]) == env.owed(env.workers[2]) == 0

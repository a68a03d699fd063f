"""JobMarket: on-chain data-key delivery to sampling verifiers (requestVerifierKey /
deliverVerifierKey), and the edges of the gas-optimised storage (packed spec CID, commitments,
the owed marker of registered verifiers). No token moves in a key exchange."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.conftest import Env, job_tuple
from contracts.helpers import Tree, hashes, pubkey

NONE, REQUESTED, DELIVERED = 0, 1, 2
CANCELLED = 2
ENVELOPE = b"\x04" + b"\xee" * 128


def b32(name: str) -> str:
    """The field name JobMarketInvalidParameter(string) carries (a plain string since issue 14)."""
    return name


def key_status(env: Env, job: int, verifier: Any) -> int:
    return int(env.market.functions.verifierKeyStatus(job, verifier.address).call())


def test_verifier_requests_and_requester_delivers_the_key(env: Env) -> None:
    job, v = env.post_job(), env.verifiers[0]
    balances = (env.balance(env.market.address), env.balance(v), env.balance(env.requester))
    assert key_status(env, job, v) == NONE
    r = env.send(v, env.market.functions.requestVerifierKey(job))
    ev = env.chain.events(env.market, "VerifierKeyRequested", r)[0]["args"]
    assert (ev["jobId"], ev["verifier"], ev["pubKey"]) == (job, v.address, pubkey(v))
    assert key_status(env, job, v) == REQUESTED
    r = env.send(env.requester, env.market.functions.deliverVerifierKey(job, v.address, ENVELOPE))
    ev = env.chain.events(env.market, "VerifierKeyDelivered", r)[0]["args"]
    assert (ev["jobId"], ev["verifier"], ev["envelope"]) == (job, v.address, ENVELOPE)
    assert key_status(env, job, v) == DELIVERED
    # another verifier of the same job is independent
    assert key_status(env, job, env.verifiers[1]) == NONE
    assert (env.balance(env.market.address), env.balance(v), env.balance(env.requester)) == balances
    env.assert_solvent()


def test_request_verifier_key_reverts(env: Env) -> None:
    job, v, m = env.post_job(), env.verifiers[0], env.market.functions
    outsider = env.outsiders[1]
    env.revert_with(outsider, m.requestVerifierKey(job), "JobMarketNotVerifier", outsider.address)
    env.revert_with(v, m.requestVerifierKey(99), "JobMarketUnknownJob", 99)
    # a verifier that posted the job cannot verify it
    own = env.post_job(requester=env.verifiers[2])
    poster = env.verifiers[2]
    env.revert_with(poster, m.requestVerifierKey(own), "JobMarketRequesterCannotVerify", own, poster.address)
    env.send(v, m.requestVerifierKey(job))
    wrong = "JobMarketVerifierKeyWrongStatus"
    env.revert_with(v, m.requestVerifierKey(job), wrong, job, v.address, REQUESTED)
    env.send(env.requester, m.deliverVerifierKey(job, v.address, ENVELOPE))
    env.revert_with(v, m.requestVerifierKey(job), wrong, job, v.address, DELIVERED)
    # an unbonding verifier is no longer in the pool
    leaving = env.verifiers[3]
    env.send(leaving, env.registry.functions.deregister())
    env.revert_with(leaving, m.requestVerifierKey(job), "JobMarketNotVerifier", leaving.address)
    # a cancelled job takes no new requests
    env.send(env.requester, m.cancelJob(job))
    env.revert_with(
        env.verifiers[1], m.requestVerifierKey(job), "JobMarketJobNotOpen", job, CANCELLED
    )


def test_deliver_verifier_key_reverts(env: Env) -> None:
    job, v, m = env.post_job(), env.verifiers[0], env.market.functions
    env.revert_with(
        env.requester, m.deliverVerifierKey(job, v.address, ENVELOPE),
        "JobMarketVerifierKeyWrongStatus", job, v.address, NONE,
    )
    env.send(v, m.requestVerifierKey(job))
    env.revert_with(
        env.outsiders[0], m.deliverVerifierKey(job, v.address, ENVELOPE),
        "JobMarketNotRequester", job, env.outsiders[0].address,
    )
    env.revert_with(
        v, m.deliverVerifierKey(job, v.address, ENVELOPE), "JobMarketNotRequester", job, v.address
    )
    env.send(env.requester, m.deliverVerifierKey(job, v.address, ENVELOPE))
    env.revert_with(
        env.requester, m.deliverVerifierKey(job, v.address, ENVELOPE),
        "JobMarketVerifierKeyWrongStatus", job, v.address, DELIVERED,
    )
    env.assert_solvent()


# ---------------------------------------------------------------------------- storage edges


@pytest.mark.parametrize("length", [1, 31, 32, 46, 59, 63, 64, 100])
def test_spec_cid_round_trips_at_every_length(env: Env, length: int) -> None:
    cid = ("bafy" + "abcdefghijklmnopqrstuvwxyz234567" * 4)[:length]
    job = env.post_job(specCid=cid)
    assert env.job(job)["specCid"] == cid


def test_escrow_beyond_uint128_is_rejected(env: Env) -> None:
    call = env.market.functions.postJob(
        job_tuple(
            taskCount=2**32 - 1, redundancy=1, rewardPerTask=2**96 - 1, griefingFee=0, refereeFeePool=2**127
        )
    )
    env.revert_with(env.requester, call, "JobMarketInvalidParameter", b32("escrow"))


def test_zero_commitment_is_rejected_and_status_follows_the_commitment(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.claim(w, t)
    env.deliver(t, w)
    zero = env.market.functions.commit(t, b"\0" * 32)
    env.revert_with(w, zero, "JobMarketInvalidParameter", b32("commitment"))
    assert env.claim_status(t, w) == 2  # KeyDelivered
    tree = Tree(hashes(9))
    env.commit(w, t, tree.root)
    assert env.claim_status(t, w) == 3  # Committed
    env.revert_with(
        w, env.market.functions.commit(t, b"\1" * 32), "JobMarketWrongStatus", t, w.address, 3
    )


def test_registered_verifier_owes_nothing_and_withdraws_repeatedly(env: Env) -> None:
    v = env.verifiers[0]
    assert env.owed(v) == 0
    env.revert_with(v, env.market.functions.withdraw(), "JobMarketNothingOwed", v.address)
    escrow, stakes, reg, res, owed_total = env.market.functions.buckets().call()
    assert owed_total == 0 and stakes == 0 and escrow == 0
    assert reg == sum(env.registry.functions.stakeOf(x.address).call() for x in env.verifiers)
    assert env.market.functions.heldBy(env.registry.address).call() == reg
    assert env.market.functions.heldBy(env.outsiders[0].address).call() == 0
    # a verifier that leaves is credited its stake, withdraws it, and is owed nothing again
    env.send(v, env.registry.functions.deregister())
    env.chain.warp(8 * 86_400)
    env.send(v, env.registry.functions.withdrawStake())
    stake = env.owed(v)
    assert stake > 0
    before = env.balance(v)
    env.send(v, env.market.functions.withdraw())
    assert env.balance(v) == before + stake and env.owed(v) == 0
    env.revert_with(v, env.market.functions.withdraw(), "JobMarketNothingOwed", v.address)
    env.assert_solvent()


def test_single_slot_reveal_window_follows_the_live_claim(env: Env) -> None:
    """r = 1: reveal reads the window from the claim, not the task; after an abandoned claim
    the live claim's deadline is still the task's revealFrom (the revealDeadline view)."""
    job = env.post_job()
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    env.claim(a, t)
    key_deadline = env.market.functions.getClaim(t, a.address).call()[1]
    env.chain.warp_past(key_deadline)
    env.send(env.outsiders[0], env.market.functions.abandon(t, a.address))
    env.claim(b, t)
    env.deliver(t, b)
    tree = Tree(hashes(9))
    env.commit(b, t, tree.root)
    deadline = env.market.functions.revealDeadline(t).call()
    commit_deadline = env.market.functions.getClaim(t, b.address).call()[2]
    assert deadline == commit_deadline + 200  # DEFAULT_JOB revealWindow
    env.chain.warp_past(deadline)
    env.revert_with(
        b, env.market.functions.reveal(t, tree.root, b"\x05" * 32, "x"),
        "JobMarketDeadlinePassed", t, b.address, deadline,
    )
    env.send(env.outsiders[0], env.market.functions.timeout(t, b.address))
    env.assert_solvent()

"""JobMarket: every transition of a job and a claim, and every revert with its custom error."""

from __future__ import annotations

import pytest

from contracts.conftest import DEFAULT_JOB, E18, Env, job_tuple
from contracts.helpers import Tree, commitment, hashes, pubkey

REWARD, STAKE, FEE = DEFAULT_JOB["rewardPerTask"], DEFAULT_JOB["stakePerTask"], DEFAULT_JOB["griefingFee"]
POOL = DEFAULT_JOB["refereeFeePool"]
CLAIMED, KEY, COMMITTED, REVEALED, DISPUTED, FINAL = 1, 2, 3, 4, 5, 6
OPEN, CANCELLED, CLOSED = 1, 2, 3
TREE = Tree(hashes(9))


NO_SEED = bytes(32)  # a claim that is never a forced error (docs/spec/forced.md)


def b32(name: str) -> str:
    """The field name JobMarketInvalidParameter(string) carries (a plain string since issue 14)."""
    return name


def test_post_job_pulls_escrow_and_records_job(env: Env) -> None:
    before = env.balance(env.requester)
    r = env.send(env.requester, env.market.functions.postJob(job_tuple(taskCount=3, redundancy=2)))
    ev = env.chain.events(env.market, "JobPosted", r)[0]["args"]
    escrow = 6 * REWARD + POOL
    assert (ev["jobId"], ev["requester"], ev["escrow"], ev["taskCount"], ev["redundancy"]) == (
        1,
        env.requester.address,
        escrow,
        3,
        2,
    )
    assert ev["specCid"] == DEFAULT_JOB["specCid"]
    assert env.balance(env.requester) == before - escrow
    job = env.job(1)
    assert job["escrow"] == escrow and job["status"] == OPEN and job["refereeFee"] == POOL // 6
    assert job["specCid"] == DEFAULT_JOB["specCid"] and job["checkpointCount"] == 9
    assert env.market.functions.jobCount().call() == 1
    assert env.market.functions.taskIdOf(1, 2).call() == (1 << 32) | 2
    env.assert_solvent()


@pytest.mark.parametrize(
    "field,value",
    [
        ("taskCount", 0),
        ("redundancy", 0),
        ("checkpointCount", 1),
        ("stakePerTask", 0),
        ("griefingFee", 51 * E18),
        ("keyWindow", 0),
        ("submissionWindow", 0),
        ("revealWindow", 0),
        ("challengeWindow", 0),
        ("specCid", ""),
        ("startsRoot", b"\0" * 32),
    ],
)
def test_post_job_rejects_bad_parameters(env: Env, field: str, value: object) -> None:
    call = env.market.functions.postJob(job_tuple(**{field: value}))
    env.revert_with(env.requester, call, "JobMarketInvalidParameter", b32(field))


def test_job_ids_stop_at_32_bits(env: Env) -> None:
    """Task ids (jobId << 32 | index) must fit the resolver's 64 bits: job 2**32 is refused."""
    job = env.post_job()
    word = int.from_bytes(env.w3.eth.get_storage_at(env.market.address, 2), "big")
    assert word & (2**160 - 1) == int(env.resolver.address, 16) and word >> 160 == job  # resolver | jobCount
    last = (2**32 - 2) << 160 | int(env.resolver.address, 16)
    env.w3.provider.make_request("anvil_setStorageAt", [env.market.address, "0x2", f"0x{last:064x}"])
    assert env.post_job() == 2**32 - 1  # the last id that fits
    env.revert_with(env.requester, env.market.functions.postJob(job_tuple()), "JobMarketInvalidParameter",
                    b32("jobCount"))


def test_pause_stops_new_jobs_only_and_only_owner_pauses(env: Env) -> None:
    job = env.post_job()
    env.revert_with(
        env.requester, env.market.functions.pause(), "OwnableUnauthorizedAccount", env.requester.address
    )
    env.send(env.owner, env.market.functions.pause())
    env.revert_with(env.requester, env.market.functions.postJob(job_tuple()), "EnforcedPause")
    env.claim(env.workers[0], env.task_id(job))  # running jobs keep working
    env.send(env.owner, env.market.functions.unpause())
    assert env.post_job() == 2


def test_modules_are_wired_once(env: Env) -> None:
    env.revert_with(
        env.owner,
        env.market.functions.setModules(env.owner.address, env.requester.address),
        "JobMarketModulesAlreadySet",
    )
    assert env.market.functions.modules().call() == [env.registry.address, env.resolver.address]
    env.revert_with(
        env.owner, env.market.functions.collect(env.owner.address, 1), "JobMarketNotModule", env.owner.address
    )
    env.revert_with(
        env.owner,
        env.market.functions.slashClaim(1, env.owner.address),
        "JobMarketNotModule",
        env.owner.address,
    )


def test_happy_path_claim_key_commit_reveal_finalize_withdraw(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    start = env.balance(w)
    r = env.claim(w, t)
    ev = env.chain.events(env.market, "TaskClaimed", r)[0]["args"]
    assert (ev["taskId"], ev["jobId"], ev["worker"], ev["pubKey"]) == (t, job, w.address, pubkey(w))
    assert ev["commitDeadline"] == ev["keyDeadline"] + DEFAULT_JOB["submissionWindow"]
    assert env.balance(w) == start - STAKE and env.claim_status(t, w) == CLAIMED
    r = env.deliver(t, w)
    assert env.chain.events(env.market, "KeyDelivered", r)[0]["args"]["envelope"] == b"\xee" * 129
    assert env.claim_status(t, w) == KEY
    salt = b"\x07" * 32
    r = env.commit(w, t, TREE.root, salt)
    committed = commitment(TREE.root, w.address, salt)
    assert env.chain.events(env.market, "ResultCommitted", r)[0]["args"]["commitment"] == committed
    claim = env.market.functions.getClaim(t, w.address).call()
    assert (claim[4], claim[5]) == (committed, b"\0" * 32)  # Committed: the commitment, no root yet
    r = env.reveal(w, t, TREE.root, salt, cid="bafyManifest")
    ev = env.chain.events(env.market, "ResultRevealed", r)[0]["args"]
    assert (ev["root"], ev["manifestCid"]) == (TREE.root, "bafyManifest")
    claim = env.market.functions.getClaim(t, w.address).call()
    assert claim[0] == REVEALED and claim[5] == TREE.root and claim[3] == ev["challengeDeadline"]
    assert claim[4] == b"\0" * 32  # the root replaced the commitment (the event keeps it)
    env.revert_with(
        w,
        env.market.functions.finalize(t, w.address),
        "JobMarketTooEarly",
        t,
        w.address,
        ev["challengeDeadline"],
    )
    env.chain.warp_past(ev["challengeDeadline"])
    r = env.send(env.outsiders[0], env.market.functions.finalize(t, w.address))
    assert env.chain.events(env.market, "ClaimFinalized", r)[0]["args"]["reward"] == REWARD
    assert env.owed(w) == REWARD + STAKE and env.claim_status(t, w) == FINAL
    env.assert_solvent()
    r = env.send(w, env.market.functions.withdraw())
    assert env.chain.events(env.market, "Withdrawn", r)[0]["args"]["amount"] == REWARD + STAKE
    assert env.balance(w) == start + REWARD and env.owed(w) == 0
    env.revert_with(w, env.market.functions.withdraw(), "JobMarketNothingOwed", w.address)
    # the slot is done: nobody else can claim it
    env.revert_with(
        env.workers[1], env.market.functions.claim(t, pubkey(env.workers[1]), NO_SEED), "JobMarketTaskFull", t
    )
    env.assert_solvent()


def test_claim_reverts(env: Env) -> None:
    job = env.post_job()
    t, w, other = env.task_id(job), env.workers[0], env.workers[1]
    env.revert_with(
        w, env.market.functions.claim(t, pubkey(other), NO_SEED), "JobMarketBadPubKey", w.address,
        other.address
    )
    env.revert_with(
        w, env.market.functions.claim(t, pubkey(w)[:63], NO_SEED), "JobMarketBadPubKey", w.address,
        "0x" + "00" * 20
    )
    env.revert_with(
        w,
        env.market.functions.claim(env.task_id(job, 2), pubkey(w), bytes(32)),
        "JobMarketTaskOutOfRange",
        env.task_id(job, 2),
    )
    unknown = env.market.functions.claim(env.task_id(9), pubkey(w), NO_SEED)
    env.revert_with(w, unknown, "JobMarketUnknownJob", 9)
    env.claim(w, t)
    env.revert_with(other, env.market.functions.claim(t, pubkey(other), bytes(32)), "JobMarketTaskFull", t)
    job2 = env.post_job(redundancy=2)
    env.claim(w, env.task_id(job2))
    env.revert_with(
        w,
        env.market.functions.claim(env.task_id(job2), pubkey(w), bytes(32)),
        "JobMarketWrongStatus",
        env.task_id(job2),
        w.address,
        CLAIMED,
    )


def test_deliver_key_reverts(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    env.revert_with(
        env.requester,
        env.market.functions.deliverKey(t, w.address, b"k"),
        "JobMarketWrongStatus",
        t,
        w.address,
        0,
    )
    r = env.claim(w, t)
    key_deadline = env.chain.events(env.market, "TaskClaimed", r)[0]["args"]["keyDeadline"]
    env.revert_with(
        w, env.market.functions.deliverKey(t, w.address, b"k"), "JobMarketNotRequester", job, w.address
    )
    env.chain.warp_past(key_deadline)
    env.revert_with(
        env.requester,
        env.market.functions.deliverKey(t, w.address, b"k"),
        "JobMarketDeadlinePassed",
        t,
        w.address,
        key_deadline,
    )


def test_requester_that_never_sends_keys_pays_griefing_fee(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    r = env.claim(w, t)
    key_deadline = env.chain.events(env.market, "TaskClaimed", r)[0]["args"]["keyDeadline"]
    env.revert_with(
        w, env.market.functions.abandon(t, w.address), "JobMarketTooEarly", t, w.address, key_deadline
    )
    env.chain.warp_past(key_deadline)
    r = env.send(env.outsiders[0], env.market.functions.abandon(t, w.address))
    assert env.chain.events(env.market, "ClaimAbandoned", r)[0]["args"]["griefingFee"] == FEE
    assert env.owed(w) == STAKE + FEE and env.claim_status(t, w) == 7  # Ended, not "never claimed"
    assert env.job(job)["escrow"] == 2 * REWARD + POOL - FEE
    env.claim(env.workers[1], t)  # the slot reopened
    env.assert_solvent()


def test_griefing_fee_without_free_escrow_closes_the_slot(env: Env) -> None:
    job = env.post_job(refereeFeePool=0, taskCount=1)
    t, w = env.task_id(job), env.workers[0]
    env.claim(w, t)
    env.chain.warp(DEFAULT_JOB["keyWindow"] + 1)
    env.send(w, env.market.functions.abandon(t, w.address))
    assert env.owed(w) == STAKE + FEE
    assert env.market.functions.getTask(t).call()[4] == 1  # closed
    env.revert_with(
        env.workers[1], env.market.functions.claim(t, pubkey(env.workers[1]), NO_SEED), "JobMarketTaskFull", t
    )
    r = env.send(env.outsiders[0], env.market.functions.closeJob(job))
    assert env.chain.events(env.market, "JobClosed", r)[0]["args"]["refunded"] == REWARD - FEE
    assert env.owed(env.requester) == REWARD - FEE
    env.assert_solvent()


def test_commit_and_reveal_reverts(env: Env) -> None:
    job = env.post_job()
    t, w = env.task_id(job), env.workers[0]
    r = env.claim(w, t)
    commit_deadline = env.chain.events(env.market, "TaskClaimed", r)[0]["args"]["commitDeadline"]
    env.revert_with(
        w, env.market.functions.commit(t, b"\1" * 32), "JobMarketWrongStatus", t, w.address, CLAIMED
    )
    env.deliver(t, w)
    env.revert_with(
        w,
        env.market.functions.reveal(t, TREE.root, b"\5" * 32, "x"),
        "JobMarketWrongStatus",
        t,
        w.address,
        KEY,
    )
    env.chain.warp_past(commit_deadline)
    env.revert_with(
        w,
        env.market.functions.commit(t, b"\1" * 32),
        "JobMarketDeadlinePassed",
        t,
        w.address,
        commit_deadline,
    )


def test_a_worker_cannot_reveal_another_workers_root(env: Env) -> None:
    """B copies A's commitment (same bytes) and then tries A's root and salt: bound to A."""
    job = env.post_job(redundancy=2)
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    for w in (a, b):
        env.claim(w, t)
        env.deliver(t, w)
    salt = b"\x09" * 32
    env.commit(a, t, TREE.root, salt)
    copied = env.market.functions.getClaim(t, a.address).call()[4]
    env.send(b, env.market.functions.commit(t, copied))
    env.reveal(a, t, TREE.root, salt)
    env.revert_with(
        b, env.market.functions.reveal(t, TREE.root, salt, "x"), "JobMarketCommitMismatch", t, b.address
    )


def test_reveals_wait_for_every_commit_of_the_task(env: Env) -> None:
    job = env.post_job(redundancy=2)
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    env.claim(a, t)
    env.deliver(t, a)
    env.commit(a, t, TREE.root)
    env.claim(b, t)
    reveal_from = env.market.functions.getTask(t).call()[0]
    env.revert_with(
        a,
        env.market.functions.reveal(t, TREE.root, b"\5" * 32, "x"),
        "JobMarketTooEarly",
        t,
        a.address,
        reveal_from,
    )
    env.deliver(t, b)
    env.commit(b, t, TREE.root)
    env.reveal(a, t, TREE.root)  # all committed: reveals open
    env.reveal(b, t, TREE.root)


def test_reveal_deadline_and_timeouts(env: Env) -> None:
    job = env.post_job(redundancy=2)
    t, a, b = env.task_id(job), env.workers[0], env.workers[1]
    for w in (a, b):
        env.claim(w, t)
        env.deliver(t, w)
    env.commit(a, t, TREE.root)
    commit_deadline_b = env.market.functions.getClaim(t, b.address).call()[2]
    env.revert_with(
        env.outsiders[0],
        env.market.functions.timeout(t, b.address),
        "JobMarketTooEarly",
        t,
        b.address,
        commit_deadline_b,
    )
    env.revert_with(
        env.outsiders[0],
        env.market.functions.timeout(t, env.workers[2].address),
        "JobMarketWrongStatus",
        t,
        env.workers[2].address,
        0,
    )
    env.chain.warp_past(commit_deadline_b)
    # b missed its commit deadline: half its stake goes to the escrow, the slot reopens
    r = env.send(env.outsiders[0], env.market.functions.timeout(t, b.address))
    penalty = STAKE // 2
    assert env.chain.events(env.market, "ClaimTimedOut", r)[0]["args"]["penalty"] == penalty
    assert env.owed(b) == STAKE - penalty
    assert env.job(job)["escrow"] == 2 * 2 * REWARD + POOL + penalty
    deadline = env.market.functions.revealDeadline(t).call()
    env.revert_with(
        env.outsiders[0],
        env.market.functions.timeout(t, a.address),
        "JobMarketTooEarly",
        t,
        a.address,
        deadline,
    )
    env.chain.warp_past(deadline)
    env.revert_with(
        a,
        env.market.functions.reveal(t, TREE.root, b"\5" * 32, "x"),
        "JobMarketDeadlinePassed",
        t,
        a.address,
        deadline,
    )
    env.send(env.outsiders[0], env.market.functions.timeout(t, a.address))
    assert env.owed(a) == STAKE - penalty
    task = env.market.functions.getTask(t).call()
    assert tuple(task[1:4]) == (0, 0, 0)
    env.claim(env.workers[2], t)  # reopened
    env.assert_solvent()


def test_cancel_and_close(env: Env) -> None:
    job = env.post_job(taskCount=3)
    t0, w = env.task_id(job), env.workers[0]
    env.revert_with(w, env.market.functions.cancelJob(job), "JobMarketNotRequester", job, w.address)
    env.revealed(w, t0, TREE)
    r = env.send(env.requester, env.market.functions.cancelJob(job))
    refunded = env.chain.events(env.market, "JobCancelled", r)[0]["args"]["refunded"]
    assert refunded == 2 * REWARD + POOL and env.owed(env.requester) == refunded
    assert env.job(job)["status"] == CANCELLED
    env.revert_with(
        env.workers[1],
        env.market.functions.claim(env.task_id(job, 1), pubkey(env.workers[1]), bytes(32)),
        "JobMarketJobNotOpen",
        job,
        CANCELLED,
    )
    env.revert_with(env.requester, env.market.functions.cancelJob(job), "JobMarketJobNotOpen", job, CANCELLED)
    env.revert_with(env.requester, env.market.functions.closeJob(job), "JobMarketJobBusy", job, 1, 1)
    env.chain.warp(DEFAULT_JOB["challengeWindow"] + 1)
    env.send(env.outsiders[0], env.market.functions.finalize(t0, w.address))
    r = env.send(env.outsiders[0], env.market.functions.closeJob(job))
    assert env.chain.events(env.market, "JobClosed", r)[0]["args"]["refunded"] == 0
    env.revert_with(env.requester, env.market.functions.closeJob(job), "JobMarketJobNotOpen", job, CLOSED)
    env.assert_solvent()


def test_close_after_all_tasks_final_returns_unused_pool(env: Env) -> None:
    job = env.post_job(taskCount=1)
    t, w = env.task_id(job), env.workers[0]
    env.revert_with(env.requester, env.market.functions.closeJob(job), "JobMarketJobBusy", job, 0, 1)
    env.revealed(w, t, TREE)
    env.chain.warp(DEFAULT_JOB["challengeWindow"] + 1)
    env.send(w, env.market.functions.finalize(t, w.address))
    env.send(env.requester, env.market.functions.closeJob(job))
    assert env.owed(env.requester) == POOL and env.job(job)["escrow"] == 0
    env.assert_solvent()

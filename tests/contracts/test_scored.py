"""ScoredRounds: windows, commit-reveal of updates and scores, median settlement, slashing.

Each attack test names the defence it checks; each would fail without that defence
(a mean instead of the median, paying every revealed submission, no copy vote, no slash of
a silent committer, commitments that do not bind their sender).
"""

from __future__ import annotations

from typing import Any

from contracts.conftest import E18
from contracts.helpers import commitment, pubkey
from contracts.scored_helpers import (  # noqa: F401  (fixtures)
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

MODEL = b"\x02" * 32
REWARD = 100 * E18
FEE = 12 * E18
WSTAKE = 20 * E18
VSTAKE = 30 * E18


def _setup(s: Scored, workers: int = 3, validators: int = 3, **params: Any) -> int:
    job = s.post(**params)
    s.join_workers(job, s.workers[:workers])
    s.join_validators(job, s.validators[:validators])
    return job


Vote = tuple[Any, list[int], int, bytes]


def _honest(s: Scored, scores: list[int], copiers: int = 0, n: int = 3) -> list[Vote]:
    return [(v, scores, copiers, MODEL) for v in s.validators[:n]]


def test_honest_window_splits_reward_pro_rata_and_returns_every_token(scored: Scored) -> None:
    s = scored
    before = s.env.balance(s.requester)
    job = _setup(s)
    w = s.workers[:3]
    r = s.run_window(job, 0, [(w[0], "a"), (w[1], "b"), (w[2], "c")], _honest(s, [600, 300, 100]))
    assert [e["payout"] for e in s.settled(r)] == [60 * E18, 30 * E18, 10 * E18]
    assert [s.owed(x) for x in w] == [60 * E18, 30 * E18, 10 * E18]
    assert [s.owed(v) for v in s.validators[:3]] == [4 * E18] * 3
    assert s.c.functions.getJob(job).call()[5] == MODEL  # the window's global model
    assert s.slashed(r) == {}
    s.assert_solvent()
    s.run_window(job, 1, [(w[0], "a1")], _honest(s, [5]))
    assert s.owed(w[0]) == 160 * E18
    for acct in [*w, *s.validators[:3]]:
        s.send(acct, s.c.functions.leave(job))
    for acct in [*w, *s.validators[:3]]:
        s.send(acct, s.c.functions.withdraw())
    assert s.balance() == 0 and s.c.functions.liabilities().call() == 0
    # the requester paid exactly the two windows' rewards and fees
    assert s.env.balance(s.requester) == before - 2 * (REWARD + FEE)


def test_lying_validator_moves_no_payout_and_is_slashed(scored: Scored) -> None:
    """Defence: the median over validators, and the slash of a validator far from it. With a
    mean, the liar's 10,000 for worker 2 would buy it most of the reward."""
    s = scored
    job = _setup(s)
    w, v = s.workers[:3], s.validators
    votes = [(v[0], [500, 500, 0], 0, MODEL), (v[1], [520, 480, 0], 0, MODEL),
             (v[2], [0, 0, 10_000], 0, MODEL)]
    r = s.run_window(job, 0, [(w[0], "a"), (w[1], "b"), (w[2], "c")], votes)
    out = s.settled(r)
    assert [e["score"] for e in out] == [500, 480, 0]
    assert out[2]["payout"] == 0
    assert out[0]["payout"] == REWARD * 500 // 980
    assert s.slashed(r) == {v[2].address: VSTAKE // 2}
    assert s.stake(job, v[2]) == VSTAKE // 2
    assert s.owed(v[2]) == 0 and s.owed(v[0]) == s.owed(v[1]) == FEE // 2
    s.assert_solvent()


def test_validator_naming_another_global_model_is_slashed(scored: Scored) -> None:
    """Defence: the window's model is the majority's hash and dissent from it is slashed."""
    s = scored
    job = _setup(s)
    w, v = s.workers[:2], s.validators
    votes = [(v[0], [10, 10], 0, MODEL), (v[1], [10, 10], 0, MODEL), (v[2], [10, 10], 0, b"\x66" * 32)]
    r = s.run_window(job, 0, [(w[0], "a"), (w[1], "b")], votes)
    assert s.c.functions.getJob(job).call()[5] == MODEL
    assert s.slashed(r) == {v[2].address: VSTAKE // 2}


def test_copier_gets_nothing_and_loses_stake_on_a_majority_flag(scored: Scored) -> None:
    """Defence: a submission more than half the validators flag as a copy scores zero and
    its worker is slashed. Without it the copier (a replay of worker 0's update, which scores
    as well as the original) takes half the reward."""
    s = scored
    job = _setup(s)
    w, v = s.workers[:2], s.validators
    flag = 1 << 1  # submission 1 copies
    votes = [(v[0], [700, 700], flag, MODEL), (v[1], [700, 700], flag, MODEL), (v[2], [700, 700], 0, MODEL)]
    r = s.run_window(job, 0, [(w[0], "a"), (w[1], "a-copy")], votes)
    out = s.settled(r)
    assert [e["copier"] for e in out] == [False, True]
    assert [e["payout"] for e in out] == [REWARD, 0]
    assert s.slashed(r) == {w[1].address: WSTAKE // 2}
    assert s.owed(s.requester) == WSTAKE // 2  # the cut goes back to the requester
    s.assert_solvent()


def test_one_validator_cannot_brand_an_honest_worker_a_copier(scored: Scored) -> None:
    s = scored
    job = _setup(s)
    w, v = s.workers[:2], s.validators
    votes = [(v[0], [700, 300], 0, MODEL), (v[1], [700, 300], 0, MODEL), (v[2], [700, 300], 1, MODEL)]
    r = s.run_window(job, 0, [(w[0], "a"), (w[1], "b")], votes)
    assert [e["copier"] for e in s.settled(r)] == [False, False]
    assert s.owed(w[0]) == 70 * E18 and s.stake(job, w[0]) == WSTAKE


def test_free_rider_with_no_improvement_is_paid_nothing(scored: Scored) -> None:
    """Defence: only positive median scores share the reward. A random update makes the loss
    worse (negative score); paying every revealed submission would hand it a third."""
    s = scored
    job = _setup(s)
    w = s.workers[:3]
    r = s.run_window(job, 0, [(w[0], "a"), (w[1], "b"), (w[2], "random")], _honest(s, [400, 400, -250]))
    out = s.settled(r)
    assert [e["payout"] for e in out] == [50 * E18, 50 * E18, 0]
    assert s.owed(w[2]) == 0


def test_worker_that_commits_and_does_not_reveal_is_slashed(scored: Scored) -> None:
    """Defence: a committed, unrevealed update scores zero and costs stake (else a worker
    could commit to keep a slot and reveal only when others look weak)."""
    s = scored
    job = _setup(s)
    w, v = s.workers[:2], s.validators
    s.goto(job, 0, SUBMIT)
    s.submit(job, 0, w[0], "a")
    s.submit(job, 0, w[1], "silent")
    s.goto(job, 0, REVEAL)
    s.reveal(job, 0, w[0], 0, "a")
    s.goto(job, 0, SCORE_COMMIT)
    for x in v[:3]:
        s.commit_scores(job, 0, x, [100, 900])  # even scores for the silent one are ignored
    s.goto(job, 0, SCORE_REVEAL)
    for x in v[:3]:
        s.reveal_scores(job, 0, x, [100, 900])
    s.goto(job, 0, SETTLEABLE)
    r = s.send(s.requester, s.c.functions.settle(job, 0))
    assert [e["payout"] for e in s.settled(r)] == [REWARD, 0]
    assert s.slashed(r)[w[1].address] == WSTAKE // 2


def test_validator_that_commits_and_does_not_reveal_is_slashed(scored: Scored) -> None:
    s = scored
    job = _setup(s)
    w, v = s.workers[:1], s.validators
    s.goto(job, 0, SUBMIT)
    s.submit(job, 0, w[0], "a")
    s.goto(job, 0, REVEAL)
    s.reveal(job, 0, w[0], 0, "a")
    s.goto(job, 0, SCORE_COMMIT)
    for x in v[:3]:
        s.commit_scores(job, 0, x, [100])
    s.goto(job, 0, SCORE_REVEAL)
    for x in v[:2]:
        s.reveal_scores(job, 0, x, [100])
    s.goto(job, 0, SETTLEABLE)
    r = s.send(s.requester, s.c.functions.settle(job, 0))
    assert s.slashed(r) == {v[2].address: VSTAKE // 2}
    assert s.owed(v[2]) == 0 and s.owed(v[0]) == FEE // 2
    s.assert_solvent()


def test_replayed_commitments_cannot_be_revealed(scored: Scored) -> None:
    """Defence: commitments bind their sender. A worker replaying another's update
    commitment, or a validator replaying another's score commitment, cannot open it."""
    s = scored
    job = _setup(s)
    w, v = s.workers[:2], s.validators
    s.goto(job, 0, SUBMIT)
    s.submit(job, 0, w[0], "a")
    stolen = s.c.functions.getSubmissions(job, 0).call()[0][2]
    s.send(w[1], s.c.functions.submit(job, 0, stolen))
    s.goto(job, 0, REVEAL)
    s.reveal(job, 0, w[0], 0, "a")
    s.revert_with(w[1], s.c.functions.revealUpdate(job, 0, 1, update_hash("a"), b"\x07" * 32, "bafya"),
                  "ScoredRoundsBadReveal", job, 0, w[1].address)
    s.goto(job, 0, SCORE_COMMIT)
    s.commit_scores(job, 0, v[0], [100, 0])
    theirs = s.c.functions.getVote(job, 0, v[0].address).call()[0]
    s.send(v[1], s.c.functions.commitScores(job, 0, theirs))
    s.goto(job, 0, SCORE_REVEAL)
    s.revert_with(v[1], s.c.functions.revealScores(job, 0, [100, 0], 0, MODEL, b"\x09" * 32),
                  "ScoredRoundsBadReveal", job, 0, v[1].address)


def test_phases_and_roles_are_enforced_by_named_errors(scored: Scored) -> None:
    s = scored
    job = _setup(s, workers=1, validators=1)
    w, v = s.workers, s.validators
    c = s.c.functions
    s.revert_with(s.unregistered, c.joinAsValidator(job), "ScoredRoundsNotRegistered", s.unregistered.address)
    s.revert_with(w[0], c.joinAsWorker(job, pubkey(w[0])), "ScoredRoundsAlreadyJoined", job, w[0].address, 1)
    s.revert_with(v[0], c.joinAsWorker(job, pubkey(v[0])), "ScoredRoundsAlreadyJoined", job, v[0].address, 2)
    s.revert_with(w[3], c.submit(job, 0, b"\x01" * 32), "ScoredRoundsNotStaked", job, w[3].address, 1)
    s.revert_with(w[0], c.submit(job, 1, b"\x01" * 32), "ScoredRoundsWrongPhase", job, 1, SUBMIT, 1)
    s.revert_with(w[0], c.commitScores(job, 0, b"\x01" * 32), "ScoredRoundsWrongPhase", job, 0, SCORE_COMMIT,
                  SUBMIT)
    s.submit(job, 0, w[0], "a")
    s.revert_with(w[0], c.submit(job, 0, b"\x01" * 32), "ScoredRoundsAlreadySubmitted", job, 0, w[0].address)
    s.goto(job, 0, REVEAL)
    s.revert_with(w[1], c.submit(job, 0, b"\x01" * 32), "ScoredRoundsWrongPhase", job, 0, SUBMIT, REVEAL)
    s.revert_with(w[0], c.revealUpdate(job, 0, 0, update_hash("b"), b"\x07" * 32, "x"),
                  "ScoredRoundsBadReveal", job, 0, w[0].address)
    s.reveal(job, 0, w[0], 0, "a")
    s.goto(job, 0, SCORE_COMMIT)
    s.revert_with(w[0], c.commitScores(job, 0, b"\x01" * 32), "ScoredRoundsNotStaked", job, w[0].address, 2)
    s.commit_scores(job, 0, v[0], [1, 2])
    s.goto(job, 0, SCORE_REVEAL)
    salt = b"\x09" * 32
    s.revert_with(v[0], c.revealScores(job, 0, [1, 2], 0, MODEL, salt), "ScoredRoundsScoreCount", 1, 2)
    s.revert_with(v[1], c.revealScores(job, 0, [1], 0, MODEL, salt), "ScoredRoundsNotCommitted", job, 0,
                  v[1].address)
    s.revert_with(s.requester, c.settle(job, 0), "ScoredRoundsWrongPhase", job, 0, SETTLEABLE, SCORE_REVEAL)
    s.goto(job, 1, SETTLEABLE)
    s.revert_with(s.requester, c.settle(job, 1), "ScoredRoundsOutOfOrder", job, 1, 0)
    s.revert_with(w[0], c.leave(job), "ScoredRoundsJobRunning", job, 0, 2)
    s.revert_with(w[5], c.withdraw(), "ScoredRoundsNothingOwed", w[5].address)
    s.revert_with(s.requester, c.postJob(_bad(windows=0)), "ScoredRoundsBadParams", "windows")
    s.revert_with(s.requester, c.postJob(_bad(slashBps=10_001)), "ScoredRoundsBadParams", "slashBps")
    s.revert_with(s.requester, c.joinAsWorker(99, pubkey(s.requester)), "ScoredRoundsNoJob", 99)
    # settle window 0 (the copier-free, one-validator case: the unrevealing validator's slash)
    r = s.send(s.requester, c.settle(job, 0))
    assert s.slashed(r) == {v[0].address: VSTAKE // 2}


def test_validator_seats_are_capped(scored: Scored) -> None:
    s = scored
    job = s.post(maxValidators=2)
    s.join_validators(job, s.validators[:2])
    s.revert_with(s.validators[2], s.c.functions.joinAsValidator(job), "ScoredRoundsFull", job, 2)


def test_median_of_odd_even_and_negative_vectors(scored: Scored) -> None:
    m = scored.c.functions.median
    assert m([5, -3, 9]).call() == 5
    assert m([4, 1, 10, 7]).call() == 5  # (4 + 7) / 2 rounded toward zero
    assert m([-4, -7]).call() == -5
    assert m([]).call() == 0


def test_commitment_encodings_match_the_contract(scored: Scored) -> None:
    s = scored
    v = s.validators[0]
    ours = score_commitment(3, 1, [5, -2], 6, MODEL, v.address, b"\x01" * 32)
    assert s.c.functions.scoreCommitment(3, 1, [5, -2], 6, MODEL, v.address, b"\x01" * 32).call() == ours
    assert commitment(update_hash("x"), v.address, b"\x01" * 32) != ours


def _bad(**overrides: Any) -> tuple[Any, ...]:
    from contracts.scored_helpers import scored_tuple

    return scored_tuple(**overrides)


def test_only_the_requester_answers_a_key_request_once_to_the_joined_key(scored: Scored) -> None:
    """The data key goes on-chain only wrapped to a public key that joined the job.

    Attacks: a worker joining with someone else's public key (the requester's key service
    would wrap the job's data key to an account that staked nothing) is refused; a stranger
    answering a request with a key of its own making (the worker would train on, and sign
    for, data the requester never posted) is refused; an answer to an account that never
    joined, or a second answer, is refused."""
    s = scored
    job = s.post()
    w, v, c = s.workers, s.validators, s.c.functions
    s.revert_with(w[0], c.joinAsWorker(job, pubkey(w[1])), "ScoredRoundsBadPubKey", w[0].address,
                  w[1].address)
    s.revert_with(w[0], c.joinAsWorker(job, pubkey(w[0])[:63]), "ScoredRoundsBadPubKey", w[0].address,
                  "0x" + "00" * 20)
    r = s.send(w[0], c.joinAsWorker(job, pubkey(w[0])))
    asked = s.chain.events(s.c, "KeyRequested", r)[0]["args"]
    assert (asked["jobId"], asked["account"], bytes(asked["pubKey"])) == (job, w[0].address, pubkey(w[0]))
    r = s.send(v[0], c.joinAsValidator(job))
    asked = s.chain.events(s.c, "KeyRequested", r)[0]["args"]
    assert bytes(asked["pubKey"]) == pubkey(v[0])  # the key it registered, not one it names now
    assert c.keyRequested(job, w[0].address).call() and c.keyRequested(job, v[0].address).call()

    s.revert_with(w[1], c.deliverKey(job, w[0].address, b"\x01" * 80), "ScoredRoundsNotRequester", job,
                  w[1].address)
    s.revert_with(s.requester, c.deliverKey(job, w[1].address, b"\x01" * 80), "ScoredRoundsNoKeyRequest", job,
                  w[1].address)
    r = s.send(s.requester, c.deliverKey(job, w[0].address, b"\x02" * 80))
    got = s.chain.events(s.c, "KeyDelivered", r)[0]["args"]
    assert (got["account"], bytes(got["envelope"])) == (w[0].address, b"\x02" * 80)
    assert not c.keyRequested(job, w[0].address).call()
    s.revert_with(s.requester, c.deliverKey(job, w[0].address, b"\x03" * 80), "ScoredRoundsNoKeyRequest", job,
                  w[0].address)

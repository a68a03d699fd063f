"""ScoredRounds deployed beside the session's protocol (same token, same VerifierRegistry),
and scenario shortcuts for its tests: commit/reveal of updates and score vectors, phase travel.

Independent of veritrain.scored on purpose: the contract is checked against these encodings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from contracts.conftest import E18, MAX, Env
from contracts.helpers import Chain, ErrorDecoder, commitment, pubkey
from veritrain.artifacts import artifact
from veritrain.dev.deploy import deploy_contract

# Phase enum of ScoredRounds
NONE, PENDING, SUBMIT, REVEAL, SCORE_COMMIT, SCORE_REVEAL, SETTLEABLE, SETTLED = range(8)
PHASE_LEN = 100

DEFAULT_SCORED: dict[str, Any] = {
    "specCid": "bafkreiscoredjob",
    "initialModel": b"\x01" * 32,
    "windows": 2,
    "maxSubmissions": 8,
    "maxValidators": 4,
    "deviationBps": 2000,
    "slashBps": 5000,
    "rewardPerWindow": 100 * E18,
    "validatorFeePerWindow": 12 * E18,
    "workerStake": 20 * E18,
    "validatorStake": 30 * E18,
    "deviationFloor": 10,
    "submitWindow": PHASE_LEN,
    "revealWindow": PHASE_LEN,
    "scoreCommitWindow": PHASE_LEN,
    "scoreRevealWindow": PHASE_LEN,
}


def scored_tuple(**overrides: Any) -> tuple[Any, ...]:
    p = {**DEFAULT_SCORED, **overrides}
    return tuple(p[k] for k in DEFAULT_SCORED)


def update_hash(tag: str) -> bytes:
    return keccak(text=f"update:{tag}")


def score_commitment(job: int, window: int, scores: Sequence[int], copiers: int, model: bytes,
                     validator: str, salt: bytes) -> bytes:
    return keccak(abi_encode(
        ["uint256", "uint256", "int64[]", "uint256", "bytes32", "address", "bytes32"],
        [job, window, list(scores), copiers, model, validator, salt],
    ))


class Scored:
    """ScoredRounds over ``env``'s token and registry; accounts approve it once."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.w3 = env.w3
        self.c = deploy_contract(env.w3, env.owner, "ScoredRounds", env.token.address, env.registry.address)
        # one Chain (one nonce cache) for every sender; it learns ScoredRounds' errors
        self.chain: Chain = env.chain
        self.chain.decoder.errors.update(ErrorDecoder([artifact("ScoredRounds")["abi"]]).errors)
        self.requester = env.requester
        self.workers = [*env.workers, *env.outsiders[:3]]  # 6 workers
        self.validators = env.verifiers[:4]  # registered in the VerifierRegistry
        self.unregistered = env.outsiders[5]
        for acct in [self.requester, *self.workers, *self.validators, self.unregistered]:
            self.send(acct, env.token.functions.approve(self.c.address, MAX))

    # ------------------------------------------------------------------ transactions
    def send(self, account: Any, call: Any, **kw: Any) -> Any:
        return self.chain.send(account, call, **kw)

    def revert_with(self, account: Any, call: Any, name: str, *args: Any) -> tuple[Any, ...]:
        return self.chain.expect_revert(account, call, name, *args)

    def post(self, **overrides: Any) -> int:
        r = self.send(self.requester, self.c.functions.postJob(scored_tuple(**overrides)))
        return int(self.chain.events(self.c, "JobPosted", r)[0]["args"]["jobId"])

    def join_workers(self, job: int, workers: Sequence[Any]) -> None:
        for w in workers:
            self.send(w, self.c.functions.joinAsWorker(job, pubkey(w)))

    def join_validators(self, job: int, validators: Sequence[Any]) -> None:
        for v in validators:
            self.send(v, self.c.functions.joinAsValidator(job))

    def submit(self, job: int, window: int, worker: Any, tag: str, salt: bytes = b"\x07" * 32) -> int:
        c = commitment(update_hash(tag), worker.address, salt)
        r = self.send(worker, self.c.functions.submit(job, window, c))
        return int(self.chain.events(self.c, "UpdateCommitted", r)[0]["args"]["index"])

    def reveal(self, job: int, window: int, worker: Any, index: int, tag: str,
               salt: bytes = b"\x07" * 32) -> Any:
        return self.send(worker, self.c.functions.revealUpdate(job, window, index, update_hash(tag), salt,
                                                                f"bafy{tag}"))

    def commit_scores(self, job: int, window: int, validator: Any, scores: Sequence[int], copiers: int = 0,
                      model: bytes = b"\x02" * 32, salt: bytes = b"\x09" * 32) -> Any:
        c = score_commitment(job, window, scores, copiers, model, validator.address, salt)
        return self.send(validator, self.c.functions.commitScores(job, window, c))

    def reveal_scores(self, job: int, window: int, validator: Any, scores: Sequence[int], copiers: int = 0,
                      model: bytes = b"\x02" * 32, salt: bytes = b"\x09" * 32) -> Any:
        call = self.c.functions.revealScores(job, window, list(scores), copiers, model, salt)
        return self.send(validator, call)

    # ------------------------------------------------------------------ time
    def phase(self, job: int, window: int) -> int:
        return int(self.c.functions.phaseOf(job, window).call())

    def goto(self, job: int, window: int, phase: int) -> None:
        """Mine a block inside ``phase`` (SUBMIT..SETTLEABLE) of ``window``."""
        start = self.c.functions.windowStart(job, window).call()
        at = start + (phase - SUBMIT) * PHASE_LEN + 1
        if self.chain.now() < at:
            self.w3.provider.make_request("evm_mine", [at])
        assert self.phase(job, window) == phase

    # ------------------------------------------------------------------ one whole window
    def run_window(self, job: int, window: int, updates: Sequence[tuple[Any, str]],
                   votes: Sequence[tuple[Any, Sequence[int], int, bytes]], settle: bool = True) -> Any:
        """Submit and reveal ``updates`` (worker, tag), commit and reveal ``votes`` (validator,
        scores, copiers, model), and settle; the settle receipt."""
        self.goto(job, window, SUBMIT)
        idx = [self.submit(job, window, w, tag) for w, tag in updates]
        self.goto(job, window, REVEAL)
        for (w, tag), i in zip(updates, idx, strict=True):
            self.reveal(job, window, w, i, tag)
        self.goto(job, window, SCORE_COMMIT)
        for v, scores, copiers, model in votes:
            self.commit_scores(job, window, v, scores, copiers, model)
        self.goto(job, window, SCORE_REVEAL)
        for v, scores, copiers, model in votes:
            self.reveal_scores(job, window, v, scores, copiers, model)
        self.goto(job, window, SETTLEABLE)
        return self.send(self.requester, self.c.functions.settle(job, window)) if settle else None

    # ------------------------------------------------------------------ reads
    def owed(self, who: Any) -> int:
        return int(self.c.functions.owed(who.address).call())

    def stake(self, job: int, who: Any) -> int:
        return int(self.c.functions.stakeOf(job, who.address).call())

    def balance(self) -> int:
        return int(self.env.token.functions.balanceOf(self.c.address).call())

    def assert_solvent(self) -> None:
        assert self.balance() == self.c.functions.liabilities().call()

    def settled(self, receipt: Any) -> list[dict[str, Any]]:
        return [dict(e["args"]) for e in self.chain.events(self.c, "SubmissionSettled", receipt)]

    def slashed(self, receipt: Any) -> dict[str, int]:
        events = self.chain.events(self.c, "Slashed", receipt)
        return {e["args"]["account"]: e["args"]["amount"] for e in events}


# ---------------------------------------------------------------------------- fixtures
# Imported by the test modules: ScoredRounds is deployed once per module on top of the
# session's deployment snapshot, every test starting from the module's own snapshot.


@pytest.fixture(scope="module", name="scored_base")
def scored_base_fixture(deployed: dict[str, Any]) -> Iterator[dict[str, Any]]:
    env: Env = deployed["env"]
    env.chain.reset_nonces()
    s = Scored(env)
    state = {"scored": s, "snap": s.chain.snapshot()}
    yield state
    env.chain.revert(deployed["snap"])
    deployed["snap"] = env.chain.snapshot()


@pytest.fixture(name="scored")
def scored_fixture(scored_base: dict[str, Any]) -> Iterator[Scored]:
    s: Scored = scored_base["scored"]
    s.chain.reset_nonces()
    yield s
    s.chain.revert(scored_base["snap"])
    scored_base["snap"] = s.chain.snapshot()

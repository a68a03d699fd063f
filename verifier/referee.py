"""Referee duty: when drawn, replay the disputed segment and commit-reveal the resulting hash.

Per dispute (journal item ``dispute:<id>``, field ``duty``):

    pending --(key + replay, or "unavailable")--> chosen --commit--> committed --reveal--> revealed

- The data key comes on-chain (``RefereeKeyDelivered``), wrapped to this verifier's key for
  this dispute (:func:`veritrain.jobdoc.referee_key_context`).
- The vote is the ``h_{j+1}`` of the replay: the accused worker's hash when the replay
  reproduces it (or, in tolerance mode, lands within the bound), otherwise this verifier's own.
- ``UNAVAILABLE`` (zero) when checkpoint ``j`` cannot be fetched, or when no key arrived
  ``vote_margin`` seconds before the commit deadline (the key holders — requester and accused
  worker — chose not to let the referee check): protocol.md, Disputes 4.
- A replay this machine cannot run under the job's profile is reported (duty ``unrunnable``),
  never guessed.
- The vote and its salt are journaled *before* the commit is sent, so a restarted verifier
  can always reveal.

``vote_policy(case, honest_vote) -> vote`` is the one hook for a dishonest referee in tests;
the service's default is honest (returns ``honest_vote``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verifier.replay import MATCH, MISMATCH, UNRUNNABLE, SegmentReplayer, load_job_document, load_manifest
from veritrain.chain.receipts import commitment
from veritrain.chain.states import UNAVAILABLE, BallotState
from veritrain.envelope import unwrap
from veritrain.errors import ChainError, ContractRevert, DecryptionError, VeritrainError
from veritrain.jobdoc import referee_key_context
from veritrain.journal import Item, Journal

log = logging.getLogger("veritrain.verifier.referee")


@dataclass(frozen=True)
class RefereeCase:
    dispute_id: int
    task_id: int
    accused: str
    accuser: str
    segment: int
    accused_next: bytes
    accuser_next: bytes


VotePolicy = Callable[[RefereeCase, bytes], bytes]


def honest(case: RefereeCase, vote: bytes) -> bytes:
    return vote


class Referee:
    def __init__(self, chain: Any, journal: Journal, replayer: SegmentReplayer, *,
                 vote_policy: VotePolicy = honest, vote_margin: int = 600) -> None:
        self.chain = chain
        self.journal = journal
        self.replayer = replayer
        self.vote_policy = vote_policy
        self.vote_margin = vote_margin

    def duties(self) -> list[Item]:
        return [i for i in self.journal.items("dispute:")
                if i.data.get("duty") in ("pending", "chosen", "committed")]

    def step(self, item: Item, now: int) -> str:
        duty = item.data["duty"]
        try:
            if duty == "pending":
                duty = self._choose(item, now)
                item = self.journal.get(item.key) or item
            if duty == "chosen":
                duty = self._commit(item, now)
                item = self.journal.get(item.key) or item
            if duty == "committed":
                duty = self._reveal(item, now)
        except ContractRevert as exc:
            log.warning("dispute %s: %s", item.key, exc)
            self.journal.put(item.key, item.phase, duty_error=str(exc))
        except ChainError:
            raise
        return str(duty)

    # ------------------------------------------------------------------ vote
    def _case(self, d: dict[str, Any]) -> RefereeCase:
        return RefereeCase(int(d["dispute_id"]), int(d["task_id"]), d["accused"], d["accuser"],
                           int(d["segment"]), bytes.fromhex(d["accused_next"][2:]),
                           bytes.fromhex(d["accuser_next"][2:]))

    def _choose(self, item: Item, now: int) -> str:
        d = item.data
        if now > int(d["commit_deadline"]):
            self.journal.put(item.key, item.phase, duty="missed", duty_detail="commit deadline passed")
            return "missed"
        envelope = d.get("envelope")
        if envelope is None:
            if now < int(d["commit_deadline"]) - self.vote_margin:
                return "pending"  # wait for the key
            return self._chosen(item, UNAVAILABLE, UNAVAILABLE, "no key delivered before the vote margin")
        honest_vote, detail, outcome = self._replay(d, bytes.fromhex(envelope[2:]))
        if outcome == UNRUNNABLE:
            self.journal.put(item.key, item.phase, duty="unrunnable", duty_detail=detail)
            return "unrunnable"
        return self._chosen(item, honest_vote, self.vote_policy(self._case(d), honest_vote), detail)

    def _replay(self, d: dict[str, Any], envelope: bytes) -> tuple[bytes, str, str]:
        case = self._case(d)
        ctx_bytes = referee_key_context(self.chain.chain_id, self.chain.market.address, case.dispute_id,
                                        self.chain.address)
        try:
            key = unwrap(envelope, self.chain.private_key(), ctx_bytes)  # the disputed shard's key only
        except DecryptionError as exc:
            return UNAVAILABLE, f"key envelope: {exc}", "unavailable"
        result = self.journal.get(f"result:{case.task_id}:{case.accused.lower()}")
        if result is None:
            return UNAVAILABLE, "no ResultRevealed seen for the accused worker", "unavailable"
        r = result.data
        try:
            doc = load_job_document(self.replayer.storage, r["spec_cid"])
            manifest = load_manifest(self.replayer.storage, r["manifest_cid"],
                                     root=bytes.fromhex(r["root"][2:]), task_id=case.task_id,
                                     worker=case.accused)
        except VeritrainError as exc:
            return UNAVAILABLE, f"{type(exc).__name__}: {exc}", "unavailable"
        if manifest.hash_bytes(case.segment + 1) != case.accused_next:
            return UNAVAILABLE, "the accused's manifest does not hold the disputed h_{j+1}", "unavailable"
        answered_h = d.get("accused_h")  # the h_j the accused showed on-chain (DisputeAnswered)
        if answered_h and manifest.hash_bytes(case.segment) != bytes.fromhex(answered_h[2:]):
            return UNAVAILABLE, "the accused's manifest does not hold the h_j it answered with", "unavailable"
        ctx = self.replayer.context(doc, manifest, key, case.task_id, case.accused)
        check = self.replayer.check(ctx, case.segment)
        self.journal.put(f"dispute:{case.dispute_id}", "voting", check=check.as_dict())
        if check.outcome in (MATCH, MISMATCH) and check.vote is not None:
            return check.vote, check.detail or check.outcome, check.outcome
        if check.outcome == UNRUNNABLE:
            return UNAVAILABLE, check.detail, UNRUNNABLE
        return UNAVAILABLE, check.detail, "unavailable"

    def _chosen(self, item: Item, honest_vote: bytes, vote: bytes, detail: str) -> str:
        salt = os.urandom(32)
        self.journal.put(item.key, item.phase, duty="chosen", vote="0x" + vote.hex(),
                         honest_vote="0x" + honest_vote.hex(), salt="0x" + salt.hex(), duty_detail=detail)
        return "chosen"

    # ------------------------------------------------------------------ commit / reveal
    def _my_ballot(self, dispute_id: int) -> BallotState:
        for referee, state, _ in self.chain.ballots(dispute_id):
            if referee.lower() == self.chain.address.lower():
                return state
        return BallotState.NONE

    def _seat(self, d: dict[str, Any]) -> int:
        """This verifier's seat: its index in the drawn committee (CommitteeDrawn's order)."""
        return [str(r).lower() for r in d["referees"]].index(self.chain.address.lower())

    def _commit(self, item: Item, now: int) -> str:
        d = item.data
        dispute_id = int(d["dispute_id"])
        if self.journal.txs(item.key, "commitVote") and self._my_ballot(dispute_id) != BallotState.NONE:
            self.journal.put(item.key, item.phase, duty="committed")  # landed before a restart
            return "committed"
        if now > int(d["commit_deadline"]):
            self.journal.put(item.key, item.phase, duty="missed", duty_detail="commit deadline passed")
            return "missed"
        vote, salt = bytes.fromhex(d["vote"][2:]), bytes.fromhex(d["salt"][2:])
        sealed = commitment(vote, self.chain.address, salt)
        seat = self._seat(d)
        self.chain.send(self.journal, item.key, "commitVote",
                        self.chain.commit_vote(dispute_id, seat, sealed))
        self.journal.put(item.key, item.phase, duty="committed")
        return "committed"

    def _reveal(self, item: Item, now: int) -> str:
        d = item.data
        dispute_id = int(d["dispute_id"])
        ballots = self.chain.ballots(dispute_id)
        mine = [s for r, s, _ in ballots if r.lower() == self.chain.address.lower()]
        if mine and mine[0].revealed:
            self.journal.put(item.key, item.phase, duty="revealed")
            return "revealed"
        all_committed = all(s != BallotState.NONE for _, s, _ in ballots)
        if not all_committed and now <= int(d["commit_deadline"]):
            return "committed"  # reveals not open yet
        if now > int(d["reveal_deadline"]):
            self.journal.put(item.key, item.phase, duty="missed", duty_detail="reveal deadline passed")
            return "missed"
        vote, salt = bytes.fromhex(d["vote"][2:]), bytes.fromhex(d["salt"][2:])
        seat = self._seat(d)
        self.chain.send(self.journal, item.key, "revealVote",
                        self.chain.reveal_vote(dispute_id, seat, vote, salt))
        self.journal.put(item.key, item.phase, duty="revealed")
        return "revealed"

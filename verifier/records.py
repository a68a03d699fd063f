"""What the verifier journals: the phases of its records (enums) and their payloads (typed records).

- ``result:<taskId>:<worker>``: a revealed result this verifier saw (:class:`ResultPhase`,
  :class:`ResultRecord`), with the outcome of each replayed segment (:class:`CheckRecord`);
- ``dispute:<disputeId>``: a dispute it is party to or referees (:class:`DisputePhase`,
  :class:`DisputeRecord`, its referee duty a :class:`Duty`);
- ``vkey:<jobId>``: a job key it wants (:class:`KeyPhase`).

Phases are ``StrEnum``s whose values are the strings in the journal, so journals written before
stay readable; records keep fields they do not know (another version's) rather than fail.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from veritrain.journal import Item


class ResultPhase(StrEnum):
    SEEN = "seen"
    VERIFIED = "verified"
    CHALLENGED = "challenged"
    START_SLASHED = "start_slashed"  # its h_0 was not the bound start: slashed by proof
    SKIPPED = "skipped"
    NO_KEY = "no_key"
    UNAVAILABLE = "unavailable"
    UNRUNNABLE = "unrunnable"
    MISSED = "missed"
    CHALLENGE_FAILED = "challenge_failed"
    NOT_NEEDED = "not_needed"
    ERROR = "error"
    RETRACTED = "retracted"  # its reveal was dropped by a reorg: checked again once mined again


class DisputePhase(StrEnum):
    ANSWERING = "answering"
    DRAWING = "drawing"
    VOTING = "voting"
    SETTLED = "settled"
    RETRACTED = "retracted"  # the chain has no such dispute after a reorg


class Duty(StrEnum):
    """A referee's duty in one dispute."""

    PENDING = "pending"
    CHOSEN = "chosen"
    COMMITTED = "committed"
    REVEALED = "revealed"
    MISSED = "missed"
    UNRUNNABLE = "unrunnable"
    RETRACTED = "retracted"  # the draw that seated this verifier was dropped by a reorg


class Role(StrEnum):
    ACCUSER = "accuser"
    ACCUSED = "accused"
    REFEREE = "referee"
    OBSERVER = "observer"


class KeyPhase(StrEnum):
    WANTED = "wanted"
    REQUESTED = "requested"
    DELIVERED = "delivered"
    REFUSED = "refused"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    @classmethod
    def of(cls, item: Item) -> Any:
        return item.record(cls)


class CheckRecord(_Record):
    """One replayed segment (:class:`verifier.replay.SegmentCheck` as journalled)."""

    j: int
    outcome: str
    claimed: str
    replayed: str | None = None
    detail: str = ""
    distance: float | None = None


class ResultRecord(_Record):
    task_id: int | None = None
    job_id: int | None = None
    worker: str | None = None
    root: str | None = None
    manifest_cid: str | None = None
    block: int | None = None
    challenge_deadline: int | None = None
    detail: str | None = None
    n_segments: int | None = None
    segments: list[int] | None = None
    full: bool | None = None
    checks: list[CheckRecord] = []
    challenge: dict[str, Any] | None = None
    challenge_tx: str | None = None
    dispute_id: int | None = None
    dispute_outcome: str | None = None


class DisputeRecord(_Record):
    dispute_id: int | None = None
    task_id: int | None = None
    accused: str | None = None
    accuser: str | None = None
    segment: int | None = None
    accused_next: str | None = None
    accuser_next: str | None = None
    role: str | None = None  # a Role (kept a string: a newer journal may hold another)
    referees: list[str] | None = None
    commit_deadline: int | None = None
    reveal_deadline: int | None = None
    duty: str | None = None  # a Duty
    duty_detail: str | None = None
    vote: str | None = None
    my_vote: str | None = None
    votes: Any = None
    outcome: str | None = None
    verdict: str | None = None
    referee_pot: int | None = None
    #: a forced error's jackpot (docs/spec/forced.md), with whom it went to
    jackpot: int | None = None
    jackpot_to: str | None = None
    check: CheckRecord | None = None
    opened_tx: str | None = None
    settled_tx: str | None = None

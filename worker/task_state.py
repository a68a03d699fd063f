"""What the worker journals about each task: its phase (an enum) and its payload (a typed record).

Every task is the journal item ``task:<taskId>``. Its phase is a :class:`TaskPhase`; its payload is
a :class:`TaskRecord`, read with :meth:`TaskRecord.of` and written only with names this record
knows (:meth:`TaskRecord.checked`), so a typo in a phase or a field is an error where it is
written, not a ``KeyError`` after a restart. Values are JSON in the journal (hex strings for
bytes), so a journal written by an earlier version reads the same.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from veritrain.journal import Item


class TaskPhase(StrEnum):
    CLAIMING = "claiming"
    AWAITING_KEY = "awaiting_key"
    ABANDONING = "abandoning"
    FETCHING = "fetching"
    TRAINING = "training"
    UPLOADING = "uploading"
    COMMITTING = "committing"
    REVEALING = "revealing"
    WATCHING = "watching"
    FINALIZING = "finalizing"
    # terminal
    FINALIZED = "finalized"
    ABANDONED = "abandoned"
    NOT_CLAIMED = "not_claimed"
    TIMED_OUT = "timed_out"
    SLASHED = "slashed"
    FAILED = "failed"


P = TaskPhase
TERMINAL = frozenset({P.FINALIZED, P.ABANDONED, P.NOT_CLAIMED, P.TIMED_OUT, P.SLASHED, P.FAILED})
#: Phases that occupy the trainer: one task at a time goes through them.
BUSY = frozenset({P.CLAIMING, P.AWAITING_KEY, P.FETCHING, P.TRAINING, P.UPLOADING, P.COMMITTING})
#: Ends after which a reopened task is a fresh offer again (every other phase keeps it out).
REOPENABLE = frozenset({P.NOT_CLAIMED, P.ABANDONED, P.TIMED_OUT})
#: Phases in which the claim's stake is locked in the market.
STAKED = frozenset({P.AWAITING_KEY, P.ABANDONING, P.FETCHING, P.TRAINING, P.UPLOADING, P.COMMITTING,
                    P.REVEALING, P.WATCHING, P.FINALIZING})


class TaskRecord(BaseModel):
    """A task's journalled payload; each phase adds the fields it found out."""

    # a journal from another version may carry fields this one does not know: they are kept
    model_config = ConfigDict(frozen=True, extra="allow")

    # claiming (from the offer)
    task_id: int
    job_id: int
    task_index: int
    spec_cid: str
    stake: int
    reward: int
    from_block: int
    #: claiming: the forced-error secret (hex, docs/spec/forced.md), journaled before the claim
    #: leaves (the claim commits to its hash; only this opens it)
    forced_secret: str | None = None
    # awaiting_key
    key_deadline: int | None = None
    commit_deadline: int | None = None
    # fetching: the key envelope from KeyDelivered, 0x-hex
    envelope: str | None = None
    #: fetching: the snapshot the market sealed at key delivery (hex; "" when the claim has no
    #: seal: redundancy > 1) and j* when the draw made the claim a forced error
    forced_snap: str | None = None
    forced_segment: int | None = None
    # uploading: h_0..h_n (hex) and the CID of each uploaded checkpoint by its index
    hashes: list[str] | None = None
    cids: dict[str, str] | None = None
    #: the loss of each checkpoint on the task's shard (the manifest's optional loss curve)
    losses: list[float] | None = None
    # committing: 0x-root, manifest CID, and the commit salt (hex), recorded before the commit
    root: str | None = None
    manifest_cid: str | None = None
    salt: str | None = None
    # watching
    challenge_deadline: int | None = None
    available_at: float | None = None
    dispute_seen: bool | None = None
    # ends
    reason: str | None = None
    griefing_fee: int | None = None

    @classmethod
    def of(cls, item: Item) -> TaskRecord:
        return item.record(cls)

    @classmethod
    def checked(cls, **fields: Any) -> dict[str, Any]:
        """``fields`` if every name is one of this record's (for a journal write); else ValueError."""
        unknown = sorted(set(fields) - set(cls.model_fields))
        if unknown:
            raise ValueError(f"not a task record field: {', '.join(unknown)}")
        return fields

    def require(self, name: str) -> Any:
        """A field a later phase needs; an error naming it if an earlier phase never set it."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"task {self.task_id}: the journal has no {name} yet")
        return value

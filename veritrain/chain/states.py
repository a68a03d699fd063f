"""The contracts' enums, by value, for every role (no web3 import)."""

from __future__ import annotations

from enum import IntEnum


class JobStatus(IntEnum):  # JobMarket.JobStatus
    NONE = 0
    OPEN = 1
    CANCELLED = 2
    CLOSED = 3


class ClaimStatus(IntEnum):  # JobMarket.ClaimStatus
    NONE = 0
    CLAIMED = 1
    KEY_DELIVERED = 2
    COMMITTED = 3
    REVEALED = 4
    DISPUTED = 5
    FINALIZED = 6


class DisputeStatus(IntEnum):  # DisputeResolver.DisputeStatus
    NONE = 0
    DRAWING = 1
    VOTING = 2
    SETTLED = 3


class Outcome(IntEnum):  # DisputeResolver.Outcome
    NONE = 0
    ACCUSED_LOST = 1
    ACCUSER_LOST = 2
    BOTH_LOST = 3
    DISMISSED = 4


class BallotState(IntEnum):  # DisputeResolver ballot state
    NONE = 0
    COMMITTED = 1
    REVEALED = 2


#: A referee's vote meaning "checkpoint j could not be fetched" (counts against the worker).
UNAVAILABLE = b"\x00" * 32

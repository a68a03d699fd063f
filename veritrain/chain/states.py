"""The contracts' enums, by value, for every role (no web3 import).

``ClaimStatus(raw)`` turns a value read from the chain into its member; ``member.label`` is
the Solidity spelling (``KeyDelivered``, ``AccusedLost``) for messages and reports.
"""

from __future__ import annotations

from enum import IntEnum


class _ContractEnum(IntEnum):
    @property
    def label(self) -> str:
        """The member's name as the contract spells it: ``KEY_DELIVERED`` -> ``KeyDelivered``."""
        return "".join(part.capitalize() for part in self.name.split("_"))


class JobStatus(_ContractEnum):  # JobMarket.JobStatus
    NONE = 0
    OPEN = 1
    CANCELLED = 2
    CLOSED = 3


class ClaimStatus(_ContractEnum):  # JobMarket.ClaimStatus
    NONE = 0
    CLAIMED = 1
    KEY_DELIVERED = 2
    COMMITTED = 3
    REVEALED = 4
    DISPUTED = 5
    FINALIZED = 6
    ENDED = 7  # ended unpaid: abandoned, timed out or slashed (the worker may claim again)


class VerifierKeyStatus(_ContractEnum):  # JobMarket.VerifierKeyStatus
    NONE = 0
    REQUESTED = 1
    DELIVERED = 2


class VerifierStatus(_ContractEnum):  # VerifierRegistry.VerifierStatus
    NONE = 0
    ACTIVE = 1
    UNBONDING = 2


class DisputeStatus(_ContractEnum):  # DisputeResolver.DisputeStatus
    NONE = 0
    DRAWING = 1
    VOTING = 2
    SETTLED = 3
    ANSWERING = 4  # a challenge without proofs: the accused must answer with its leaves


class Outcome(_ContractEnum):  # DisputeResolver.Outcome
    NONE = 0
    ACCUSED_LOST = 1
    ACCUSER_LOST = 2
    BOTH_LOST = 3
    DISMISSED = 4
    LAPSED = 5  # nobody drew the committee in time: a challenger's bond went to the job's escrow
    FORCED = 6  # the accused showed a forced error (answerForced): released, the challenger's jackpot


class BallotState(_ContractEnum):  # DisputeResolver.BallotState
    """A seat's ballot; once revealed, what the vote says about the parties (the contract keeps
    this, not the hash): FOR_ACCUSED / FOR_ACCUSER reproduced that party's h_{j+1}, AGAINST
    neither (UNAVAILABLE included)."""

    NONE = 0
    COMMITTED = 1
    FOR_ACCUSED = 2
    FOR_ACCUSER = 3
    AGAINST = 4

    @property
    def revealed(self) -> bool:
        return self >= BallotState.FOR_ACCUSED


#: A referee's vote meaning "checkpoint j could not be fetched" (counts against the worker).
UNAVAILABLE = b"\x00" * 32

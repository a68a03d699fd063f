"""Typed views of the contracts' struct getters, shared by every role (no web3 import).

``Job.of(raw)`` turns what ``JobMarket.getJob`` returns (a tuple in ABI order) into a frozen
dataclass with snake_case fields and enum statuses; likewise ``Task`` (``getTask``), ``Claim``
(``getClaim``), ``Dispute`` (``DisputeResolver.getDispute``) and ``ResolverParams``
(``DisputeResolver.params``). Field order is the ABI's; ``tests/unit/test_chain_views.py``
checks it against the shipped artifacts, so a changed struct fails there, not in a role.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from veritrain.chain.states import BallotState, ClaimStatus, DisputeStatus, JobStatus, Outcome, VerifierStatus

V = TypeVar("V", bound="_View")


class _View:
    @classmethod
    def of(cls: type[V], raw: Any, **extra: Any) -> V:
        """The view of ``raw`` (a struct tuple in ABI order); ``extra`` fills leading fields
        that are not part of the struct (e.g. the dispute id)."""
        names = [f.name for f in fields(cls) if f.name not in extra]  # type: ignore[arg-type]
        values = list(raw)
        if len(values) != len(names):
            raise ValueError(f"{cls.__name__}: the contract returned {len(values)} fields, "
                             f"this build knows {len(names)}; update veritrain or the artifacts")
        kw = dict(zip(names, values, strict=True))
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in kw:
                kw[f.name] = _convert(f.type, kw[f.name])
        return cls(**extra, **kw)


_CONVERT: dict[str, Any] = {
    "int": int, "str": str, "bool": bool, "bytes": bytes,
    "JobStatus": JobStatus, "ClaimStatus": ClaimStatus, "DisputeStatus": DisputeStatus,
    "Outcome": Outcome, "VerifierStatus": VerifierStatus, "BallotState": BallotState,
}


def _convert(annotation: Any, value: Any) -> Any:
    """``value`` as the field's type (annotations are strings under ``from __future__``)."""
    return _CONVERT[annotation if isinstance(annotation, str) else annotation.__name__](value)


@dataclass(frozen=True)
class Job(_View):  # JobMarket.getJob
    requester: str
    task_count: int
    redundancy: int
    checkpoint_count: int
    reward_per_task: int
    stake_per_task: int
    key_window: int
    submission_window: int
    griefing_fee: int
    referee_fee: int
    reveal_window: int
    challenge_window: int
    escrow: int
    active_claims: int
    settled_slots: int
    status: JobStatus
    shards_root: bytes
    starts_root: bytes
    starts_keyed: bool
    spec_cid: str


@dataclass(frozen=True)
class Task(_View):  # JobMarket.getTask
    reveal_from: int
    active: int
    committed: int
    finalized: int
    closed: int


@dataclass(frozen=True)
class Claim(_View):  # JobMarket.getClaim
    """``commitment`` is set only while the claim is Committed; from Revealed on (Revealed,
    Disputed, Finalized) it is zero and ``root`` holds the revealed root (the contract stores
    the root in the commitment's place). ``root`` is zero before the reveal. The commitment
    of a revealed claim is in its ``ResultCommitted`` event. A claim that ended unpaid
    (abandoned, timed out, slashed) reads ENDED with its deadlines; ``disputes`` counts the
    claim's open disputes (several may be open at once)."""

    status: ClaimStatus
    key_deadline: int
    commit_deadline: int
    challenge_deadline: int
    commitment: bytes
    root: bytes
    disputes: int


@dataclass(frozen=True)
class Dispute(_View):  # DisputeResolver.getDispute, plus its id
    """``accuser_next`` is the accusing worker's h_{j+1} in a dispute between workers
    (``accuser_is_worker``), ``DisputeResolver.OPT_OUT`` for an opt-out challenge
    (docs/spec/forced.md) and zero for a verifier's challenge: the challenger's h_{j+1} is
    only in the ``DisputeOpened`` event (``accuserNext``). While ANSWERING (a challenge that
    proved nothing) ``accused_next`` is zero and ``deadline`` is the accused's answer deadline;
    ``DisputeAnswered`` carries its h_j and h_{j+1}."""

    dispute_id: int
    task_id: int
    accused: str
    segment: int
    draw_block: int
    accuser: str
    bond: int
    requester: str
    deadline: int
    status: DisputeStatus
    outcome: Outcome
    accuser_is_worker: bool
    accused_next: bytes
    accuser_next: bytes


@dataclass(frozen=True)
class ResolverParams(_View):  # DisputeResolver.params
    committee_size: int
    challenge_bond: int
    draw_window: int
    commit_window: int
    reveal_window: int
    bounty_bps: int
    referee_fee_bps: int
    referee_slash_bps: int
    response_window: int
    forced_error_bps: int
    jackpot_fee_bps: int


def snake(name: str) -> str:
    """``shardsRoot`` -> ``shards_root`` (Solidity field name to view field name)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@dataclass(frozen=True)
class Verifier(_View):  # VerifierRegistry.getVerifier
    status: VerifierStatus
    unbonding_ends: int
    pool_index: int
    stake: int
    pub_key: bytes


@dataclass(frozen=True)
class Ballot(_View):  # one seat of DisputeResolver.getBallots (its three arrays, zipped)
    referee: str
    state: BallotState
    ballot: bytes

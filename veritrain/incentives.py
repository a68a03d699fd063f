"""How a job's workers earn their reward, as a strategy chosen once from the JobSpec.

An :class:`IncentiveScheme` answers the questions the roles would otherwise ask with
``if spec.incentive == ...``: can the deployed market settle this job at all, and what does one
round escrow. :func:`incentive_for` picks it from ``spec.incentive`` (:data:`SCHEMES`).

Two implementations: :class:`ReplayIncentive` (the protocol's replay mode: each of the ``r``
workers of a task is paid the task's reward once its revealed result survives the challenge
window; settled by JobMarket) and :class:`ScoredIncentive` (Templar-style scored mode,
docs/scored.md: each window's reward split by the median of validators' scores; settled by
ScoredRounds). ``contract`` names the contract a scheme's jobs are posted to, so a role can
route a spec without asking which mode it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from veritrain.errors import SpecError
from veritrain.spec import JobSpec


class IncentiveScheme(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def contract(self) -> str:
        """The contract that escrows and settles this scheme's jobs."""
        ...

    def round_escrow(self, spec: JobSpec, reward_per_task: int, referee_fee_pool: int) -> int:
        """The tokens one round of ``spec`` escrows on ``postJob``."""
        ...


@dataclass(frozen=True)
class ReplayIncentive:
    """Pay per task slot: ``num_shards x redundancy`` rewards plus the referee fee pool."""

    name: str = "replay"
    contract: str = "JobMarket"

    def round_escrow(self, spec: JobSpec, reward_per_task: int, referee_fee_pool: int) -> int:
        return spec.num_shards * spec.redundancy * reward_per_task + referee_fee_pool


@dataclass(frozen=True)
class ScoredIncentive:
    """Pay per window: a scored job's ``rounds`` are its windows; each escrows its reward
    (``reward``, split pro rata among positive median scores) plus the validators' fee
    (``referee_fee_pool``, shared by the validators not slashed)."""

    name: str = "scored"
    contract: str = "ScoredRounds"

    def round_escrow(self, spec: JobSpec, reward_per_task: int, referee_fee_pool: int) -> int:
        return reward_per_task + referee_fee_pool


#: ``spec.incentive`` -> its scheme (a mode without one is refused by :func:`incentive_for`).
SCHEMES: dict[str, Callable[[], IncentiveScheme]] = {"replay": ReplayIncentive, "scored": ScoredIncentive}


def incentive_for(spec: JobSpec) -> IncentiveScheme:
    """The scheme ``spec`` is paid under; :class:`SpecError` when this code has none for it."""
    make = SCHEMES.get(spec.incentive)
    if make is None:
        raise SpecError([f"incentive: this build settles {', '.join(SCHEMES)} mode only, "
                         f"not {spec.incentive!r}"])
    return make()

"""How a job's workers earn their reward, as a strategy chosen once from the JobSpec.

An :class:`IncentiveScheme` answers the questions the roles would otherwise ask with
``if spec.incentive == ...``: can the deployed market settle this job at all, and what does one
round escrow. :func:`incentive_for` picks it from ``spec.incentive`` (:data:`SCHEMES`).

Today there is one implementation, :class:`ReplayIncentive` (the protocol's replay mode: each of
the ``r`` workers of a task is paid the task's reward once its revealed result survives the
challenge window). Scored mode (protocol.md, Templar-style: a round's pot split by validators'
scores) is a second class here, with its own escrow and settlement, once a market settles it;
until then a scored spec is refused with :class:`~veritrain.errors.SpecError`.
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

    def round_escrow(self, spec: JobSpec, reward_per_task: int, referee_fee_pool: int) -> int:
        """The tokens one round of ``spec`` escrows on ``postJob``."""
        ...


@dataclass(frozen=True)
class ReplayIncentive:
    """Pay per task slot: ``num_shards x redundancy`` rewards plus the referee fee pool."""

    name: str = "replay"

    def round_escrow(self, spec: JobSpec, reward_per_task: int, referee_fee_pool: int) -> int:
        return spec.num_shards * spec.redundancy * reward_per_task + referee_fee_pool


#: ``spec.incentive`` -> its scheme (a mode without one is refused by :func:`incentive_for`).
SCHEMES: dict[str, Callable[[], IncentiveScheme]] = {"replay": ReplayIncentive}


def incentive_for(spec: JobSpec) -> IncentiveScheme:
    """The scheme ``spec`` is paid under; :class:`SpecError` when this code has none for it."""
    make = SCHEMES.get(spec.incentive)
    if make is None:
        raise SpecError([f"incentive: the deployed JobMarket settles {', '.join(SCHEMES)} mode only, "
                         f"not {spec.incentive!r}"])
    return make()

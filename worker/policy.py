"""Which open tasks to take: pure functions over plain data, no chain, no IPFS, no torch.

The loop turns every open slot into an :class:`Offer` (amounts from the chain, model and
profile from the job's spec, a memory estimate, what this machine is) and asks
:func:`decide`; :func:`choose` picks the best acceptable offer (highest reward per step,
then the oldest job, then the lowest task).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Policy:
    min_reward_per_step: int = 0
    allowed_models: tuple[str, ...] = ()
    max_memory_mb: int = 4096
    max_stake: int | None = None
    allow_multi_round: bool = True


@dataclass(frozen=True)
class Machine:
    """What this box offers (see :func:`worker.tasks.this_machine`)."""

    torch_version: str
    cpu_isas: frozenset[str] = frozenset({"default"})
    cpus: int = 1


@dataclass(frozen=True)
class Offer:
    job_id: int
    task_index: int
    task_id: int
    reward: int
    stake: int
    steps: int
    model: str
    memory_mb: float
    torch_version: str
    cpu_isa: str
    device: str = "cpu"
    threads: int = 1
    rounds: int = 1
    balance: int = 0
    problems: tuple[str, ...] = field(default=())
    """Problems found while reading the job (bad document, shardsRoot mismatch...)."""

    @property
    def reward_per_step(self) -> float:
        return self.reward / max(1, self.steps)


@dataclass(frozen=True)
class Decision:
    take: bool
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return "take" if self.take else "skip: " + "; ".join(self.reasons)


def profile_problems(offer: Offer, machine: Machine) -> list[str]:
    """Why this machine cannot honour the job's replay profile (empty when it can)."""
    out = []
    if offer.device != "cpu":
        out.append(f"the job needs device {offer.device!r}; this worker trains on cpu")
    if offer.torch_version != machine.torch_version:
        out.append(f"the job pins torch {offer.torch_version}; this machine has {machine.torch_version}")
    if offer.cpu_isa not in machine.cpu_isas:
        have = ", ".join(sorted(machine.cpu_isas))
        out.append(f"the job pins CPU ISA {offer.cpu_isa}; this CPU offers {have}")
    return out


def decide(offer: Offer, policy: Policy, machine: Machine) -> Decision:
    reasons = list(offer.problems)
    if offer.reward_per_step < policy.min_reward_per_step:
        reasons.append(f"reward {offer.reward_per_step:.4g}/step is below the minimum "
                       f"{policy.min_reward_per_step}/step")
    if policy.allowed_models and offer.model not in policy.allowed_models:
        reasons.append(f"model {offer.model!r} is not in allowed models ({', '.join(policy.allowed_models)})")
    if offer.memory_mb > policy.max_memory_mb:
        reasons.append(f"needs ~{offer.memory_mb:.0f} MB, more than the {policy.max_memory_mb} MB allowed")
    if policy.max_stake is not None and offer.stake > policy.max_stake:
        reasons.append(f"stake {offer.stake} exceeds the maximum {policy.max_stake}")
    if offer.rounds > 1 and not policy.allow_multi_round:
        reasons.append("a round of a multi-round job; this worker's policy refuses them "
                       "(VERITRAIN_WORKER_ALLOW_MULTI_ROUND=false)")
    if offer.stake > offer.balance:
        reasons.append(f"too few tokens to stake: have {offer.balance}, the job needs {offer.stake}")
    reasons += profile_problems(offer, machine)
    return Decision(not reasons, tuple(reasons))


def choose(offers: Iterable[Offer], policy: Policy, machine: Machine,
           exclude: Collection[int] = (), rank: Callable[[Offer], Any] | None = None,
           ) -> tuple[Offer | None, list[tuple[Offer, Decision]]]:
    """The best acceptable offer (or None) and every decision, for logging. Among equally paid
    offers of one job, ``rank`` orders (default: the task index; the worker passes its own
    random order, so workers do not all race for the same slot)."""
    decisions = [(o, decide(o, policy, machine)) for o in offers if o.task_id not in exclude]
    ok = [o for o, d in decisions if d.take]
    order = rank or (lambda o: o.task_index)
    best = min(ok, key=lambda o: (-o.reward_per_step, o.job_id, order(o)), default=None)
    return best, decisions

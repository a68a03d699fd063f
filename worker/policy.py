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

from veritrain.spec import CudaProfile
from veritrain.training.devices import Device, matching_gpu


@dataclass(frozen=True)
class Policy:
    min_reward_per_step: int = 0
    allowed_models: tuple[str, ...] = ()
    max_memory_mb: int = 4096
    max_stake: int | None = None
    allow_multi_round: bool = True
    bitwise_gpus: tuple[str, ...] | None = None
    """GPU names whose class this worker trains bitwise (exact-mode CUDA jobs); None: every GPU
    it has. Tolerance-mode CUDA jobs are taken on any device."""


@dataclass(frozen=True)
class Machine:
    """What this box offers (see :func:`worker.tasks.this_machine`)."""

    torch_version: str
    cpu_isas: frozenset[str] = frozenset({"default"})
    cpus: int = 1
    devices: tuple[Device, ...] = ()
    """The GPUs (and the CPU) torch sees, from :func:`veritrain.training.devices.detect_isolated`."""


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
    cuda: CudaProfile | None = None
    tolerance: str = "exact"
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


def profile_problems(offer: Offer, machine: Machine, policy: Policy | None = None) -> list[str]:
    """Why this machine cannot honour the job's replay profile (empty when it can)."""
    if offer.device == "cuda" and offer.cuda is not None:
        return cuda_problems(offer, offer.cuda, machine, policy or Policy())
    out = []
    if offer.device != "cpu":
        out.append(f"the job needs device {offer.device!r}; this worker trains on cpu")
    if offer.torch_version != machine.torch_version:
        out.append(f"the job pins torch {offer.torch_version}; this machine has {machine.torch_version}")
    if offer.cpu_isa not in machine.cpu_isas:
        have = ", ".join(sorted(machine.cpu_isas))
        out.append(f"the job pins CPU ISA {offer.cpu_isa}; this CPU offers {have}")
    return out


def cuda_problems(offer: Offer, want: CudaProfile, machine: Machine, policy: Policy) -> list[str]:
    """A CUDA job: in tolerance mode any device trains it (torch major version pinned); in exact
    mode only a GPU of its class that the policy trains bitwise, under the pinned torch."""
    if offer.tolerance == "tolerance":
        if offer.torch_version.split(".")[0] != machine.torch_version.split(".")[0]:
            return [f"the job pins torch {offer.torch_version.split('.')[0]}.x; this machine has "
                    f"{machine.torch_version}"]
        return []
    out = []
    gpu = matching_gpu(want, machine.devices)
    gpus = [d for d in machine.devices if d.kind == "cuda"]
    if gpu is None:
        have = "; ".join(d.label() for d in gpus) if gpus else "no CUDA GPU"
        out.append(f"the job trains bitwise on a CUDA GPU {want.device_class()}; this worker has {have}")
    elif policy.bitwise_gpus is not None and gpu.name not in policy.bitwise_gpus:
        out.append(f"the job's GPU class {want.gpu_name!r} is not among the GPUs this worker trains "
                   f"bitwise ({', '.join(policy.bitwise_gpus) or 'none'})")
    if offer.torch_version != machine.torch_version:
        out.append(f"the job pins torch {offer.torch_version}; this machine has {machine.torch_version}")
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
    reasons += profile_problems(offer, machine, policy)
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

"""How a replayed segment is judged against a worker's claim, as a strategy chosen once from the spec.

A :class:`ReplayJudge` says how to replay segment ``j`` (under the full replay profile, in a fresh
process if need be, or on this machine's settings) and, when the replayed ``h_{j+1}`` differs from
the worker's, whether the worker's checkpoint ``j+1`` still holds up. :func:`judge_for` picks the
judge from ``spec.replay.tolerance.mode`` (:data:`JUDGES`); the verifier, the referee and the
benchmarks never branch on the mode themselves.

- :class:`ExactJudge` (``exact``): bitwise replay under the pinned profile; any other hash is wrong.
- :class:`ToleranceJudge` (``tolerance``): Proof-of-Learning style; the worker's checkpoint ``j+1``
  is accepted within the job's bound of the replay (:func:`veritrain.training.tolerance.distance`).

A new mode (e.g. a portable one) is one class here with these four members, one entry in
:data:`JUDGES`, and its name in the JobSpec's ``replay.tolerance.mode``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from veritrain.checkpoint import checkpoint_hash
from veritrain.spec import JobSpec, TaskKey, ToleranceSpec
from veritrain.training.tolerance import Distance, Verdict, distance


@dataclass(frozen=True)
class Judgement:
    """A differing replay judged: is the worker's checkpoint ``j+1`` accepted, and why."""

    accepted: bool
    detail: str
    distance: Distance | None = None


class ReplayJudge(Protocol):
    @property
    def strict_profile(self) -> bool:
        """Replays only under the job's full replay profile (else on this machine's settings)."""
        ...

    @property
    def needs_claimed_checkpoint(self) -> bool:
        """Judging a differing hash needs the worker's checkpoint ``j+1`` itself."""
        ...

    @property
    def bound(self) -> float | None:
        """The accepted distance (None: bitwise only)."""
        ...

    def replay(self, spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, features: Any,
               labels: Any, *, dp_key: bytes | None = None) -> tuple[bytes, bytes]:
        """(bytes of checkpoint ``j+1``, ``h_{j+1}``) recomputed from checkpoint ``j``."""
        ...

    def judge(self, checkpoint_j: bytes, claimed_next: bytes | None, replayed_next: bytes) -> Judgement:
        """Called only when the replayed hash differs from the worker's ``h_{j+1}``."""
        ...


@dataclass(frozen=True)
class ExactJudge:
    strict_profile: bool = True
    needs_claimed_checkpoint: bool = False
    bound: float | None = None

    def replay(self, spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, features: Any,
               labels: Any, *, dp_key: bytes | None = None) -> tuple[bytes, bytes]:
        """Under the full profile: in a fresh process when this one does not match it."""
        from veritrain.training.runner import run_in_profile

        result: tuple[bytes, bytes] = run_in_profile(spec, "replay", task=task, features=features,
                                                     labels=labels, j=j, checkpoint=checkpoint_j,
                                                     dp_key=dp_key)
        return result

    def judge(self, checkpoint_j: bytes, claimed_next: bytes | None, replayed_next: bytes) -> Judgement:
        d = None if claimed_next is None else distance(checkpoint_j, claimed_next, replayed_next)
        return Judgement(False, "replayed h_{j+1} differs", d)


@dataclass(frozen=True)
class ToleranceJudge:
    bound: float
    strict_profile: bool = False
    needs_claimed_checkpoint: bool = True

    def replay(self, spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, features: Any,
               labels: Any, *, dp_key: bytes | None = None) -> tuple[bytes, bytes]:
        """On this machine's settings (the torch version is still pinned)."""
        from veritrain.training.engine import replay_segment_bytes

        return replay_segment_bytes(spec, task, j, checkpoint_j, features, labels, strict_profile=False,
                                    dp_key=dp_key)

    def judge(self, checkpoint_j: bytes, claimed_next: bytes | None, replayed_next: bytes) -> Judgement:
        if claimed_next is None:
            raise ValueError("the tolerance judge needs the worker's checkpoint j+1")
        d = distance(checkpoint_j, claimed_next, replayed_next)
        detail = f"distance {d.value:.3g} vs bound {self.bound:g}" + (
            f"; exact mismatches: {', '.join(d.mismatches)}" if d.mismatches else "")
        return Judgement(d.value <= self.bound, detail, d)


def _tolerance(tol: ToleranceSpec) -> ToleranceJudge:
    assert tol.bound is not None  # the spec requires a bound in tolerance mode
    return ToleranceJudge(tol.bound)


#: ``replay.tolerance.mode`` -> the judge for it.
JUDGES: dict[str, Callable[[ToleranceSpec], ReplayJudge]] = {
    "exact": lambda tol: ExactJudge(),
    "tolerance": _tolerance,
}


def judge_for(spec: JobSpec) -> ReplayJudge:
    """The judge of ``spec``'s replay mode."""
    tol = spec.replay.tolerance
    return JUDGES[tol.mode](tol)


def verify_segment(spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, claimed_next: bytes,
                   features: Any, labels: Any, *, dp_key: bytes | None = None) -> Verdict:
    """Replay segment ``j`` in this process and judge the claimed checkpoint ``j+1`` by the job's
    judge. Exact mode needs this process to honour the full profile; tolerance mode needs only
    the torch version."""
    from veritrain.training.engine import replay_segment_bytes

    judge = judge_for(spec)
    replayed, h = replay_segment_bytes(spec, task, j, checkpoint_j, features, labels,
                                       strict_profile=judge.strict_profile, dp_key=dp_key)
    if h == checkpoint_hash(claimed_next):
        return Verdict(True, Distance(0.0, 0.0), judge.bound, h)
    verdict = judge.judge(checkpoint_j, claimed_next, replayed)
    assert verdict.distance is not None
    return Verdict(verdict.accepted, verdict.distance, judge.bound, h)

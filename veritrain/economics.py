"""The verification-economics model of docs/economics.md: detection, the stake that makes
cheating unprofitable, and the jackpot that keeps checking worth a verifier's while.

Inputs, per task: the reward ``R`` and stake ``S`` (base units), the number of segments ``n``,
the number ``V`` of verifiers checking and the share ``p`` of segments each replays (chosen
independently, :mod:`verifier.sampling`), the worker's training cost as a share ``c`` of the
reward (1.0: the worst case, a worker that spends its whole reward), the challenger's share of a
slashed stake (``bounty_bps``) and a forced-error rate ``phi`` for the jackpot figure.

- A cheat of ``f`` segments escapes every verifier with probability ``(1 − p)^(f·V)``, so it
  is caught with ``P_f = 1 − (1 − p)^(f·V)``.
- It saves ``c·R·f/n`` of training and, when caught, loses the stake and the reward: cheating
  is unprofitable iff ``P_f·(R + S) ≥ c·R·f/n``, i.e. ``S ≥ c·R·f/(n·P_f) − R``. The minimum
  stake is the largest of these over ``f = 1..n``.
- A verifier that checks a result replays ``p·n`` segments at ``c·R/n`` each: ``p·c·R``. With
  forced errors at rate ``phi`` (one segment wrong, caught by at least one of the ``V``
  verifiers with ``1 − (1 − p)^V``, the first catcher paid), its expected jackpot income per
  result is ``phi·J·(1 − (1 − p)^V)/V``; checking stays rational when no one cheats iff
  ``J ≥ V·p·c·R/(phi·(1 − (1 − p)^V))``. The fee that funds it is ``phi·J`` per task.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

BPS = 10_000
#: The sampling rate a verifier uses unless configured otherwise (``VERITRAIN_VERIFIER_P``).
DEFAULT_SAMPLING_P = 0.1


def detection(p: float, verifiers: int, f: int) -> float:
    """Probability that at least one of ``verifiers`` (each sampling segments at rate ``p``)
    replays one of the ``f`` falsified segments: ``1 − (1 − p)^(f·V)``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if verifiers < 0 or f < 0:
        raise ValueError("verifiers and f must be >= 0")
    return 1.0 - (1.0 - p) ** (f * verifiers)


@dataclass(frozen=True)
class Terms:
    reward: int
    stake: int
    segments: int
    verifiers: int
    p: float
    cost_share: float = 1.0
    forced_error_rate: float = 0.01

    def __post_init__(self) -> None:
        problems = []
        if self.reward <= 0:
            problems.append("reward must be > 0")
        if self.stake < 0:
            problems.append("stake must be >= 0")
        if self.segments < 1:
            problems.append("segments must be >= 1")
        if self.verifiers < 0:
            problems.append("verifiers must be >= 0")
        if not 0.0 <= self.p <= 1.0:
            problems.append("p must be in [0, 1]")
        if not 0.0 < self.cost_share <= 1.0:
            problems.append("cost share must be in (0, 1]")
        if not 0.0 < self.forced_error_rate <= 1.0:
            problems.append("forced-error rate must be in (0, 1]")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Quote:
    terms: Terms
    #: (f, P_f) for the cheat sizes shown
    detection: tuple[tuple[int, float], ...]
    #: the smallest stake (base units) that makes every cheat size unprofitable; None when no
    #: stake does (nobody checks: P_f = 0)
    min_stake: int | None
    #: the cheat size that sets ``min_stake``
    worst_f: int
    #: what a verifier spends replaying one result (base units)
    check_cost: int
    #: the jackpot that keeps checking rational when nobody cheats; None with no verifier or p = 0
    jackpot: int | None
    #: the fee per task that funds it (phi x jackpot)
    jackpot_fee: int | None

    @property
    def stake_ok(self) -> bool:
        return self.min_stake is not None and self.terms.stake >= self.min_stake

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["detection"] = [{"f": f, "p_detect": pd} for f, pd in self.detection]
        d["stake_ok"] = self.stake_ok
        return d


def _sizes(n: int) -> list[int]:
    return sorted({f for f in (1, 2, 5, 10, max(1, n // 10), max(1, n // 2), n) if 1 <= f <= n})


def _up(x: float, granularity: int) -> int:
    """``x`` rounded up to a multiple of ``granularity`` base units (float noise kept out of the
    printed figures: a bound is never rounded down)."""
    return math.ceil(x / granularity) * granularity


def quote(t: Terms, granularity: int = 1) -> Quote:
    """The figures of docs/economics.md for ``t``, amounts rounded up to ``granularity``."""
    n, v, p, c, r = t.segments, t.verifiers, t.p, t.cost_share, t.reward
    worst, worst_f = -math.inf, 1
    for f in range(1, n + 1):
        pf = detection(p, v, f)
        need = math.inf if pf == 0 else c * r * f / (n * pf) - r
        if need > worst:
            worst, worst_f = need, f
    min_stake = None if math.isinf(worst) else max(0, _up(worst, granularity))
    check_cost = _up(p * c * r, granularity)
    any_catch = detection(p, v, 1)
    if any_catch == 0:
        jackpot = fee = None
    else:
        jackpot = _up(v * p * c * r / (t.forced_error_rate * any_catch), granularity)
        fee = _up(t.forced_error_rate * jackpot, granularity)
    return Quote(t, tuple((f, detection(p, v, f)) for f in _sizes(n)), min_stake, worst_f, check_cost,
                 jackpot, fee)


def stake_warning(q: Quote, fmt: Any = str) -> str | None:
    """One line when the stake is below the bound (``fmt`` formats base units); None otherwise."""
    if q.stake_ok:
        return None
    t = q.terms
    if q.min_stake is None:
        return (f"with {t.verifiers} verifier(s) sampling at p = {t.p} nobody checks: no stake makes "
                "cheating unprofitable")
    return (f"stake {fmt(t.stake)} is below {fmt(q.min_stake)}, the least that makes cheating unprofitable "
            f"with {t.verifiers} verifier(s) sampling at p = {t.p} (a {q.worst_f}-segment cheat; "
            "docs/economics.md)")

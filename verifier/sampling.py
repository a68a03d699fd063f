"""Which segments a verifier replays, and what that buys: pure functions, no I/O.

A verifier replays each segment ``j`` of a revealed result independently with probability
``p``. The choice must be unpredictable to the worker until it is too late to change its
result, so it is derived from a secret only the verifier holds, bound to the revealed result:

    seed_task = HMAC-SHA256(secret, "veritrain/sample/v1" | chain id | task id | worker | root)
    u_j       = HMAC-SHA256(seed_task, j) read as a number in [0, 1)
    replay j  iff u_j < p

The root is fixed at reveal time, so a worker cannot grind its result against the draw, and
without ``secret`` it cannot predict which segments are safe to falsify. Each segment is an
independent Bernoulli(p) draw, so a worker that falsified ``f`` of ``n`` segments is caught
with probability exactly ``1 - (1 - p)^f`` (replaying the first falsified segment suffices:
a chain is only wrong from some segment on, and that segment's replay differs).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

_LABEL = b"veritrain/sample/v1"


def _check_p(p: float) -> None:
    if not (0.0 <= p <= 1.0) or math.isnan(p):
        raise ValueError(f"sampling probability p must be in [0, 1], got {p}")


def task_seed(secret: bytes, chain_id: int, task_id: int, worker: str, root: bytes) -> bytes:
    """The per-result seed: only the holder of ``secret`` can compute it."""
    if len(secret) < 16:
        raise ValueError("the sampling secret must be at least 16 bytes")
    if len(root) != 32:
        raise ValueError(f"root must be 32 bytes, got {len(root)}")
    msg = b"|".join((_LABEL, str(chain_id).encode(), str(task_id).encode(),
                     worker.lower().encode(), root))
    return hmac.new(secret, msg, hashlib.sha256).digest()


def uniform(seed: bytes, j: int) -> float:
    """``u_j`` in [0, 1) with 53 bits of the HMAC of ``j`` under ``seed``."""
    digest = hmac.new(seed, j.to_bytes(8, "big"), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)


def choose_segments(seed: bytes, n_segments: int, p: float, *, full: bool = False) -> list[int]:
    """Segments ``0..n_segments-1`` to replay: all of them with ``full``, else each with prob ``p``."""
    _check_p(p)
    if n_segments < 0:
        raise ValueError(f"n_segments must be >= 0, got {n_segments}")
    if full:
        return list(range(n_segments))
    return [j for j in range(n_segments) if uniform(seed, j) < p]


def detection_probability(p: float, f: int) -> float:
    """Chance that at least one of ``f`` falsified segments is replayed: ``1 - (1 - p)^f``."""
    _check_p(p)
    if f < 0:
        raise ValueError(f"f must be >= 0, got {f}")
    return 1.0 - (1.0 - p) ** f


def falsified_for(p: float, confidence: float) -> int | None:
    """Least ``f`` with detection probability >= ``confidence`` (None when p = 0)."""
    _check_p(p)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if p == 0.0:
        return None
    if p == 1.0:
        return 1
    return max(1, math.ceil(math.log(1.0 - confidence) / math.log(1.0 - p) - 1e-12))


@dataclass(frozen=True)
class Figure:
    """One row of the published table: ``f`` of ``n`` segments falsified."""

    f: int
    n: int
    p: float
    probability: float


@dataclass(frozen=True)
class Figures:
    p: float
    n: int
    rows: tuple[Figure, ...]
    expected_replays: float  # segments replayed per result, on average: p * n

    def as_dict(self) -> dict[str, object]:
        return {
            "p": self.p, "segments": self.n, "expected_replays_per_result": self.expected_replays,
            "replay_cost_fraction": self.p,
            "rows": [{"falsified": r.f, "detection_probability": r.probability} for r in self.rows],
            "falsified_for_90": falsified_for(self.p, 0.9) if self.p > 0 else None,
            "falsified_for_99": falsified_for(self.p, 0.99) if self.p > 0 else None,
        }


def figures(p: float, n: int) -> Figures:
    """The detection table for ``f = 1..n`` falsified segments out of ``n``."""
    _check_p(p)
    if n < 1:
        raise ValueError(f"segments must be >= 1, got {n}")
    rows = tuple(Figure(f, n, p, detection_probability(p, f)) for f in range(1, n + 1))
    return Figures(p, n, rows, p * n)


def format_table(figs: Figures) -> str:
    """The table as plain text (also valid Markdown)."""
    lines = [
        f"Detection figures for p = {figs.p:g} over n = {figs.n} segments "
        f"(replays {figs.expected_replays:g} segments per result on average, "
        f"{100 * figs.p:g}% of the training compute)",
        "",
        "| falsified segments f | P(caught) = 1-(1-p)^f |",
        "|---:|---:|",
    ]
    lines += [f"| {r.f} | {r.probability:.4f} |" for r in figs.rows]
    for conf in (0.9, 0.99):
        f = falsified_for(figs.p, conf) if figs.p > 0 else None
        if f is None:
            lines.append("\nwith p = 0 no falsification is ever caught by sampling")
            break
        lines.append(f"\n{conf:.0%} detection needs f >= {f} falsified segments"
                     + ("" if f <= figs.n else f" (more than the {figs.n} a result has)"))
    return "\n".join(lines)

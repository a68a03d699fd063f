"""Forced errors (issue 22): which claims must reveal a wrong result, and the wrong checkpoint.

The normative description is docs/spec/forced.md; this module is its code. A worker picks a
32-byte ``secret`` and claims with ``seed_hash(secret)``; when its key is delivered the market
snapshots ``snap``, the hash of the claim's block. ``draw(secret, snap)`` then decides, for the
worker alone until it opens the secret, whether the claim is selected (:func:`select`) and
which segment ``j*`` carries the error. A selected worker trains honestly, goes on from the
real checkpoint ``j*+1``, but publishes and commits :func:`perturb`'s checkpoint ``j*+1``
instead: one weight moved by one ulp (exact mode) or by ``FORCED_MARGIN`` times the job's
tolerance bound relative to the segment's update (tolerance mode), so that only a replay of
segment ``j*`` shows it, never a hash or a statistic of the files.

Nothing here touches the chain: the market keeps the seal (:func:`seal`, :func:`opened`) and the
resolver judges ``answerForced``, ``openSeed`` and ``challengeOptOut`` by the same rules
(docs/spec/forced.md §4).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from sha3 import keccak_256

from veritrain.checkpoint import CheckpointState, decode, encode

SECRET_BYTES = 32
#: A selected claim's draw is below ``forced_error_bps`` in basis points.
BPS = 10_000
#: Tolerance mode: the forced weight moves by this many times the bound (relative to the
#: segment's update), so honest divergence (at most the bound) cannot hide it.
FORCED_MARGIN = 4.0
_U64 = (1 << 64) - 1
_ZERO = bytes(32)
#: ``DisputeResolver.OPT_OUT``: the ``accuserNext`` an opt-out challenge reads with (the
#: dispute asks whether j*+1 was published real instead of forced; it is not answered forced).
OPT_OUT = keccak_256(b"veritrain.forced.optOut").digest()


def new_secret() -> bytes:
    return os.urandom(SECRET_BYTES)


def seed_hash(secret: bytes) -> bytes:
    """``keccak256(secret)``: what the worker commits to in its claim."""
    _check32("secret", secret)
    return keccak_256(secret).digest()


def draw(secret: bytes, snap: bytes) -> int:
    """``uint256(keccak256(secret || snap))``, big-endian."""
    _check32("secret", secret)
    _check32("snap", snap)
    return int.from_bytes(keccak_256(secret + snap).digest(), "big")


@dataclass(frozen=True)
class Selection:
    selected: bool
    #: ``j*``: the segment whose end checkpoint ``j*+1`` is perturbed (None when not selected).
    segment: int | None = None
    #: The disputed segments a selected worker answers as forced: ``j*`` and ``j*+1`` (replayed
    #: from the published checkpoint ``j*+1``; it exists, since ``j* <= n-2``).
    segments: tuple[int, ...] = ()


def select(secret: bytes, snap: bytes, *, bps: int, redundancy: int, checkpoints: int) -> Selection:
    """Whether the claim is a forced error, and where. ``checkpoints`` is ``n`` (segments
    ``0..n-1``, checkpoints ``0..n``). Never selected: a zero ``snap`` (the key came more than
    256 blocks after the claim), redundancy above 1 (co-workers' equal roots would give it
    away), fewer than 2 segments (the final checkpoint, the model, is never perturbed)."""
    if not 0 <= bps <= BPS:
        raise ValueError(f"forced_error_bps must be 0..{BPS}, not {bps}")
    if snap == _ZERO or redundancy != 1 or checkpoints < 2:
        return Selection(False)
    d = draw(secret, snap)
    if d % BPS >= bps:
        return Selection(False)
    j = (d >> 128) % (checkpoints - 1)
    return Selection(True, j, (j, j + 1))


def jackpot_fee(rewards: int, redundancy: int, fee_bps: int) -> int:
    """What ``postJob`` takes beyond the escrow for the jackpot pool: ``fee_bps`` of the job's
    ``rewards`` (every slot's reward) for a redundancy-1 job, nothing otherwise (as the
    contract computes it)."""
    return rewards * fee_bps // BPS if redundancy == 1 else 0


def seal(seed: bytes, snap: bytes) -> bytes:
    """The market's seal of a claim once its key is delivered:
    ``keccak256(abi.encode(uint256(seedHash) >> 64, snap))`` with its lowest bit cleared (the
    market sets that bit when the seed is opened: :func:`opened`)."""
    top = int.from_bytes(seed, "big") >> 64
    digest = int.from_bytes(keccak_256(top.to_bytes(32, "big") + snap).digest(), "big")
    return (digest & ~1).to_bytes(32, "big")


def opened(sealed: bytes) -> bool:
    """Whether the market marked this seal's seed opened (its lowest bit)."""
    return bool(sealed[-1] & 1)


def snap_of(sealed: bytes, seed: bytes, claim_block_hash: bytes) -> bytes | None:
    """The snapshot the market sealed: the claim block's hash, or zero (the key came more than
    256 blocks later); None when ``sealed`` is neither (no seal: not a forced job)."""
    bare = sealed[:-1] + bytes([sealed[-1] & 0xFE])
    for snap in (claim_block_hash, _ZERO):
        if bare == seal(seed, snap):
            return snap
    return None


def weight_index(d: int, count: int) -> int:
    """The flat index of the perturbed weight among ``count`` model weights."""
    if count <= 0:
        raise ValueError("the model has no floating-point weight to perturb")
    return ((d >> 64) & _U64) % count


def _weights(state: CheckpointState) -> list[str]:
    """The ``model/`` tensors of a floating dtype (float32; float64 in a float64 job), sorted."""
    return [n for n in sorted(state.tensors) if n.startswith("model/") and state.tensors[n].dtype.kind == "f"]


def update_norm(start: CheckpointState, end: CheckpointState) -> float:
    """``||θ_end − θ_start||`` over the :func:`_weights` tensors: differences and squares in
    float64, their sum exactly rounded (``math.fsum``), then its square root."""
    squares = [end.tensors[n].astype(np.float64).ravel() - start.tensors[n].astype(np.float64).ravel()
               for n in _weights(end)]
    # fsum: the exactly rounded sum, whatever the order, so every implementation gets the same bits
    return math.sqrt(math.fsum(x for d in squares for x in (d * d).tolist()))


def perturb(checkpoint_j: bytes, checkpoint_next: bytes, d: int, bound: float | None) -> bytes:
    """Checkpoint ``j*+1`` as a selected worker publishes it: weight :func:`weight_index` of the
    ``model/`` floating tensors (sorted names, C order) moves to the value of its dtype nearest
    to ``w + FORCED_MARGIN · bound · ||θ_{j*+1} − θ_{j*}||`` (``bound`` 0 in exact mode); when
    that rounds back to ``w``, to the next value above ``w``. Everything else is unchanged."""
    start, end = decode(checkpoint_j), decode(checkpoint_next)
    names = _weights(end)
    offsets = np.cumsum([0] + [end.tensors[n].size for n in names])
    at = weight_index(d, int(offsets[-1]))
    t = int(np.searchsorted(offsets, at, side="right")) - 1  # the tensor holding flat index `at`
    name, i = names[t], at - int(offsets[t])
    flat = end.tensors[name].reshape(-1).copy()
    kind = flat.dtype.type
    w = flat[i]
    if not np.isfinite(w):
        raise ValueError(f"{name}[{i}] is {w}: a checkpoint with a non-finite weight cannot be forced")
    delta = FORCED_MARGIN * float(bound or 0.0) * update_norm(start, end)
    moved = kind(float(w) + delta)
    if moved == w:
        moved = np.nextafter(w, kind(np.inf))
    if not np.isfinite(moved):
        moved = np.nextafter(w, kind(-np.inf))
    flat[i] = moved
    tensors = {**end.tensors, name: flat.reshape(end.tensors[name].shape)}
    return encode(CheckpointState(meta=end.meta, tensors=tensors))


def _check32(what: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes")

"""Top-k per chunk compression of a pseudo-gradient (Templar's scheme, without DCT).

Each tensor is flattened and cut into chunks of ``chunk`` values (at most 4096, so an index
fits 12 bits); in every chunk the ``k`` values of largest magnitude are kept (ties: lower
index first). Indices are packed two per three bytes (little-endian 12-bit pairs); values are
float32. The encoding is the canonical checkpoint encoding (:mod:`veritrain.checkpoint`) with
``meta`` naming the update's window, worker, base model hash, chunk and k, so its sha256 is
well defined and a decoder refuses anything non-canonical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from veritrain.checkpoint import CheckpointState, decode, encode
from veritrain.errors import VeritrainError

if TYPE_CHECKING:  # pragma: no cover
    import torch

MAX_CHUNK = 4096  # 12-bit indices
KIND = "veritrain-scored-update"


class UpdateFormatError(VeritrainError, ValueError):
    """An update's bytes are not a valid compressed update."""


def pack12(idx: np.ndarray) -> np.ndarray:
    """Pack values < 4096 into 12 bits each (an odd count is padded with a zero)."""
    a = np.asarray(idx, dtype=np.uint16)
    if a.size and int(a.max()) >= MAX_CHUNK:
        raise ValueError("a 12-bit index must be below 4096")
    if a.size % 2:
        a = np.append(a, np.uint16(0))
    lo, hi = a[0::2].astype(np.uint32), a[1::2].astype(np.uint32)
    word = lo | (hi << 12)
    out = np.empty((word.size, 3), dtype=np.uint8)
    out[:, 0], out[:, 1], out[:, 2] = word & 0xFF, (word >> 8) & 0xFF, (word >> 16) & 0xFF
    return out.reshape(-1)


def unpack12(packed: np.ndarray, count: int) -> np.ndarray:
    b = np.asarray(packed, dtype=np.uint8)
    if b.size % 3 or b.size // 3 * 2 < count:
        raise UpdateFormatError(f"packed indices: {b.size} bytes cannot hold {count} 12-bit values")
    t = b.reshape(-1, 3).astype(np.uint32)
    word = t[:, 0] | (t[:, 1] << 8) | (t[:, 2] << 16)
    out = np.empty(word.size * 2, dtype=np.int64)
    out[0::2], out[1::2] = word & 0xFFF, word >> 12
    return out[:count]


@dataclass
class CompressedUpdate:
    """Per tensor: kept indices (within their chunk) and values, row per chunk."""

    chunk: int
    k: int
    shapes: dict[str, tuple[int, ...]]
    indices: dict[str, np.ndarray]  # int64 [chunks, kk]
    values: dict[str, np.ndarray]  # float32 [chunks, kk]
    meta: dict[str, Any] = field(default_factory=dict)

    def index_set(self) -> set[tuple[str, int, int]]:
        """Every kept (tensor, chunk, index): what copy detection compares."""
        out: set[tuple[str, int, int]] = set()
        for name, idx in self.indices.items():
            for c, row in enumerate(idx):
                out.update((name, c, int(i)) for i in row)
        return out


def compress(delta: Mapping[str, torch.Tensor], chunk: int = 1024, k: int = 32,
             meta: Mapping[str, Any] | None = None) -> CompressedUpdate:
    """Keep the top-``k`` magnitudes of every ``chunk`` values of each tensor of ``delta``."""
    if not 1 <= chunk <= MAX_CHUNK or not 1 <= k <= chunk:
        raise ValueError(f"need 1 <= k <= chunk <= {MAX_CHUNK}, got chunk={chunk}, k={k}")
    shapes, indices, values = {}, {}, {}
    for name in sorted(delta):
        flat = delta[name].detach().to("cpu").reshape(-1).numpy().astype(np.float32)
        shapes[name] = tuple(delta[name].shape)
        n_chunks = max(1, -(-flat.size // chunk))
        padded = np.zeros(n_chunks * chunk, dtype=np.float32)
        padded[: flat.size] = flat
        rows = padded.reshape(n_chunks, chunk)
        kk = min(k, chunk)
        # stable: larger magnitude first, then lower index
        order = np.argsort(-np.abs(rows), axis=1, kind="stable")[:, :kk]
        order.sort(axis=1)
        indices[name] = order.astype(np.int64)
        values[name] = np.take_along_axis(rows, order, axis=1)
    return CompressedUpdate(chunk, k, shapes, indices, values, dict(meta or {}))


def decompress(update: CompressedUpdate) -> dict[str, torch.Tensor]:
    """The dense delta ``update`` stands for (zeros where nothing was kept)."""
    import torch

    out = {}
    for name, shape in update.shapes.items():
        idx, val = update.indices[name], update.values[name]
        rows = np.zeros((idx.shape[0], update.chunk), dtype=np.float32)
        np.put_along_axis(rows, idx, val, axis=1)
        size = int(np.prod(shape)) if shape else 1
        out[name] = torch.from_numpy(rows.reshape(-1)[:size].reshape(shape).copy())
    return out


def to_bytes(update: CompressedUpdate) -> bytes:
    tensors: dict[str, np.ndarray] = {}
    for name in update.shapes:
        tensors[f"{name}:idx"] = pack12(update.indices[name].reshape(-1))
        tensors[f"{name}:val"] = update.values[name].astype(np.float32)
    table = {name: [list(shape), int(update.indices[name].shape[0]), int(update.indices[name].shape[1])]
             for name, shape in update.shapes.items()}
    meta = {**update.meta, "kind": KIND, "chunk": update.chunk, "k": update.k, "table": table}
    return encode(CheckpointState(meta=meta, tensors=tensors))


def from_bytes(data: bytes) -> CompressedUpdate:
    try:
        state = decode(data)
    except Exception as exc:  # CheckpointFormatError and truncations
        raise UpdateFormatError(f"not a compressed update: {exc}") from None
    meta = dict(state.meta)
    if meta.pop("kind", None) != KIND:
        raise UpdateFormatError("not a compressed update: wrong kind")
    try:
        chunk, k, table = int(meta.pop("chunk")), int(meta.pop("k")), meta.pop("table")
        shapes, indices, values = {}, {}, {}
        for name, (shape, rows, kk) in table.items():
            if not 0 <= kk <= chunk <= MAX_CHUNK:
                raise UpdateFormatError(f"{name}: bad chunk table")
            idx = unpack12(state.tensors[f"{name}:idx"], rows * kk).reshape(rows, kk)
            if idx.size and int(idx.max()) >= chunk:
                raise UpdateFormatError(f"{name}: index beyond its chunk")
            val = np.asarray(state.tensors[f"{name}:val"], dtype=np.float32).reshape(rows, kk)
            if not np.isfinite(val).all():
                raise UpdateFormatError(f"{name}: non-finite values")
            shapes[name], indices[name], values[name] = tuple(shape), idx, val
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, UpdateFormatError):
            raise
        raise UpdateFormatError(f"not a compressed update: {exc}") from None
    return CompressedUpdate(chunk, k, shapes, indices, values, meta)

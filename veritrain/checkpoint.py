"""The canonical checkpoint encoding: one training state <-> exactly one byte string.

Layout (version 1)::

    b"VTCK" | u16 version (LE) | u64 header length (LE) | header | tensor bytes

The header is RFC 8785 canonical JSON (:func:`veritrain.canon.jcs`; no NaN)::

    {"meta": {...}, "tensors": [[name, dtype, shape, nbytes], ...]}   # names sorted

followed by every tensor's raw little-endian C-order bytes in the same sorted order, with
no padding. :func:`decode` refuses anything :func:`encode` would not produce byte for byte,
so equal states have equal bytes and the hash ``h_i = sha256(bytes)`` (protocol.md) names
the state. Not pickle or torch.save: their bytes are not canonical. No torch here (numpy);
the engine converts torch state in :mod:`veritrain.training.state`. Normative text:
docs/spec/README.md, section 7.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from veritrain.canon import jcs
from veritrain.errors import CheckpointFormatError

MAGIC = b"VTCK"
VERSION = 1
_PREFIX = struct.Struct("<4sHQ")
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")


@dataclass
class CheckpointState:
    """``meta``: JSON-able scalars and lists (step, task, RNG seeds...); ``tensors``: arrays."""

    meta: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    def equal(self, other: CheckpointState) -> bool:
        """Bitwise equality (NaN payloads included): the same canonical bytes."""
        return encode(self) == encode(other)


def _canonical_json(obj: Any) -> bytes:
    try:
        return jcs(obj)
    except ValueError as exc:
        raise CheckpointFormatError(f"checkpoint metadata is not plain JSON: {exc}") from None


def _little_endian(name: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.name not in DTYPES:
        raise CheckpointFormatError(f"tensor {name!r}: dtype {arr.dtype} not in {', '.join(DTYPES)}")
    return np.asarray(arr).astype(arr.dtype.newbyteorder("<"), order="C", copy=False)


def encode_parts(state: CheckpointState) -> list[bytes | memoryview]:
    """The encoding as a list of buffers (no copy of tensor data); ``b"".join`` gives the bytes."""
    names = sorted(state.tensors)
    arrays = [_little_endian(n, state.tensors[n]) for n in names]
    table = [[n, a.dtype.name, list(a.shape), a.nbytes] for n, a in zip(names, arrays, strict=True)]
    header = _canonical_json({"meta": state.meta, "tensors": table})
    parts: list[bytes | memoryview] = [_PREFIX.pack(MAGIC, VERSION, len(header)), header]
    parts += [a.reshape(-1).view(np.uint8).data for a in arrays if a.nbytes]
    return parts


def encode(state: CheckpointState) -> bytes:
    return b"".join(encode_parts(state))


def checkpoint_hash(data: bytes | memoryview) -> bytes:
    """``h_i``: sha256 of the canonical bytes (32 bytes)."""
    return hashlib.sha256(data).digest()


def encode_and_hash(state: CheckpointState) -> tuple[bytes, bytes]:
    data = encode(state)
    return data, checkpoint_hash(data)


def decode(data: bytes | memoryview) -> CheckpointState:
    """The state in ``data``; :class:`CheckpointFormatError` unless ``data`` is canonical."""
    buf = memoryview(data).cast("B")
    if len(buf) < _PREFIX.size:
        raise CheckpointFormatError(f"checkpoint too short ({len(buf)} bytes)")
    magic, version, hlen = _PREFIX.unpack_from(buf)
    if magic != MAGIC:
        raise CheckpointFormatError("not a Veritrain checkpoint (bad magic)")
    if version != VERSION:
        raise CheckpointFormatError(f"checkpoint format version {version}; this build reads {VERSION}")
    start = _PREFIX.size
    header_bytes = bytes(buf[start : start + hlen])
    if len(header_bytes) != hlen:
        raise CheckpointFormatError("checkpoint truncated inside its header")
    try:
        header = json.loads(header_bytes)
        meta, table = header["meta"], header["tensors"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointFormatError("checkpoint header is not valid JSON with meta and tensors") from None
    if _canonical_json(header) != header_bytes or set(header) != {"meta", "tensors"}:
        raise CheckpointFormatError("checkpoint header is not canonical")
    tensors: dict[str, np.ndarray] = {}
    offset = start + hlen
    previous = None
    for row in table:
        name, dtype, shape, nbytes = _check_row(row, previous)
        chunk = buf[offset : offset + nbytes]
        if len(chunk) != nbytes:
            raise CheckpointFormatError(f"checkpoint truncated inside tensor {name!r}")
        tensors[name] = np.frombuffer(chunk, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()
        offset += nbytes
        previous = name
    if offset != len(buf):
        raise CheckpointFormatError(f"{len(buf) - offset} trailing bytes after the last tensor")
    return CheckpointState(meta=meta, tensors=tensors)


def _check_row(row: Any, previous: str | None) -> tuple[str, str, tuple[int, ...], int]:
    ok = isinstance(row, list) and len(row) == 4 and isinstance(row[0], str) and row[1] in DTYPES
    ok = ok and isinstance(row[2], list) and all(isinstance(d, int) and d >= 0 for d in row[2])
    if not ok:
        raise CheckpointFormatError(f"bad tensor entry in checkpoint header: {row!r}")
    name, dtype, shape, nbytes = row
    if previous is not None and name <= previous:
        raise CheckpointFormatError(f"tensor {name!r} out of order (names must be sorted and unique)")
    if nbytes != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
        raise CheckpointFormatError(f"tensor {name!r}: {nbytes} bytes do not match {dtype}{shape}")
    return name, dtype, tuple(shape), nbytes

"""Chunked, streaming AES-256-GCM for shards and checkpoints.

Format (version 1)::

    header  = MAGIC (6 B, b"VTAEAD") | version (1 B) | chunk_size (4 B, big-endian)
              | nonce_prefix (8 B, random per encryption)
    chunk_i = AES-256-GCM(key, nonce = nonce_prefix | i (4 B), plaintext_i, ad_i) (len + 16 B tag)

Every chunk's associated data binds the header, the job id, the shard index, the chunk
index and an is-last flag, so chunks cannot be swapped between jobs or shards, reordered,
dropped or truncated at a chunk boundary without failing authentication. A stream always has
at least one chunk (an empty plaintext is one empty, last chunk). Memory use is one chunk.

Decryption to a file writes a temporary file next to the destination and renames it only
after the last chunk authenticated: a failed decryption leaves no plaintext behind.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NewType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veritrain.errors import DecryptionError

#: A 32-byte AES-256 data key (per job, or per shard).
DataKey = NewType("DataKey", bytes)

MAGIC = b"VTAEAD"
VERSION = 1
KEY_SIZE = 32
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 8
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 1 << 30
MAX_CHUNKS = 1 << 32  # the nonce counter is 4 bytes
_HEADER = struct.Struct(">6sBI8s")
HEADER_SIZE = _HEADER.size
_AD_LABEL = b"veritrain/aead-chunk/v1"


def generate_data_key() -> DataKey:
    """A fresh random 32-byte data key."""
    return DataKey(os.urandom(KEY_SIZE))


def shard_key(job_key: bytes, binding: str, index: int) -> DataKey:
    """The key of shard ``index`` of the job bound by ``binding``: HKDF-SHA256 of the job key
    with an info string naming both. Shard ``index`` and every checkpoint of a task that
    trains it are encrypted under it, so the key a worker or referee is given opens that
    shard's data and nothing else; the requester keeps the job key and derives the rest."""
    _check_key(job_key)
    if index < 0:
        raise ValueError(f"shard index {index} is negative")
    info = f"veritrain/shard-key/v1/{binding}/{index}".encode()
    return DataKey(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(job_key))


def _check_key(key: bytes) -> AESGCM:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise ValueError(f"data key must be {KEY_SIZE} bytes, got {size}: use generate_data_key()")
    return AESGCM(bytes(key))


def _associated_data(header: bytes, job_id: str | int, shard_index: int, chunk: int, last: bool) -> bytes:
    job = str(job_id).encode()
    return b"".join(
        (_AD_LABEL, header, struct.pack(">H", len(job)), job,
         struct.pack(">QQB", shard_index, chunk, 1 if last else 0))
    )


def _chunks(src: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """(chunk, is_last) with one chunk of look-ahead; at least one (possibly empty) chunk."""
    cur = _read_full(src, size)
    while True:
        nxt = _read_full(src, size) if len(cur) == size else b""
        yield cur, not nxt
        if not nxt:
            return
        cur = nxt


def _read_full(src: BinaryIO, size: int) -> bytes:
    buf = src.read(size)
    if len(buf) == size or not buf:
        return buf
    parts = [buf]
    got = len(buf)
    while got < size:
        more = src.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO, key: bytes, *, job_id: str | int, shard_index: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Encrypt ``src`` into ``dst``; returns the number of ciphertext bytes written."""
    return _encrypt_stream(src, dst, key, os.urandom(NONCE_PREFIX_SIZE), job_id=job_id,
                           shard_index=shard_index, chunk_size=chunk_size)


def _encrypt_stream(
    src: BinaryIO, dst: BinaryIO, key: bytes, prefix: bytes, *, job_id: str | int, shard_index: int,
    chunk_size: int,
) -> int:
    """:func:`encrypt_stream` with a given nonce prefix (test vectors; never reuse a prefix)."""
    aead = _check_key(key)
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be in (0, {MAX_CHUNK_SIZE}], got {chunk_size}")
    if len(prefix) != NONCE_PREFIX_SIZE:
        raise ValueError(f"nonce prefix must be {NONCE_PREFIX_SIZE} bytes")
    header = _HEADER.pack(MAGIC, VERSION, chunk_size, prefix)
    dst.write(header)
    written = len(header)
    for i, (plain, last) in enumerate(_chunks(src, chunk_size)):
        if i >= MAX_CHUNKS:
            raise ValueError("plaintext too large for this chunk size: use a larger chunk_size")
        nonce = prefix + struct.pack(">I", i)
        ct = aead.encrypt(nonce, plain, _associated_data(header, job_id, shard_index, i, last))
        dst.write(ct)
        written += len(ct)
    return written


def decrypt_stream(
    src: BinaryIO, dst: BinaryIO, key: bytes, *, job_id: str | int, shard_index: int,
    source: str = "ciphertext",
) -> int:
    """Decrypt ``src`` into ``dst``; returns plaintext bytes. Raises DecryptionError.

    ``dst`` may have received earlier chunks when this raises: use :func:`decrypt_file`
    (temp file + rename) or :func:`decrypt_bytes` when a partial result must never be seen.
    """
    aead = _check_key(key)
    header = _read_full(src, HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise DecryptionError(f"{source} is truncated: {len(header)} bytes, shorter than the header")
    magic, version, chunk_size, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise DecryptionError(f"{source} is not Veritrain ciphertext (bad magic {magic!r})")
    if version != VERSION:
        raise DecryptionError(f"{source} has format version {version}; this build reads {VERSION}")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionError(f"{source} header has an invalid chunk size {chunk_size}")
    total = 0
    for i, (ct, last) in enumerate(_chunks(src, chunk_size + TAG_SIZE)):
        if len(ct) < TAG_SIZE or i >= MAX_CHUNKS:
            raise DecryptionError(f"{source} is truncated or malformed at chunk {i}")
        nonce = prefix + struct.pack(">I", i)
        try:
            plain = aead.decrypt(nonce, ct, _associated_data(header, job_id, shard_index, i, last))
        except InvalidTag:
            raise DecryptionError(
                f"{source} failed authentication at chunk {i}: it was tampered with, truncated or "
                f"reordered, or the key / job {job_id} / shard {shard_index} is not the one it was "
                "encrypted for"
            ) from None
        dst.write(plain)
        total += len(plain)
    return total


def encrypt_bytes(
    data: bytes, key: bytes, *, job_id: str | int, shard_index: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key, job_id=job_id, shard_index=shard_index,
                   chunk_size=chunk_size)
    return out.getvalue()


def decrypt_bytes(data: bytes, key: bytes, *, job_id: str | int, shard_index: int) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, key, job_id=job_id, shard_index=shard_index)
    return out.getvalue()


def _atomic_write(dst: Path) -> tuple[BinaryIO, Path]:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    return os.fdopen(fd, "wb"), Path(tmp)


def encrypt_file(
    src: Path, dst: Path, key: bytes, *, job_id: str | int, shard_index: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Encrypt file ``src`` to ``dst`` (atomically); returns ciphertext size."""
    src, dst = Path(src), Path(dst)
    out, tmp = _atomic_write(dst)
    try:
        with open(src, "rb") as fin, out:
            n = encrypt_stream(fin, out, key, job_id=job_id, shard_index=shard_index,
                               chunk_size=chunk_size)
        os.replace(tmp, dst)
        return n
    finally:
        tmp.unlink(missing_ok=True)


def decrypt_file(src: Path, dst: Path, key: bytes, *, job_id: str | int, shard_index: int) -> int:
    """Decrypt file ``src`` to ``dst``; on any failure ``dst`` is not created or changed."""
    src, dst = Path(src), Path(dst)
    out, tmp = _atomic_write(dst)
    try:
        with open(src, "rb") as fin, out:
            n = decrypt_stream(fin, out, key, job_id=job_id, shard_index=shard_index, source=str(src))
        os.replace(tmp, dst)
        return n
    finally:
        tmp.unlink(missing_ok=True)


def ciphertext_size(plaintext_size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Exact ciphertext size for a plaintext of ``plaintext_size`` bytes."""
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def dp_noise_seed(key: bytes, round_: int, shard: int, step: int) -> int:
    """The seed of DP-SGD's noise generator at ``step`` of task ``(round_, shard)``: the first 8
    bytes, big-endian, of HKDF-SHA256 of the task's shard key with the info below
    (docs/spec/dp.md). Only holders of the shard key can draw (and so subtract) the noise."""
    _check_key(key)
    if min(round_, shard, step) < 0:
        raise ValueError("round, shard and step must be non-negative")
    info = f"veritrain/dp-noise/v1/{round_}/{shard}/{step}".encode()
    out = HKDF(algorithm=hashes.SHA256(), length=8, salt=None, info=info).derive(key)
    return int.from_bytes(out, "big") >> 1  # torch seeds are < 2**63

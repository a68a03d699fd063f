"""Compute IPFS CIDs locally, so every read can be checked against the CID it was asked for.

The one layout Veritrain writes (``ipfs add --cid-version 1 --raw-leaves``, Kubo's and
js-ipfs's defaults otherwise): 256 KiB fixed-size chunks stored as raw leaves (codec 0x55);
a file of one chunk is that raw leaf; larger files are a balanced DAG of dag-pb (0x70) nodes
with at most 174 links each, whose UnixFS data is ``File`` with ``filesize`` and per-child
``blocksizes``. sha2-256 multihashes; CIDv1 rendered in base32 (``bafy...``/``bafk...``).

The dag-pb and UnixFS protobufs are tiny and written by hand (canonical field order:
links, then data; a link is Hash, Name="" , Tsize).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, NewType

#: A CIDv1 string in base32 (``b...``).
Cid = NewType("Cid", str)

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174
RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def cid_bytes(codec: int, digest: bytes) -> bytes:
    return _varint(1) + _varint(codec) + bytes([SHA2_256, len(digest)]) + digest


def encode_cid(raw: bytes) -> Cid:
    return Cid("b" + base64.b32encode(raw).decode().lower().rstrip("="))


def decode_cid(cid: str) -> tuple[int, bytes]:
    """``(codec, sha256 digest)`` of a base32 CIDv1 with a sha2-256 multihash; ValueError else."""
    if not isinstance(cid, str) or not cid.startswith("b") or len(cid) < 10:
        raise ValueError(f"{cid!r} is not a base32 CIDv1 (expected 'b...'; add with cid-version=1)")
    body = cid[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise ValueError(f"{cid!r} is not valid base32") from None
    version, pos = _read_varint(raw, 0)
    codec, pos = _read_varint(raw, pos)
    if version != 1:
        raise ValueError(f"{cid!r} is CID version {version}, expected 1")
    if raw[pos : pos + 2] != bytes([SHA2_256, 32]) or len(raw) != pos + 34:
        raise ValueError(f"{cid!r} does not use a sha2-256 multihash")
    if codec not in (RAW, DAG_PB):
        raise ValueError(f"{cid!r} has codec 0x{codec:x}; only raw and dag-pb files are supported")
    return codec, raw[pos + 2 :]


@dataclass(frozen=True)
class Node:
    """A DAG node as its parent links to it: CID bytes, file bytes below it, Tsize."""

    cid: bytes
    filesize: int
    tsize: int


def leaf_node(chunk: bytes) -> Node:
    return Node(cid_bytes(RAW, hashlib.sha256(chunk).digest()), len(chunk), len(chunk))


def _parent(children: list[Node]) -> Node:
    filesize = sum(c.filesize for c in children)
    unixfs = _field_varint(1, 2) + _field_varint(3, filesize)
    unixfs += b"".join(_field_varint(4, c.filesize) for c in children)
    links = b"".join(
        _field_bytes(2, _field_bytes(1, c.cid) + _field_bytes(2, b"") + _field_varint(3, c.tsize))
        for c in children
    )
    block = links + _field_bytes(1, unixfs)
    return Node(
        cid_bytes(DAG_PB, hashlib.sha256(block).digest()),
        filesize,
        len(block) + sum(c.tsize for c in children),
    )


def root_of_leaves(leaves: list[Node]) -> Node:
    """The balanced-layout root over leaf nodes (one leaf is its own root)."""
    if not leaves:
        leaves = [leaf_node(b"")]
    if len(leaves) == 1:
        return leaves[0]
    level = leaves
    while True:
        level = [_parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
        if len(level) == 1:
            return level[0]


class CidHasher:
    """Streaming CID computation: ``update()`` with any slicing of the bytes, then ``cid()``."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._leaves: list[Node] = []
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if not self._buf and len(data) >= CHUNK_SIZE:
            view = memoryview(data)
            full = len(data) - len(data) % CHUNK_SIZE
            for i in range(0, full, CHUNK_SIZE):
                self._leaves.append(leaf_node(bytes(view[i : i + CHUNK_SIZE])))
            data = bytes(view[full:])
        self._buf += data
        while len(self._buf) >= CHUNK_SIZE:
            self._leaves.append(leaf_node(bytes(self._buf[:CHUNK_SIZE])))
            del self._buf[:CHUNK_SIZE]

    def cid(self) -> Cid:
        leaves = list(self._leaves)
        if self._buf or not leaves:
            leaves.append(leaf_node(bytes(self._buf)))
        return encode_cid(root_of_leaves(leaves).cid)


def cid_of_bytes(data: bytes) -> Cid:
    h = CidHasher()
    h.update(data)
    return h.cid()


def cid_of_stream(src: BinaryIO, block: int = 4 * CHUNK_SIZE) -> Cid:
    h = CidHasher()
    while chunk := src.read(block):
        h.update(chunk)
    return h.cid()


def cid_of_chunks(chunks: Iterable[bytes]) -> Cid:
    h = CidHasher()
    for c in chunks:
        h.update(c)
    return h.cid()

"""The ``Storage`` interface: content-addressed put/get where every read is verified.

Backends implement four primitives (:meth:`Storage._add`, :meth:`Storage._cat`,
:meth:`Storage.pin`, :meth:`Storage.has`); this base class does the streaming, the local
CID computation and the checks, so no backend — and no lying node behind it — can hand
back bytes that do not match the CID asked for, or claim a CID for bytes it did not store.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from veritrain.errors import IntegrityError, StorageError
from veritrain.storage.cid import Cid, CidHasher, cid_of_bytes, decode_cid

T = TypeVar("T")
#: Bytes read from a file per upload block.
READ_BLOCK = 1 << 20


def check_cid(cid: str) -> Cid:
    """Validate the CID's form (base32 CIDv1, sha2-256, raw or dag-pb) before any I/O."""
    try:
        decode_cid(cid)
    except ValueError as exc:
        raise IntegrityError(f"cannot verify content for {cid!r}: {exc}") from None
    return Cid(cid)


class StorageUnreachableError(StorageError):
    """The storage node did not answer at all (down, wrong address): not a problem of the
    content. Callers must not mistake it for a bad document; scripted runs stop on it."""


class Storage(ABC):
    """Content-addressed blob storage (IPFS in production and in integration tests)."""

    #: Human-readable location used in error messages.
    where: str = "storage"

    # ---------------------------------------------------------------- backend primitives
    @abstractmethod
    def _add(self, chunks: Iterable[bytes]) -> str:
        """Store the concatenated chunks (streamed); return the CID the backend reports."""

    @abstractmethod
    def _cat(self, cid: Cid) -> Iterator[bytes]:
        """Stream the content the backend holds for ``cid`` (unverified)."""

    @abstractmethod
    def pin(self, cid: str) -> None:
        """Keep ``cid`` (and its whole DAG) from garbage collection."""

    @abstractmethod
    def has(self, cid: str) -> bool:
        """True if the backend holds ``cid``'s root block locally (no network fetch)."""

    def unpin(self, cid: str) -> None:
        """Let ``cid`` be garbage-collected (a backend without pins refuses, never ignores)."""
        raise StorageError(f"{self.where} cannot unpin")

    def _attempt(self, fn: Callable[[], T], what: str) -> T:
        """Run one whole operation; backends override this to retry transient failures."""
        return fn()

    # ----------------------------------------------------------------------- public API
    def put_bytes(self, data: bytes) -> Cid:
        expected = cid_of_bytes(data)
        reported = self._attempt(lambda: self._add([data]), f"adding {len(data)} bytes")
        return self._check_added(reported, expected, f"{len(data)} bytes")

    def put_file(self, path: Path) -> Cid:
        """Upload a file in one streaming pass (hashing it on the way); memory: one block."""
        path = Path(path)

        def attempt() -> Cid:
            hasher = CidHasher()
            with open(path, "rb") as f:

                def blocks() -> Iterator[bytes]:
                    while block := f.read(READ_BLOCK):
                        hasher.update(block)
                        yield block

                reported = self._add(blocks())
            return self._check_added(reported, hasher.cid(), str(path))

        return self._attempt(attempt, f"adding {path}")

    def get_bytes(self, cid: str) -> bytes:
        cid = check_cid(cid)

        def attempt() -> bytes:
            data = b"".join(self._cat(cid))
            self._check_read(cid, cid_of_bytes(data), len(data))
            return data

        return self._attempt(attempt, f"reading {cid}")

    def get_file(self, cid: str, dest: Path) -> Path:
        """Stream ``cid`` to ``dest``; verified before ``dest`` appears (temp file + rename)."""
        cid = check_cid(cid)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)

        def attempt() -> Path:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            tmp = Path(tmp_name)
            try:
                hasher = CidHasher()
                with os.fdopen(fd, "wb") as out:
                    for chunk in self._cat(cid):
                        hasher.update(chunk)
                        out.write(chunk)
                self._check_read(cid, hasher.cid(), hasher.size)
                os.replace(tmp, dest)
                return dest
            finally:
                tmp.unlink(missing_ok=True)

        return self._attempt(attempt, f"reading {cid}")

    # --------------------------------------------------------------------------- checks
    def _check_added(self, reported: str, expected: Cid, what: str) -> Cid:
        if reported != expected:
            raise IntegrityError(
                f"{self.where} stored {what} under CID {reported}, but its content hashes to "
                f"{expected}: the node is misconfigured (needs cid-version=1, raw-leaves, "
                "256 KiB chunks) or not trustworthy"
            )
        return expected

    def _check_read(self, cid: Cid, actual: Cid, size: int) -> None:
        if actual != cid:
            raise IntegrityError(
                f"{self.where} returned {size} bytes for {cid} that hash to {actual}: "
                "the node served wrong data (or the content was not added with Veritrain's "
                "layout); nothing was kept"
            )


class MemoryStorage(Storage):
    """In-process storage with the same CIDs and checks, for unit tests of code above it."""

    where = "memory storage"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.pinned: set[str] = set()

    def _add(self, chunks: Iterable[bytes]) -> str:
        data = b"".join(chunks)
        cid = cid_of_bytes(data)
        self.blobs[cid] = data
        return cid

    def _cat(self, cid: Cid) -> Iterator[bytes]:
        try:
            yield self.blobs[cid]
        except KeyError:
            raise StorageError(f"{cid} is not in {self.where}") from None

    def pin(self, cid: str) -> None:
        check_cid(cid)
        if cid not in self.blobs:
            raise StorageError(f"cannot pin {cid}: it is not in {self.where}")
        self.pinned.add(cid)

    def unpin(self, cid: str) -> None:
        self.pinned.discard(check_cid(cid))

    def has(self, cid: str) -> bool:
        return check_cid(cid) in self.blobs

"""MemoryStorage: same CIDs and the same read verification as IpfsStorage."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritrain.errors import IntegrityError, StorageError
from veritrain.storage import MemoryStorage, cid_of_bytes


def test_roundtrip_and_has_and_pin(tmp_path: Path) -> None:
    s = MemoryStorage()
    (tmp_path / "f").write_bytes(b"x" * 300_000)
    cid = s.put_file(tmp_path / "f")
    assert cid == cid_of_bytes(b"x" * 300_000) and s.has(cid)
    assert s.get_file(cid, tmp_path / "g").read_bytes() == b"x" * 300_000
    s.pin(cid)
    assert cid in s.pinned
    assert not s.has(cid_of_bytes(b"other"))


def test_tampered_blob_is_refused_and_no_file_left(tmp_path: Path) -> None:
    s = MemoryStorage()
    cid = s.put_bytes(b"honest")
    s.blobs[cid] = b"liar!!"
    with pytest.raises(IntegrityError, match="served wrong data"):
        s.get_bytes(cid)
    with pytest.raises(IntegrityError):
        s.get_file(cid, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_and_malformed() -> None:
    s = MemoryStorage()
    with pytest.raises(StorageError, match="not in memory storage"):
        s.get_bytes(cid_of_bytes(b"nope"))
    with pytest.raises(IntegrityError, match="cannot verify"):
        s.get_bytes("not-a-cid")

"""The worker's manifest: canonical JSON, validation, root consistency."""

from __future__ import annotations

import hashlib
import json

import pytest

from veritrain import merkle
from veritrain.errors import ManifestError
from veritrain.manifest import Manifest, load
from veritrain.storage.cid import cid_of_bytes

WORKER = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


def make(n: int = 4) -> Manifest:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
    return Manifest.build(
        spec_cid=cid_of_bytes(b"spec"), job_id=1, task_id=2, worker=WORKER, k=10,
        hashes=hashes, checkpoint_cids=[cid_of_bytes(h) for h in hashes],
    )


def test_build_computes_root_and_checksums_worker() -> None:
    m = make()
    assert m.root_bytes() == merkle.root([m.hash_bytes(i) for i in range(4)])
    assert m.worker == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert merkle.verify(m.root, 2, m.hash_bytes(2), m.proof(2))


def test_canonical_json_roundtrip_is_byte_stable() -> None:
    m = make()
    blob = m.canonical_json()
    assert b" " not in blob and blob.startswith(b'{"checkpoint_cids"')
    again = load(blob)
    assert again == m and again.canonical_json() == blob


def test_manifest_is_frozen() -> None:
    with pytest.raises(Exception, match="frozen"):
        make().k = 3  # type: ignore[misc]


def test_wrong_root_is_refused() -> None:
    raw = json.loads(make().canonical_json())
    raw["hashes"][1] = "0x" + "ab" * 32
    with pytest.raises(ManifestError, match="not the Merkle root of the hashes"):
        load(json.dumps(raw))


def test_every_problem_listed_with_its_path() -> None:
    raw = json.loads(make().canonical_json())
    raw["k"] = 0
    raw["worker"] = "0x123"
    raw["checkpoint_cids"][0] = "Qm-not-v1"
    with pytest.raises(ManifestError) as info:
        load(json.dumps(raw), source="task-2.json")
    msg = str(info.value)
    assert "task-2.json" in msg and "k: " in msg and "worker: " in msg and "checkpoint_cids.0: " in msg


def test_length_mismatch_and_bad_json() -> None:
    raw = json.loads(make().canonical_json())
    raw["checkpoint_cids"] = raw["checkpoint_cids"][:2]
    with pytest.raises(ManifestError, match="one CID per checkpoint"):
        load(json.dumps(raw))
    with pytest.raises(ManifestError, match="not JSON"):
        load(b"{oops")

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veritrain.errors import SpecError
from veritrain.jobdoc import JobDocument, ShardRef, checkpoint_binding, worker_key_context
from veritrain.spec import load_spec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-mlp.yaml"


def refs(n: int) -> list[ShardRef]:
    return [ShardRef(index=i, cid=f"bafy{i}", sha256=f"{i:064x}", size=10 + i, examples=5)
            for i in range(n)]


def test_roundtrip_and_binding_depends_on_spec_and_nonce() -> None:
    spec = load_spec(EXAMPLE)
    doc = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16)
    again = JobDocument.from_bytes(doc.to_bytes())
    assert again == doc and again.shards_root() == doc.shards_root()
    other = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x02" * 16)
    assert other.binding != doc.binding
    assert checkpoint_binding(doc, 3, "0xAB") != checkpoint_binding(other, 3, "0xab")
    assert worker_key_context(1, "0xM", 1, "0xA") != worker_key_context(1, "0xM", 2, "0xA")


def test_shards_root_changes_with_any_shard_field() -> None:
    spec = load_spec(EXAMPLE)
    a = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16)
    changed = refs(spec.num_shards)
    changed[1] = changed[1].model_copy(update={"cid": "bafyother"})
    b = JobDocument.create(spec, changed, nonce=b"\x01" * 16)
    assert a.shards_root() != b.shards_root()


def test_missing_shard_and_bad_spec_are_listed() -> None:
    spec = load_spec(EXAMPLE)
    doc = JobDocument.create(spec, refs(spec.num_shards - 1), nonce=b"\x01" * 16)
    with pytest.raises(SpecError, match="do not cover"):
        JobDocument.from_bytes(doc.to_bytes())
    raw = json.loads(doc.to_bytes())
    raw["spec"]["optimizer"]["lr"] = -1
    with pytest.raises(SpecError, match="optimizer.lr"):
        JobDocument.from_bytes(json.dumps(raw).encode())
    with pytest.raises(SpecError, match="not JSON"):
        JobDocument.from_bytes(b"{nope")

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rfc8785

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


# ----------------------------------------------------------------------------- rounds
import hashlib  # noqa: E402

import numpy as np  # noqa: E402

from veritrain import crypto  # noqa: E402
from veritrain.errors import IntegrityError  # noqa: E402
from veritrain.jobdoc import (  # noqa: E402
    InitialModelRef,
    ModelCopyRef,
    decode_initial_model,
    encode_initial_model,
    initial_model_binding,
)
from veritrain.spec import TaskKey  # noqa: E402


def initial(n: int, digest: str = "ab" * 32) -> InitialModelRef:
    return InitialModelRef(digest=digest, previous_job=7, copies=tuple(
        ModelCopyRef(shard=i, cid=f"bafym{i}", sha256=f"{i + 100:064x}", size=99) for i in range(n)))


def test_a_round_0_document_is_rfc8785_json_and_its_shards_root_binds_round_and_shards() -> None:
    spec = load_spec(EXAMPLE)
    doc = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16)
    raw = json.loads(doc.canonical_json())
    assert set(raw) == {"version", "spec", "binding", "shards", "round", "initial_model", "preprocessing",
                        "label_classes"}
    assert raw["version"] == 2 and raw["round"] == 0 and raw["initial_model"] is None
    assert doc.to_bytes() == rfc8785.dumps(raw)
    # docs/spec section 3: sha256(JCS({"initial_model", "round", "shards"})), shards by index
    shard_dicts = [r.model_dump(mode="json") for r in doc.shards]
    bound = {"initial_model": None, "round": 0, "shards": shard_dicts}
    assert doc.shards_root() == hashlib.sha256(rfc8785.dumps(bound)).digest()
    again = JobDocument.from_bytes(doc.to_bytes())
    assert again.round == 0 and again.initial_model is None and again.to_bytes() == doc.to_bytes()


def test_a_version_1_document_is_refused_by_name_not_misread() -> None:
    """Version 1 hashed the spec as Python's JSON text ("1e-08"); its binding and every
    checkpoint's job digest mean something else under version 2, so it is refused."""
    spec = load_spec(EXAMPLE)
    raw = json.loads(JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16).to_bytes())
    raw["version"] = 1
    with pytest.raises(SpecError, match="job document version 1; this build reads version 2"):
        JobDocument.from_bytes(json.dumps(raw).encode())


def test_next_round_shares_binding_and_shards_and_binds_the_initial_model() -> None:
    spec = load_spec(EXAMPLE).model_copy(update={"rounds": 3})
    doc0 = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16)
    doc1 = doc0.next_round(initial(spec.num_shards))
    assert doc1.round == 1 and doc1.binding == doc0.binding and doc1.shards == doc0.shards
    assert json.loads(doc1.canonical_json())["round"] == 1
    assert JobDocument.from_bytes(doc1.to_bytes()) == doc1
    assert doc1.shards_root() != doc0.shards_root()
    other = doc0.next_round(initial(spec.num_shards, digest="cd" * 32))
    assert other.shards_root() != doc1.shards_root()
    assert doc1.task_key((5 << 32) | 1) == TaskKey(round=1, shard=1)
    with pytest.raises(SpecError, match="a round's job has"):
        doc1.task_key(spec.num_shards)


def test_round_and_initial_model_problems_are_listed_together() -> None:
    spec = load_spec(EXAMPLE).model_copy(update={"rounds": 2})
    doc0 = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16)
    raw = json.loads(doc0.to_bytes())
    raw["round"] = 1  # round 1 without an initial model
    with pytest.raises(SpecError, match="initial_model: round 1 must name"):
        JobDocument.from_bytes(json.dumps(raw).encode())
    raw["round"] = 0
    raw["initial_model"] = initial(spec.num_shards).model_dump(mode="json")
    with pytest.raises(SpecError, match="round 0 starts from the spec's seeded model"):
        JobDocument.from_bytes(json.dumps(raw).encode())
    raw["round"] = 2  # outside the spec's rounds, and a copy missing: both listed
    raw["initial_model"]["copies"] = raw["initial_model"]["copies"][:-1]
    with pytest.raises(SpecError) as err:
        JobDocument.from_bytes(json.dumps(raw).encode())
    text = str(err.value)
    assert "round: 2 is outside" in text and "initial_model.copies" in text
    raw["initial_model"]["digest"] = "nothex"
    with pytest.raises(SpecError, match="initial_model.digest"):
        JobDocument.from_bytes(json.dumps(raw).encode())


def test_initial_model_encoding_is_checked_against_the_document() -> None:
    spec = load_spec(EXAMPLE).model_copy(update={"rounds": 2})
    doc0 = JobDocument.create(spec, refs(spec.num_shards), nonce=b"\x01" * 16)
    tensors = {"model/w": np.arange(6, dtype=np.float32).reshape(2, 3), "model/b": np.ones(2, np.float32)}
    plain = encode_initial_model(spec, doc0.binding, 1, tensors)
    assert plain == encode_initial_model(spec, doc0.binding, 1, dict(reversed(tensors.items())))
    doc1 = doc0.next_round(initial(spec.num_shards, digest=hashlib.sha256(plain).hexdigest()))
    got = decode_initial_model(doc1, plain)
    assert set(got) == set(tensors) and all(np.array_equal(got[k], tensors[k]) for k in tensors)
    with pytest.raises(IntegrityError, match="not the previous round's aggregate"):
        other_model = {"model/w": tensors["model/b"]}
        decode_initial_model(doc1, encode_initial_model(spec, doc0.binding, 1, other_model))
    # right digest in the document but another round's meta: refused by the meta check
    wrong_round = encode_initial_model(spec, doc0.binding, 2, tensors)
    doc_wrong = doc0.next_round(initial(spec.num_shards, digest=hashlib.sha256(wrong_round).hexdigest()))
    with pytest.raises(IntegrityError, match="mismatch: round"):
        decode_initial_model(doc_wrong, wrong_round)
    # a copy encrypted under one shard's key, bound to the round, opens only as that
    key = crypto.generate_data_key()
    k0 = crypto.shard_key(key, doc1.binding, 0)
    ct = crypto.encrypt_bytes(plain, k0, job_id=initial_model_binding(doc1.binding, 1), shard_index=0)
    assert crypto.decrypt_bytes(ct, k0, job_id=initial_model_binding(doc1.binding, 1), shard_index=0) == plain
    with pytest.raises(IntegrityError):
        crypto.decrypt_bytes(ct, k0, job_id=initial_model_binding(doc1.binding, 2), shard_index=0)
    with pytest.raises(IntegrityError):
        crypto.decrypt_bytes(ct, crypto.shard_key(key, doc1.binding, 1),
                             job_id=initial_model_binding(doc1.binding, 1), shard_index=0)

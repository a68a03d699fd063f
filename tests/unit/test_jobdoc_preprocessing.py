"""Spec and job document version 2: a declared preprocessing step and text labels, versioned
and validated, with version-1 specs and documents keeping their bytes (issue 24)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from veritrain import data
from veritrain.errors import SpecError
from veritrain.jobdoc import SCHEMA_PATH, JobDocument, ShardRef, open_shard, schema_json
from veritrain.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits-mlp.yaml"
CANCER = ROOT / "examples" / "breast-cancer.yaml"


def refs(n: int) -> list[ShardRef]:
    return [ShardRef(index=i, cid=f"bafy{i}", sha256=f"{i:064x}", size=10 + i, examples=5) for i in range(n)]


def _raw(path: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(path.read_text())


def test_a_version_1_spec_keeps_its_canonical_bytes() -> None:
    spec = load_spec(DIGITS)
    canon = json.loads(spec.canonical_json())
    assert "label" not in canon["data"] and "preprocessing" not in canon["data"]
    explicit = _raw(DIGITS)
    explicit["data"]["preprocessing"] = "none"  # the default, written out by a v2 author
    explicit["schema_version"] = 2
    assert json.loads(load_spec(explicit).canonical_json())["data"] == canon["data"]


def test_version_2_fields_need_schema_version_2_and_fitting_data() -> None:
    raw = _raw(CANCER)
    assert load_spec(raw).data.preprocessing == "standardize"
    raw["schema_version"] = 1
    with pytest.raises(SpecError, match=r"data.label, data.preprocessing need schema_version: 2"):
        load_spec(raw)
    raw = _raw(CANCER)
    raw["data"]["preprocessing"] = "whiten"
    with pytest.raises(SpecError, match="data.preprocessing"):
        load_spec(raw)


def test_the_document_must_publish_the_declared_transform_with_one_value_per_feature() -> None:
    spec = load_spec(CANCER)
    with pytest.raises(SpecError, match="declares standardize; the document must publish its statistics"):
        JobDocument.from_bytes(JobDocument.create(spec, refs(2), b"\x01" * 16).to_bytes())
    t = data.Transform("standardize", (1.0,) * 30, (2.0,) * 30)
    doc = JobDocument.create(spec, refs(2), b"\x01" * 16, transform=t, classes=("benign", "malignant"))
    again = JobDocument.from_bytes(doc.to_bytes())
    assert again == doc and again.version == 2 and again.transform() == t
    raw = json.loads(doc.to_bytes())
    for bad, match in ((dict(offset=[1.0] * 29), "need 30 values"),
                       (dict(scale=[0.0] * 30), "scales finite and > 0"),
                       (dict(kind="minmax"), "minmax, but the spec declares standardize")):
        broken = {**raw, "preprocessing": {**raw["preprocessing"], **bad}}
        with pytest.raises(SpecError, match=match):
            JobDocument.from_bytes(json.dumps(broken).encode())
    with pytest.raises(SpecError, match="job document version 1; this build reads version 2 only"):
        JobDocument.from_bytes(json.dumps({**raw, "version": 1}).encode())
    with pytest.raises(SpecError, match="label_classes: 3 labels, but data.num_classes is 2"):
        JobDocument.from_bytes(json.dumps({**raw, "label_classes": ["a", "b", "c"]}).encode())


def test_a_document_without_preprocessing_or_text_labels_says_null_for_both() -> None:
    spec = load_spec(DIGITS)
    doc = JobDocument.create(spec, refs(spec.num_shards), b"\x01" * 16)
    raw = json.loads(doc.to_bytes())
    assert raw["version"] == 2 and raw["preprocessing"] is None and raw["label_classes"] is None
    assert doc.transform() is None


def test_open_shard_applies_the_published_transform() -> None:
    spec = load_spec(CANCER)
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(40, 30)) * 50 + 300).astype(np.float32)
    y = rng.integers(0, 2, 40)
    t = data.fit_transform("standardize", x)
    assert t is not None
    doc = JobDocument.create(spec, refs(2), b"\x01" * 16, transform=t)
    plain = data.encode_shard(data.Dataset(x, y))
    got = open_shard(doc, plain, "shard 0")
    assert got.features.tobytes() == t.apply(x).tobytes()  # what workers and verifiers train on
    np.testing.assert_array_equal(got.labels, y)
    no_transform = JobDocument.create(load_spec(DIGITS), refs(2), b"\x01" * 16)
    z = rng.random((5, 64)).astype(np.float32)
    opened = open_shard(no_transform, data.encode_shard(data.Dataset(z, y[:5])), "s")
    assert opened.features.tobytes() == z.tobytes()


def test_the_job_document_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text() == schema_json(), "run `python -m veritrain.jobdoc`"

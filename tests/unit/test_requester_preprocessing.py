"""The requester's side of declared preprocessing (issue 24): the transform is fitted on the
training split only and published; raw features without it draw a warning; results report
baselines beside their accuracy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from requester.data import load_dataset, scale_warning, split_holdout
from requester.fetch import baseline_metrics
from requester.prepare import prepare_job
from veritrain import crypto
from veritrain.data import Dataset, decode_shard
from veritrain.jobdoc import JobDocument
from veritrain.spec import load_spec
from veritrain.storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from breast_cancer_csv import write

    return write(tmp_path_factory.mktemp("analyst") / "cancer.csv")


def test_the_transform_is_fitted_on_the_training_split_and_published(cancer_csv: Path) -> None:
    spec = load_spec(ROOT / "examples" / "breast-cancer.yaml")
    data = load_dataset(cancer_csv, spec)
    assert data.classes == ("benign", "malignant") and len(data) == 569
    storage = MemoryStorage()
    prepared = prepare_job(spec, data, storage, holdout=0.2)
    doc = JobDocument.from_bytes(storage.get_bytes(prepared.doc_cid))
    assert doc.label_classes == ("benign", "malignant") and doc.preprocessing is not None
    train, held = split_holdout(spec, data, 0.2)
    assert held is not None
    x = train.features.astype(np.float64)
    np.testing.assert_allclose(doc.preprocessing.offset, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(doc.preprocessing.scale, x.std(axis=0), rtol=1e-6)
    whole = data.features.astype(np.float64).mean(axis=0)
    assert not np.allclose(doc.preprocessing.offset, whole, rtol=1e-6)  # the held-out set did not leak in
    # shards stay raw: the published transform is applied by whoever opens them
    ref = doc.shards[0]
    key = crypto.shard_key(prepared.data_key, doc.binding, 0)
    plain = crypto.decrypt_bytes(storage.get_bytes(ref.cid), key, job_id=doc.binding, shard_index=0)
    assert decode_shard(plain).features.max() > 100


def test_unscaled_features_draw_a_warning_unless_the_job_preprocesses(cancer_csv: Path) -> None:
    raw = yaml.safe_load((ROOT / "examples" / "breast-cancer.yaml").read_text())
    standardized = load_spec(raw)
    del raw["data"]["preprocessing"]
    plain = load_spec(raw)
    data = load_dataset(cancer_csv, plain)
    warning = scale_warning(plain, data)
    assert warning is not None and "features look unscaled" in warning
    assert "set `data.preprocessing: standardize`" in warning and "the widest from 185.2 to 4254" in warning
    assert scale_warning(standardized, data) is None
    z = (data.features - data.features.mean(0)) / data.features.std(0)
    scaled = Dataset(z, data.labels, "scaled.csv")
    assert scale_warning(plain, scaled) is None


def test_baselines_are_the_majority_class_and_the_untrained_model() -> None:
    spec = load_spec(ROOT / "examples" / "breast-cancer.yaml")
    rng = np.random.default_rng(3)
    labels = np.array([1] * 70 + [0] * 30)
    held = Dataset(rng.normal(size=(100, 30)).astype(np.float32), labels, "held")
    b = baseline_metrics(spec, held)
    assert b["baseline_majority_accuracy"] == pytest.approx(0.7)
    assert 0.0 <= b["baseline_untrained_accuracy"] <= 1.0
    # the untrained model is the spec's seeded start: the same numbers every time
    assert baseline_metrics(spec, held)["baseline_untrained_accuracy"] == b["baseline_untrained_accuracy"]

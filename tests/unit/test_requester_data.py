"""Input validation before anything is posted: the dataset must fit the job's model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from requester.data import load_dataset, split_holdout, split_shards
from requester.errors import UnsupportedError
from requester.sdk import check_supported, job_costs
from veritrain.data import decode_shard, encode_shard
from veritrain.errors import ConfigError, DataError
from veritrain.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec():  # type: ignore[no-untyped-def]
    return load_spec(ROOT / "examples" / "digits-mlp.yaml")


def data(n: int = 50, d: int = 64, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, d)).astype(np.float32), rng.integers(0, classes, n)


def test_a_fitting_dataset_loads_from_memory_and_files(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    x, y = data()
    assert len(load_dataset((x, y), spec)) == 50
    np.savez(tmp_path / "d.npz", x=x, y=y)
    loaded = load_dataset(tmp_path / "d.npz", spec)
    np.testing.assert_array_equal(loaded.features, x)
    np.testing.assert_array_equal(loaded.labels, y)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda x, y: (x[:, :63], y), r"shape \(63,\) per row, the model expects \(64,\)"),
    (lambda x, y: (x, np.where(y == 3, 10, y)), r"labels outside \[0, 10\): example [0-9]+ has 10"),
    (lambda x, y: (np.where(np.arange(64) == 5, np.nan, x), y), "NaN"),
    (lambda x, y: (x, y[:-1]), "labels of shape"),
    (lambda x, y: (x[:1], y[:1]), "fewer than the job's 2 shards"),
])
def test_a_dataset_that_does_not_fit_is_refused_with_a_reason(spec, mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message):
        load_dataset(mutate(*data()), spec)


def test_a_missing_file_or_object_is_refused(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.npz", spec)
    with pytest.raises(DataError, match="cannot use a int"):
        load_dataset(3, spec)


def test_holdout_and_shards_are_deterministic_disjoint_and_cover_the_data(spec) -> None:  # type: ignore[no-untyped-def]
    ds = load_dataset(data(101), spec)
    train, held = split_holdout(spec, ds, 0.2)
    assert held is not None and (len(train), len(held)) == (81, 20)
    again, held2 = split_holdout(spec, ds, 0.2)
    np.testing.assert_array_equal(held.features, held2.features)
    shards = split_shards(spec, train)
    assert [len(s) for s in shards] == [41, 40]
    rows = {r.tobytes() for s in shards for r in s.features} | {r.tobytes() for r in held.features}
    assert len(rows) == 101  # every example in exactly one place
    back = decode_shard(encode_shard(shards[0]))
    np.testing.assert_array_equal(back.features, shards[0].features)
    with pytest.raises(DataError, match="lower the holdout"):
        split_holdout(spec, load_dataset(data(3), spec), 0.5)


def test_costs_and_unsupported_specs(spec) -> None:  # type: ignore[no-untyped-def]
    c = job_costs(spec, 10, 5, None, 7)
    assert (c.escrow, c.griefing_fee) == (2 * 10 + 7, 1)
    with pytest.raises(ConfigError, match="reward_per_task must be a positive"):
        job_costs(spec, 0, 5, None, 0)
    with pytest.raises(ConfigError, match="griefing_fee"):
        job_costs(spec, 10, 5, 11, 0)
    check_supported(spec.model_copy(update={"rounds": 3}))  # one job per round
    three = job_costs(spec.model_copy(update={"rounds": 3}), 10, 5, None, 7)
    assert (three.escrow, three.total) == (2 * 10 + 7, 3 * (2 * 10 + 7))
    with pytest.raises(UnsupportedError, match="ScoredRounds through requester.scored.post_scored_job"):
        check_supported(spec.model_copy(update={"incentive": "scored"}))

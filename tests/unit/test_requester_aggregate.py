"""FedAvg maths: weighted by shard size, exact on known values, strict about shapes."""

from __future__ import annotations

import numpy as np
import pytest

from requester.aggregate import aggregate_state, fedavg
from veritrain.checkpoint import CheckpointState
from veritrain.errors import CheckpointFormatError


def state(w: float, b: float, steps: int = 3, extra: dict | None = None) -> CheckpointState:
    tensors = {"model/0.weight": np.full((2, 3), w, np.float32),
               "model/0.bias": np.array([b, -b], np.float32),
               "model/bn.num_batches_tracked": np.array(steps, np.int64),
               "optim/0000/momentum_buffer": np.ones((2, 3), np.float32), "rng/torch": np.zeros(4, np.uint8)}
    tensors.update(extra or {})
    return CheckpointState(meta={}, tensors=tensors)


def test_weighted_by_examples_not_by_task_count() -> None:
    out = fedavg([state(1.0, 2.0), state(4.0, 8.0)], [100, 200])
    np.testing.assert_allclose(out["model/0.weight"], np.full((2, 3), 3.0))  # (1*100 + 4*200) / 300
    np.testing.assert_allclose(out["model/0.bias"], [6.0, -6.0])
    assert out["model/0.weight"].dtype == np.float32


def test_only_model_tensors_and_integers_round() -> None:
    out = fedavg([state(0, 0, steps=3), state(0, 0, steps=6)], [1, 2])
    assert set(out) == {"model/0.weight", "model/0.bias", "model/bn.num_batches_tracked"}
    counter = out["model/bn.num_batches_tracked"]
    assert counter.dtype == np.int64 and int(counter) == 5  # (3*1 + 6*2) / 3


def test_one_task_is_itself_and_equal_weights_are_the_mean() -> None:
    only = state(0.25, 0.5)
    np.testing.assert_array_equal(fedavg([only], [7])["model/0.weight"], only.tensors["model/0.weight"])
    out = fedavg([state(1, 0), state(2, 0), state(6, 0)], [5, 5, 5])
    np.testing.assert_allclose(out["model/0.weight"], np.full((2, 3), 3.0))


def test_mismatched_models_and_bad_weights_are_refused() -> None:
    with pytest.raises(CheckpointFormatError, match="different model tensors"):
        fedavg([state(1, 1), state(1, 1, extra={"model/x": np.zeros(1, np.float32)})], [1, 1])
    wide = state(1, 1)
    wide.tensors["model/0.weight"] = np.zeros((2, 4), np.float32)
    with pytest.raises(CheckpointFormatError, match=r"\(2, 4\)"):
        fedavg([state(1, 1), wide], [1, 1])
    with pytest.raises(ValueError, match="positive sum"):
        fedavg([state(1, 1)], [0])
    with pytest.raises(ValueError, match="2 models but 1 weights"):
        fedavg([state(1, 1), state(1, 1)], [1])
    with pytest.raises(ValueError, match="nothing to aggregate"):
        fedavg([], [])


def test_aggregate_state_carries_meta() -> None:
    agg = aggregate_state([state(1, 1)], [1], meta={"aggregate": "fedavg"})
    assert agg.meta == {"aggregate": "fedavg"} and "rng/torch" not in agg.tensors

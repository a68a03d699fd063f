from __future__ import annotations

from pathlib import Path

import pytest

from veritrain.errors import SpecError
from veritrain.spec import TaskKey, load_spec
from veritrain.tasks import split_task_id, task_id_of, task_key

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-mlp.yaml"


def test_task_ids_round_trip_and_match_the_contract_layout() -> None:
    assert task_id_of(3, 5) == (3 << 32) + 5
    assert split_task_id(task_id_of(7, 2**32 - 1)) == (7, 2**32 - 1)
    with pytest.raises(ValueError, match="out of range"):
        task_id_of(1, 2**32)


def test_task_key_maps_index_to_round_and_shard() -> None:
    spec = load_spec({**load_spec(EXAMPLE).model_dump(mode="json"), "rounds": 2, "num_shards": 3})
    assert task_key(spec, task_id_of(9, 4)) == TaskKey(round=1, shard=1)
    assert task_key(spec, 2) == TaskKey(round=0, shard=2)
    with pytest.raises(SpecError, match="outside"):
        task_key(spec, task_id_of(9, 6))

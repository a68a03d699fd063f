from __future__ import annotations

from pathlib import Path

import pytest

from veritrain.tasks import split_task_id, task_id_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-mlp.yaml"


def test_task_ids_round_trip_and_match_the_contract_layout() -> None:
    assert task_id_of(3, 5) == (3 << 32) + 5
    assert split_task_id(task_id_of(7, 2**32 - 1)) == (7, 2**32 - 1)
    with pytest.raises(ValueError, match="out of range"):
        task_id_of(1, 2**32)

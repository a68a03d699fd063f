"""The zoo's byte-level GPT and the sequence shards (format version 2) it trains from."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from veritrain.data import decode_shard, encode_shard, validate
from veritrain.errors import DataError, SpecError
from veritrain.spec import TaskKey, load_spec
from veritrain.training import engine, registry, state
from veritrain.training.model_entry import DataShape
from veritrain.training.profile import current_profile
from veritrain.training.sinks import MemorySink

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "examples"))
import stdlib_corpus  # noqa: E402


def gpt_spec(**args: Any):  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((ROOT / "examples" / "gpt-stdlib.yaml").read_text())
    raw["model"]["args"] = {"d_model": 32, "n_heads": 2, "n_layers": 2, **args}
    raw["data"]["input_shape"] = [16]
    raw.update(steps_per_task=20, checkpoint_interval=10, batch_size=8, num_shards=1)
    raw["replay"] = current_profile(threads=1).model_dump(mode="json")
    return load_spec(raw)


def test_the_default_gpt_has_a_few_million_parameters_and_a_tied_head() -> None:
    entry = registry.get("gpt")
    model = entry.builder(entry.parse_args({}), DataShape((256,), 256, "int64", "sequence"))
    assert 3_000_000 < sum(p.numel() for p in model.parameters()) < 4_000_000
    assert model.head.weight is model.tok.weight
    assert float(model.tok.weight.detach().std()) == pytest.approx(0.02, rel=0.05)


def test_the_gpt_reads_bytes_only() -> None:
    raw = yaml.safe_load((ROOT / "examples" / "gpt-stdlib.yaml").read_text())
    assert load_spec(raw).model.name == "gpt"
    raw["data"]["num_classes"] = 100
    with pytest.raises(SpecError, match="data.num_classes: the gpt reads bytes"):
        load_spec(raw)


def test_the_gpt_trains_replays_bitwise_and_learns_the_stdlib() -> None:
    spec, task = gpt_spec(), TaskKey(round=0, shard=0)
    train, held = stdlib_corpus.corpus(max_bytes=40_000)
    x, y = stdlib_corpus.windows(train, 16)
    hx, hy = stdlib_corpus.windows(held, 16)
    sink = MemorySink()
    hashes = engine.train_task(spec, task, x.astype(np.float32), y, sink)
    assert engine.replay_segment(spec, task, 1, sink.data(1), x, y) == hashes[2]
    before = engine.evaluate(spec, state.capture(spec, task, state.initial(spec, task)), hx, hy)
    after = engine.evaluate(spec, sink.data(2), hx, hy)
    assert before.perplexity is not None and after.perplexity is not None
    assert before.perplexity > 200 and after.perplexity < 0.6 * before.perplexity


def test_sequence_shards_round_trip_as_format_version_2_and_refuse_mixups() -> None:
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    data = validate(x, x + 1, "toks", num_classes=256, feature_shape=(4,), sequence=True)
    blob = encode_shard(data)
    assert blob[7] == 2
    back = decode_shard(blob, "s", num_classes=256, feature_shape=(4,), sequence=True)
    assert np.array_equal(back.features, x.astype(np.float32)) and np.array_equal(back.labels, x + 1)
    with pytest.raises(DataError, match="format version 2; this job's data wants one label per example"):
        decode_shard(blob, "s", num_classes=256, feature_shape=(4,), sequence=False)
    classes = validate(np.zeros((3, 4)), np.zeros(3), "cls", num_classes=2)
    assert encode_shard(classes)[7] == 1  # class shards keep their version-1 bytes
    with pytest.raises(DataError, match="labels have shape"):
        validate(x, x[:, 0], "toks", num_classes=256, sequence=True)
    with pytest.raises(DataError, match=r"features must be integer tokens in \[0, 256\): example 1"):
        validate(np.where(x == 5, 300, x), x, "toks", num_classes=256, sequence=True)

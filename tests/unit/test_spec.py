"""JobSpec: loading, every problem with its path in one error, canonical bytes, schema."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from veritrain.errors import SpecError
from veritrain.spec import SCHEMA_PATH, JobSpec, TaskKey, load_spec, schema_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits-mlp.yaml"


def raw() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def problems(d: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(d)
    return info.value.problems


def test_example_loads_from_yaml_file_and_json_text() -> None:
    spec = JobSpec.from_file(EXAMPLE)
    assert spec.model.name == "mlp" and spec.data.input_shape == (64,) and spec.data.num_classes == 10
    again = load_spec(json.dumps(raw()))
    assert again == spec and again.digest() == spec.digest()
    assert spec.num_checkpoints == spec.steps_per_task // spec.checkpoint_interval + 1


def test_every_problem_is_listed_with_its_path() -> None:
    d = raw()
    d["optimizer"]["lr"] = 0
    d["rounds"] = 0
    d["checkpoint_interval"] = 30  # does not divide 200
    d["model"]["name"] = "resnet9000"
    del d["seed"]
    found = problems(d)
    assert "optimizer.lr: must be > 0" in found
    assert "rounds: must be >= 1" in found
    assert "seed: required" in found
    assert "checkpoint_interval: must divide steps_per_task (30 does not divide 200)" in found
    assert any(p.startswith("model.name: unknown model 'resnet9000'") and "mlp" in p for p in found)
    assert len(found) == 5


def test_model_args_checked_by_the_zoo_including_against_the_data() -> None:
    d = raw()
    d["model"] = {"name": "mlp", "args": {"hidden": [8], "widht": 3}}
    assert problems(d) == ["model.args.widht: unknown field"]
    d["model"] = {"name": "cnn", "args": {}}
    assert problems(d) == ["data.input_shape: the cnn needs a rank-3 example shape"]
    d["model"] = {"name": "char_lm", "args": {"d_model": 30, "n_heads": 4}}
    d["data"].update(input_dtype="int64", targets="sequence", input_shape=[32])
    assert problems(d) == ["model.args.n_heads: must divide d_model"]


def test_model_validators_name_their_field() -> None:
    d = raw()
    d["replay"]["tolerance"] = {"mode": "tolerance"}
    d["optimizer"] = {"name": "adam", "lr": 1e-3, "betas": [0.9, 1.5]}
    d["verification"] = {"verifiers": ["0x1234"]}
    found = problems(d)
    assert "replay.tolerance.bound: required in tolerance mode" in found
    assert "optimizer.betas: each must be in [0, 1)" in found
    assert any(p.startswith("verification.verifiers: not 0x-prefixed") for p in found)


def test_bad_file_gives_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(SpecError, match=r"in .*job.yaml: \(file\): not valid YAML"):
        JobSpec.from_file(bad)
    with pytest.raises(SpecError, match="cannot read"):
        JobSpec.from_file(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec("[1, 2]")


def test_canonical_json_is_sorted_compact_and_digest_tracks_content() -> None:
    spec = JobSpec.from_file(EXAMPLE)
    text = spec.canonical_json()
    assert " " not in text and "\n" not in text
    # RFC 8785: sorted keys, and numbers as ECMAScript prints doubles (not Python's float text)
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert '"eps":1e-8,' in text and '"weight_decay":0}' in text and "1e-08" not in text
    assert spec.digest() == hashlib.sha256(text.encode()).digest()
    assert load_spec({**raw(), "optimizer": {**raw()["optimizer"], "lr": 5e-2}}).digest() == spec.digest()
    shuffled = dict(reversed(list(raw().items())))
    assert load_spec(shuffled).canonical_json() == text
    d = copy.deepcopy(raw())
    d["seed"] += 1
    assert load_spec(d).digest() != spec.digest() and len(spec.digest()) == 32


def test_spec_is_frozen_and_tasks_enumerate_rounds_by_shards() -> None:
    spec = JobSpec.from_file(EXAMPLE)
    with pytest.raises(ValueError):
        spec.seed = 3  # type: ignore[misc]
    assert list(spec.tasks()) == [TaskKey(round=0, shard=0), TaskKey(round=0, shard=1)]
    with pytest.raises(SpecError, match="task 0:2"):
        spec.check_task(TaskKey(round=0, shard=2))


def test_exported_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text() == schema_json(), "run: veritrain spec schema"


def test_spec_validation_does_not_import_torch() -> None:
    code = (
        "import sys; from veritrain.spec import JobSpec; "
        f"JobSpec.from_file({str(EXAMPLE)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_seed_or_float_without_a_canonical_json_form_is_refused() -> None:
    """RFC 8785 has no text for integers beyond 2**53 - 1 or for NaN/infinity: such a spec
    would have no digest, so it is refused at load time with the field named."""
    with pytest.raises(SpecError, match="seed"):
        load_spec({**raw(), "seed": 2**53})
    with pytest.raises(SpecError, match="optimizer.lr"):
        load_spec({**raw(), "optimizer": {**raw()["optimizer"], "lr": float("inf")}})
    assert load_spec({**raw(), "seed": 2**53 - 1}).seed == 2**53 - 1


def test_an_evaluation_set_cid_is_refused_not_ignored() -> None:
    """Nothing fetches an evaluation set by CID: a requester who names one would otherwise get
    results evaluated on something else without a word."""
    d = raw()
    d["evaluation"] = {"set_cid": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy5", "batch_size": 64}
    found = problems(d)
    assert len(found) == 1 and found[0].startswith("evaluation: set_cid is not supported"), found
    d["evaluation"]["set_cid"] = None
    assert load_spec(d).evaluation.batch_size == 64

"""replay.mode: portable end to end in one process: the spec, the profile it pins, the engine
training and replaying with portable operators, and a replay at another thread count."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from adversary.cheats import SkipStep, dishonest_train
from verifier.replay import engine_replay
from veritrain.errors import ReplayProfileError, SpecError
from veritrain.spec import ReplayProfile, TaskKey, load_spec
from veritrain.training import engine, profile, state
from veritrain.training.portable.modules import PortableLinear
from veritrain.training.portable.optim import PortableAdam
from veritrain.training.portable.workloads import workload
from veritrain.training.sinks import MemorySink

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits-mlp.yaml"
TASK = TaskKey(round=0, shard=0)


def _raw(**replay: object) -> dict:  # type: ignore[type-arg]
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["replay"].update(replay)
    return raw  # type: ignore[no-any-return]


def test_spec_accepts_portable_for_portable_models_only_and_never_with_tolerance() -> None:
    spec = load_spec(_raw(mode="portable"))
    assert spec.replay.mode == "portable" and load_spec(_raw()).replay.mode == "standard"
    assert spec.digest() != load_spec(_raw()).digest()  # the mode is part of what workers commit to
    raw = _raw(mode="portable")
    raw["model"] = {"name": "cnn", "args": {}}
    raw["data"]["input_shape"] = [1, 8, 8]
    with pytest.raises(SpecError) as info:
        load_spec(raw)
    wanted = "replay.mode: model 'cnn' has no portable form (portable models: char_lm, mlp)"
    assert wanted in info.value.problems
    with pytest.raises(SpecError, match="replay.mode: portable replays bitwise"):
        load_spec(_raw(mode="portable", tolerance={"mode": "tolerance", "bound": 0.1}))


def test_portable_profile_pins_only_the_torch_major_version() -> None:
    here = profile.current_profile(threads=1)
    other_machine = here.model_copy(update={
        "mode": "portable", "threads": 64, "mkl_cbwr": "SSE4_2,STRICT",
        "cpu_isa": "default" if here.cpu_isa != "default" else "avx2",
        "torch_version": here.torch_version.split(".")[0] + ".0.0"})
    assert profile.differences(other_machine, threads_settable=False) == []
    profile.enter(other_machine)
    assert profile.differences(here.model_copy(update={"cpu_isa": other_machine.cpu_isa})) != []
    with pytest.raises(ReplayProfileError, match="portable job wants torch 1.x"):
        profile.enter(other_machine.model_copy(update={"torch_version": "1.13.0"}))
    env = profile.profile_env(other_machine, base={"OMP_NUM_THREADS": "3", "ATEN_CPU_CAPABILITY": "avx512"})
    assert env["OMP_NUM_THREADS"] == "3" and env["ATEN_CPU_CAPABILITY"] == "avx512"  # the machine's own
    assert "MKL_CBWR" not in env


def test_a_portable_job_builds_portable_modules_and_optimizer() -> None:
    spec, *_ = workload("mlp", "portable")
    live = state.initial(spec, TASK)
    assert live.train_step.loss.__name__ == "portable_cross_entropy"  # the step trains on it
    assert isinstance(live.optimizer, PortableAdam)
    assert [type(m) for m in live.model if isinstance(m, torch.nn.Linear)] == [PortableLinear] * 3
    standard, *_ = workload("mlp", "standard")
    assert state.initial(standard, TASK).train_step.loss.__name__ == "cross_entropy"


def test_each_task_draws_its_own_dropout_masks_from_one_initial_model() -> None:
    spec, *_ = workload("mlp", "portable")
    spec = spec.model_copy(update={"num_shards": 2})
    keys = {}
    for shard in (0, 1):
        live = state.initial(spec, TaskKey(round=0, shard=shard))
        keys[shard] = [int(b) for n, b in live.model.named_buffers() if n.endswith("rng_key")]
        weights = [p.detach().clone() for p in live.model.parameters()]
    assert len(keys[0]) == 2 and keys[0] != keys[1]  # masks differ between shards ...
    again = state.initial(spec, TaskKey(round=0, shard=0))
    same = zip(again.model.parameters(), weights, strict=True)
    assert all(torch.equal(a, b) for a, b in same)  # ... the weights do not


@pytest.mark.parametrize("name", ["mlp", "char_lm"])
def test_portable_replay_at_another_thread_count_is_bitwise_and_catches_a_cheat(name: str) -> None:
    spec, x, y, _, _ = workload(name, "portable", steps=4, k=2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        sink = MemorySink()
        chain = engine.train_task(spec, TASK, x, y, sink)
        cheat = MemorySink()
        false_chain = dishonest_train(spec, TASK, x, y, SkipStep(segment=1), cheat)
        torch.set_num_threads(2)  # the verifier's machine: more threads, same torch
        replays = [engine_replay(spec, TASK, j, sink.data(j), x, y)[1] for j in range(2)]
        against_cheat = engine_replay(spec, TASK, 1, cheat.data(1), x, y)[1]
    finally:
        torch.set_num_threads(before)
    assert replays == chain[1:]
    assert false_chain[:2] == chain[:2] and false_chain[2] != chain[2]
    assert against_cheat == chain[2] != false_chain[2]


def test_evaluate_reads_a_portable_checkpoint() -> None:
    spec, x, y, hx, hy = workload("mlp", "portable", steps=20, k=10)
    sink = MemorySink()
    engine.train_task(spec, TASK, x, y, sink)
    first, last = engine.evaluate(spec, sink.data(0), hx, hy), engine.evaluate(spec, sink.data(2), hx, hy)
    assert last.loss < first.loss and last.examples == len(hx)


def test_replay_profile_field_is_documented_in_the_schema() -> None:
    schema = ReplayProfile.model_json_schema()
    assert schema["properties"]["mode"]["enum"] == ["standard", "portable"]

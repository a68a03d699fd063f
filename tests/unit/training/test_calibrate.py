"""Cross-device verification with CPU stand-ins: a tolerance-mode CUDA job is trained by a
"worker" (this process) and verified by a "CPU verifier" in another process with another
thread count and ATen kernel level (set before torch loads). `veritrain job calibrate` measures
the honest divergence and proposes the bound; honest segments pass under it and the planted
cheats (skipped step, perturbed weight, other data) are still rejected.

`cuda.default_dtype: float64`: a CUDA job may train in float64, so that a verifier on another
device replays it about a billion times closer than a float32 job and its bound can see a single
changed weight (measured on an H200 against its CPU: docs/gpu.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from adversary import cheats
from requester.cli import app
from veritrain.checkpoint import decode
from veritrain.errors import SpecError
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.training import calibrate, engine, profile
from veritrain.training.judges import judge_for
from veritrain.training.profile import torch_version
from veritrain.training.sinks import MemorySink
from veritrain.training.tolerance import distance

ROOT = Path(__file__).resolve().parents[3]
H200 = {"gpu_name": "NVIDIA H200", "compute_capability": "9.0", "cuda_version": "13.0",
        "cudnn_version": 91000}
VERIFIER = calibrate.Setting(threads=2, cpu_isa="default")  # the CPU verifier stand-in
WORKER = calibrate.Setting(threads=1)  # the worker stand-in: `job calibrate`'s default reference


def cuda_tolerance_spec(bound: float, seed: int = 7) -> JobSpec:
    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(schema_version=2, seed=seed, steps_per_task=30, checkpoint_interval=10, batch_size=32,
               num_shards=1, model={"name": "mlp", "args": {"hidden": [64, 64]}},
               optimizer={"name": "adam", "lr": 0.002})
    raw["replay"] = {"torch_version": torch_version(), "device": "cuda", "cuda": H200, "threads": 1,
                     "mkl_cbwr": None, "tolerance": {"mode": "tolerance", "bound": bound}}
    return load_spec(raw)


def test_calibrate_then_a_cpu_verifier_accepts_honest_gpu_work_and_rejects_each_cheat(  # type: ignore[no-untyped-def]
        tmp_path: Path, digits) -> None:
    x, y = digits
    (tmp_path / "spec.json").write_text(json.dumps(cuda_tolerance_spec(1.0).model_dump(mode="json")))
    np.savez(tmp_path / "digits.npz", features=x, labels=y)
    out = CliRunner().invoke(app, ["calibrate", str(tmp_path / "spec.json"), "--data",
                                   str(tmp_path / "digits.npz"), "--segments", "3", "--json"])
    assert out.exit_code == 0, out.output
    cal = json.loads(out.output)
    assert set(cal["distances"]) == {"cpu, 2 threads, isa best", "cpu, 1 thread, isa default"}
    assert all(len(ds) == 3 for ds in cal["distances"].values())
    assert cal["bound"] == pytest.approx(max(10 * cal["largest"], 1e-6), rel=1e-2)

    # a held-out job (other seed) posted with the calibrated bound, trained by a worker in the
    # calibration's reference setting: in a fresh process, as a worker is, and not in this one,
    # whose thread pool earlier tests (and their leftover threads) may have set to anything
    spec, task = cuda_tolerance_spec(cal["bound"], seed=11), TaskKey(round=0, shard=0)
    honest = MemorySink()
    trained = calibrate.run_child(spec, task, x[:900], y[:900], WORKER, "train")
    for j, data in enumerate(trained):
        honest.put(j, data, b"")
    chains: dict[str, MemorySink] = {"honest": honest}
    for name, cheat in {"skip_step": cheats.SkipStep(1, offset=3),
                        "perturb_weight": cheats.PerturbWeight(1, delta=1e-3),
                        "other_data": cheats.OtherData(1, x[900:], y[900:])}.items():
        chains[name] = MemorySink()
        cheats.dishonest_train(spec, task, x[:900], y[:900], cheat, chains[name])
    starts = [(j, chains["honest"].data(j)) for j in range(3)] + [
        (1, chains[n].data(1)) for n in ("skip_step", "perturb_weight", "other_data")]
    replayed = calibrate.run_child(spec, task, x[:900], y[:900], VERIFIER, "replay", starts)
    judge = judge_for(spec)
    verdicts = [judge.judge(start, chains["honest"].data(j + 1), replayed[n])
                for n, (j, start) in enumerate(starts[:3])]
    assert all(v.accepted for v in verdicts), [v.detail for v in verdicts]
    for n, name in enumerate(("skip_step", "perturb_weight", "other_data"), start=3):
        v = judge.judge(starts[n][1], chains[name].data(2), replayed[n])
        assert not v.accepted, (name, v.detail)


def test_calibrate_refuses_segments_the_job_does_not_have(tmp_path: Path, digits: Any) -> None:
    with pytest.raises(SpecError, match=r"segments: must be in 1\.\.3"):
        calibrate.truncated(cuda_tolerance_spec(1.0), 4)
    x, y = digits
    (tmp_path / "spec.json").write_text(json.dumps(cuda_tolerance_spec(1.0).model_dump(mode="json")))
    np.savez(tmp_path / "d.npz", features=x, labels=y)
    out = CliRunner().invoke(app, ["calibrate", str(tmp_path / "spec.json"), "--data",
                                   str(tmp_path / "d.npz"), "--segments", "9"])
    assert out.exit_code != 0 and isinstance(out.exception, SpecError)


def in_dtype(spec: JobSpec, dtype: str, bound: float = 1e-6) -> JobSpec:
    raw = spec.model_dump(mode="json")
    raw["replay"]["cuda"]["default_dtype"] = dtype
    raw["replay"]["tolerance"]["bound"] = bound
    return load_spec(raw)


def test_a_float64_job_replays_across_settings_far_closer_and_sees_a_tiny_cheat(digits: Any) -> None:
    x, y = digits[0][:900], digits[1][:900]
    task = TaskKey(round=0, shard=0)
    gaps: dict[str, float] = {}
    for dtype in ("float32", "float64"):
        spec = in_dtype(cuda_tolerance_spec(1.0), dtype)
        honest, cheat = MemorySink(), MemorySink()
        engine.train_task(spec, task, x, y, honest)
        # a change 1,000 times smaller than the float32 cheats the other tests plant
        cheats.dishonest_train(spec, task, x, y, cheats.PerturbWeight(1, delta=1e-6), cheat)
        weights = {n: a for n, a in decode(honest.data(1)).tensors.items() if n.startswith("model/")}
        assert {a.dtype for a in weights.values()} == {np.dtype(dtype)}
        starts = [(1, honest.data(1)), (1, cheat.data(1))]
        replayed = calibrate.run_child(spec, task, x, y, VERIFIER, "replay", starts)
        gaps[dtype] = distance(honest.data(1), honest.data(2), replayed[0]).value
        gaps[dtype + " cheat"] = distance(cheat.data(1), cheat.data(2), replayed[1]).value
    assert gaps["float32"] > 0, gaps  # the stand-in verifier does differ from the worker
    assert gaps["float64"] < gaps["float32"] * 1e-6, gaps
    # float64: the tiny cheat stands far above the honest gap, so a calibrated bound sees it...
    assert gaps["float64 cheat"] > 1e3 * max(gaps["float64"], 1e-15), gaps
    # ...which in float32 it cannot: it drowns in the honest gap's order of magnitude
    assert gaps["float32 cheat"] < 10 * gaps["float32"], gaps


def test_the_default_dtype_is_set_by_every_job_and_never_leaks_into_the_next() -> None:
    f64 = in_dtype(cuda_tolerance_spec(1.0), "float64")
    profile.enter(f64.replay)
    assert torch.get_default_dtype() == torch.float64
    profile.enter(in_dtype(cuda_tolerance_spec(1.0), "float32").replay)
    assert torch.get_default_dtype() == torch.float32
    profile.enter(f64.replay)
    cpu = f64.model_dump(mode="json")
    cpu["replay"] = {**cpu["replay"], "device": "cpu", "tolerance": {"mode": "exact"}}
    cpu["replay"].pop("cuda")
    profile.enter(load_spec(cpu).replay, strict=False)
    assert torch.get_default_dtype() == torch.float32


def test_float64_refuses_bf16_autocast_and_other_dtypes() -> None:
    raw = cuda_tolerance_spec(1.0).model_dump(mode="json")
    raw["replay"]["cuda"] = {**H200, "default_dtype": "float64", "autocast": "bf16"}
    with pytest.raises(SpecError, match="autocast"):
        load_spec(raw)
    raw["replay"]["cuda"] = {**H200, "default_dtype": "float16"}
    with pytest.raises(SpecError, match="default_dtype"):
        load_spec(raw)


def test_calibrate_tells_a_float32_cuda_job_what_float64_would_see(tmp_path: Path, digits: Any) -> None:
    x, y = digits
    np.savez(tmp_path / "d.npz", features=x, labels=y)
    said = {}
    for dtype in ("float32", "float64"):
        (tmp_path / "spec.json").write_text(json.dumps(in_dtype(cuda_tolerance_spec(1.0), dtype)
                                                       .model_dump(mode="json")))
        out = CliRunner().invoke(app, ["calibrate", str(tmp_path / "spec.json"), "--data",
                                       str(tmp_path / "d.npz"), "--segments", "1"])
        assert out.exit_code == 0, out.output
        said[dtype] = out.output
    assert "proposed bound" in said["float32"] and "cuda.default_dtype: float64" in said["float32"]
    assert "proposed bound" in said["float64"] and "note:" not in said["float64"]

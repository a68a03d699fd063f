"""Cross-device verification with CPU stand-ins: a tolerance-mode CUDA job is trained by a
"worker" (this process) and verified by a "CPU verifier" in another process with another
thread count and ATen kernel level (set before torch loads). `veritrain job calibrate` measures
the honest divergence and proposes the bound; honest segments pass under it and the planted
cheats (skipped step, perturbed weight, other data) are still rejected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from adversary import cheats
from requester.cli import app
from veritrain.errors import SpecError
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.training import calibrate, engine
from veritrain.training.judges import judge_for
from veritrain.training.profile import torch_version
from veritrain.training.sinks import MemorySink

ROOT = Path(__file__).resolve().parents[3]
H200 = {"gpu_name": "NVIDIA H200", "compute_capability": "9.0", "cuda_version": "13.0",
        "cudnn_version": 91000}
VERIFIER = calibrate.Setting(threads=2, cpu_isa="default")  # the CPU verifier stand-in


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

    # a held-out job (other seed) posted with the calibrated bound
    spec, task = cuda_tolerance_spec(cal["bound"], seed=11), TaskKey(round=0, shard=0)
    honest = MemorySink()
    engine.train_task(spec, task, x[:900], y[:900], honest)
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

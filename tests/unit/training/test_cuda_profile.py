"""`replay.device: cuda`: the spec pins a GPU class; a process that lacks it says which setting
differs; a tolerance-mode CUDA job trains and replays anywhere. Runs without a GPU: the GPU a
process "has" is either none (this machine) or a stand-in Device given to the profile check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from veritrain.errors import ReplayProfileError, SpecError
from veritrain.spec import JobSpec, load_spec
from veritrain.training import devices, profile
from veritrain.training.devices import Device

EXAMPLE = Path("examples/digits-mlp.yaml")
H200 = {"gpu_name": "NVIDIA H200", "compute_capability": "9.0", "cuda_version": "13.0",
        "cudnn_version": 91000}


def raw_spec(**replay: Any) -> dict[str, Any]:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["schema_version"] = 2
    raw["replay"] = {**raw["replay"], "torch_version": profile.torch_version(), **replay}
    return raw


def cuda_spec(**replay: Any) -> JobSpec:
    return load_spec(raw_spec(device="cuda", cuda=H200, **replay))


def test_a_cuda_spec_validates_with_repeatable_defaults_and_cpu_specs_keep_their_bytes() -> None:
    spec = cuda_spec()
    c = spec.replay.cuda
    assert c is not None and (c.tf32, c.cudnn_benchmark, c.autocast) == (False, False, "none")
    assert c.cublas_workspace_config == ":4096:8" and c.default_dtype == "float32"
    assert '"cuda":{' in spec.canonical_json()
    cpu = load_spec(yaml.safe_load(EXAMPLE.read_text()))
    assert '"cuda"' not in cpu.canonical_json()  # a CPU spec's digest does not move
    bf16 = load_spec(raw_spec(device="cuda", cuda={**H200, "autocast": "bf16"}))
    assert bf16.replay.cuda is not None and bf16.replay.cuda.autocast == "bf16"


@pytest.mark.parametrize(("change", "message"), [
    ({"device": "cuda"}, "replay.cuda: device cuda needs the GPU class"),
    ({"cuda": H200}, "replay.cuda: only with device: cuda"),
    ({"device": "cuda", "cuda": {**H200, "tf32": True}}, "replay.cuda.tf32"),
    ({"device": "cuda", "cuda": {**H200, "cudnn_benchmark": True}}, "replay.cuda.cudnn_benchmark"),
    ({"device": "cuda", "cuda": {**H200, "compute_capability": "sm_90"}}, "replay.cuda.compute_capability"),
    ({"device": "cuda", "cuda": H200, "mode": "portable"}, "replay.device: portable mode"),
])
def test_a_bad_cuda_profile_is_refused_by_name(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(raw_spec(**change))


def test_cuda_needs_schema_version_2_and_no_dropout() -> None:
    raw = raw_spec(device="cuda", cuda=H200)
    with pytest.raises(SpecError, match="schema_version: replay.device cuda needs schema_version: 2"):
        load_spec({**raw, "schema_version": 1})
    raw["model"] = {"name": "mlp", "args": {"hidden": [8], "dropout": 0.1}}
    with pytest.raises(SpecError, match="model.args.dropout"):
        load_spec(raw)


def test_this_cpu_process_names_the_missing_gpu_and_the_cublas_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    spec = cuda_spec()
    found = profile.differences(spec.replay)
    assert ("device: the job wants a CUDA GPU NVIDIA H200 (sm 9.0, CUDA 13.0, cuDNN 91000), this "
            "process sees none (no CUDA device, or a CPU-only torch)") in found
    assert "cuda.cublas_workspace_config: job wants ':4096:8', this process has None" in found
    with pytest.raises(ReplayProfileError, match="device: the job wants a CUDA GPU"):
        profile.enter(spec.replay)


def test_a_gpu_of_another_class_is_refused_setting_by_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    h100 = Device("cuda", profile.torch_version(), "NVIDIA H100 80GB HBM3", "9.0", "13.0", 91000)
    monkeypatch.setattr(devices, "detect", lambda: [Device("cpu", profile.torch_version()), h100])
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    found = profile.cuda_differences(cuda_spec().replay)
    assert found == ["cuda.gpu_name: job wants 'NVIDIA H200', this GPU has 'NVIDIA H100 80GB HBM3'"]
    same = Device("cuda", profile.torch_version(), **{k if k != "gpu_name" else "name": v
                                                      for k, v in H200.items()})
    monkeypatch.setattr(devices, "detect", lambda: [Device("cpu", profile.torch_version()), same])
    assert profile.cuda_differences(cuda_spec().replay) == []
    assert devices.matching_gpu(cuda_spec().replay.cuda, [h100, same]) == same  # type: ignore[arg-type]


def test_the_profile_environment_keeps_the_gpu_visible_and_sets_cublas() -> None:
    env = profile.profile_env(cuda_spec().replay, base={"CUDA_VISIBLE_DEVICES": "1"})
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    cpu = profile.profile_env(load_spec(raw_spec()).replay, base={"CUDA_VISIBLE_DEVICES": "1"})
    assert cpu["CUDA_VISIBLE_DEVICES"] == "" and "CUBLAS_WORKSPACE_CONFIG" not in cpu


def test_a_tolerance_mode_cuda_job_is_entered_on_the_cpu_but_an_exact_one_is_not() -> None:
    import torch

    tol = cuda_spec(tolerance={"mode": "tolerance", "bound": 1e-3})
    assert profile.trains_anywhere(tol.replay) and not profile.trains_anywhere(cuda_spec().replay)
    profile.enter(tol.replay)  # no GPU here: it replays on this CPU
    assert devices.select(tol.replay) == torch.device("cpu")
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.benchmark is False
    other_major = tol.replay.model_copy(update={"torch_version": "1.13.0"})
    with pytest.raises(ReplayProfileError, match="torch_version: a tolerance-mode CUDA job wants torch 1.x"):
        profile.enter(other_major)


def test_devices_are_detected_here_and_in_a_child_alike() -> None:
    here = devices.detect()
    assert here[0].kind == "cpu" and here[0].torch_version == profile.torch_version()
    import torch

    assert len(here) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert list(devices.detect_isolated()) == here
    assert devices.as_dicts(here)[0]["label"] == f"cpu (torch {profile.torch_version()})"

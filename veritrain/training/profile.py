"""Replay profiles: the environment a job pins, applied before torch loads, checked after.

Some settings only take effect when set before torch (and MKL) load: ``MKL_CBWR``, the
ATen kernel level ``ATEN_CPU_CAPABILITY`` and the OpenMP/MKL thread pools. Training and
replay therefore run in a process whose environment was set first: :func:`profile_env`
gives that environment (the runner subprocess gets it), and :func:`enter` is the in-process
path when the current process already matches. A mismatch raises
:class:`~veritrain.errors.ReplayProfileError` naming each setting that differs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from veritrain.errors import ReplayProfileError
from veritrain.spec import ReplayProfile


def profile_env(profile: ReplayProfile, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the profile's variables set.

    A portable profile sets nothing about threads, MKL or the kernel level: its results do
    not depend on them, so the machine keeps its own.
    """
    env = dict(os.environ if base is None else base)
    if profile.mode == "portable":
        env.update(PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
        return env
    threads = str(profile.threads)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, ATEN_CPU_CAPABILITY=profile.cpu_isa,
               PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
    if profile.mkl_cbwr is None:
        env.pop("MKL_CBWR", None)
    else:
        env["MKL_CBWR"] = profile.mkl_cbwr
    if profile.cuda is not None:  # the GPU stays visible; cuBLAS reads its workspace at CUDA init
        env.pop("CUDA_VISIBLE_DEVICES")
        visible = (os.environ if base is None else base).get("CUDA_VISIBLE_DEVICES")
        if visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = visible
        if profile.cuda.cublas_workspace_config is None:
            env.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            env["CUBLAS_WORKSPACE_CONFIG"] = profile.cuda.cublas_workspace_config
    return env


def preset_environment(profile: ReplayProfile) -> bool:
    """Set the profile's variables in this process if torch has not loaded yet; True if done."""
    import sys

    if "torch" in sys.modules:
        return False
    os.environ.update(profile_env(profile, base={}))
    if profile.mkl_cbwr is None and profile.mode == "standard":
        os.environ.pop("MKL_CBWR", None)
    return True


def torch_version() -> str:
    import torch

    return str(torch.__version__).split("+")[0]


def differences(profile: ReplayProfile, *, threads_settable: bool = True) -> list[str]:
    """Each setting of ``profile`` this process does not honour, as ``name: wanted X, have Y``.

    With ``threads_settable`` the thread count is not a difference (``enter`` sets it). A
    portable profile pins only the torch major version (``2.13.0`` accepts any 2.x).
    """
    import torch

    if profile.mode == "portable":
        return major_difference(profile, "portable job")
    have = {
        "torch_version": torch_version(),
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "cpu_isa": torch.backends.cpu.get_cpu_capability().lower(),
        "threads": torch.get_num_threads(),
    }
    wanted: dict[str, object] = {
        "torch_version": profile.torch_version,
        "mkl_cbwr": profile.mkl_cbwr,
        "cpu_isa": profile.cpu_isa,
        "threads": profile.threads,
    }
    if threads_settable:
        wanted.pop("threads")
    found = [f"{k}: job wants {wanted[k]!r}, this process has {have[k]!r}"
             for k in wanted if wanted[k] != have[k]]
    return found + (cuda_differences(profile) if profile.cuda is not None else [])


def major_difference(profile: ReplayProfile, what: str) -> list[str]:
    major = profile.torch_version.split(".")[0]
    if torch_version().split(".")[0] != major:
        return [f"torch_version: {what} wants torch {major}.x, this process has {torch_version()!r}"]
    return []


def cuda_differences(profile: ReplayProfile) -> list[str]:
    """What this process lacks of a CUDA profile: a GPU of the pinned class (the first visible
    one trains) and the cuBLAS workspace setting, which must be in the environment before CUDA
    initialises."""
    from veritrain.training import devices

    assert profile.cuda is not None
    gpus = [d for d in devices.detect() if d.kind == "cuda"]
    if not gpus:
        found = [f"device: the job wants a CUDA GPU {profile.cuda.device_class()}, this process "
                 "sees none (no CUDA device, or a CPU-only torch)"]
    else:
        found = devices.cuda_differences(profile.cuda, gpus[0])
    want_ws, have_ws = profile.cuda.cublas_workspace_config, os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if want_ws != have_ws:
        found.append(f"cuda.cublas_workspace_config: job wants {want_ws!r}, this process has {have_ws!r}")
    return found


def trains_anywhere(profile: ReplayProfile) -> bool:
    """A tolerance-mode CUDA job: any machine may train or replay it on what it has (its GPU,
    or its CPU), within the job's calibrated bound; only the torch major version is checked."""
    return profile.cuda is not None and profile.tolerance.mode == "tolerance"


def enter(profile: ReplayProfile, *, strict: bool = True) -> None:
    """Apply what can be applied in-process (threads, deterministic algorithms) and check the rest.

    ``strict=False`` (tolerance-mode verification on other hardware) checks only the torch
    version and keeps this machine's threads, MKL and ISA settings.
    """
    import torch

    if trains_anywhere(profile):
        problems = major_difference(profile, "a tolerance-mode CUDA job")
        strict = False
    else:
        problems = differences(profile)
    if not strict:
        problems = [p for p in problems if p.startswith("torch_version")]
    if problems:
        raise ReplayProfileError(
            "this process cannot honour the job's replay profile: " + "; ".join(problems)
            + " (run through veritrain.training.runner.run_in_profile, which sets the environment "
            "before torch loads, or use a machine that matches)"
        )
    if strict and profile.mode == "standard" and profile.cuda is None:
        torch.set_num_threads(profile.threads)
    torch.use_deterministic_algorithms(profile.deterministic_algorithms)
    # every job sets it, so a float64 job never leaks its dtype into the next job of this process
    torch.set_default_dtype(torch.float64 if default_dtype(profile) == "float64" else torch.float32)
    if profile.cuda is not None:
        cuda_settings(profile)


def default_dtype(profile: ReplayProfile) -> str:
    """The profile's default dtype: float32, or what a CUDA job's ``cuda.default_dtype`` pins."""
    return profile.cuda.default_dtype if profile.cuda is not None else "float32"


def cuda_settings(profile: ReplayProfile) -> None:
    """The CUDA settings of the profile that torch takes at run time: TF32 off for matmul and
    cuDNN, cuDNN autotuning off and its deterministic kernels on (:func:`enter` sets the default
    dtype). Harmless on a machine without CUDA (a CPU replay of a tolerance-mode CUDA job)."""
    import torch

    assert profile.cuda is not None
    torch.backends.cuda.matmul.allow_tf32 = profile.cuda.tf32
    torch.backends.cudnn.allow_tf32 = profile.cuda.tf32
    torch.backends.cudnn.benchmark = profile.cuda.cudnn_benchmark
    torch.backends.cudnn.deterministic = profile.deterministic_algorithms


def current_profile(threads: int | None = None) -> ReplayProfile:
    """The profile this process honours as it is (tests, calibration, benchmarks)."""
    import torch

    return ReplayProfile(
        torch_version=torch_version(),
        threads=threads or torch.get_num_threads(),
        mkl_cbwr=os.environ.get("MKL_CBWR"),
        cpu_isa=torch.backends.cpu.get_cpu_capability().lower(),  # type: ignore[arg-type]
    )

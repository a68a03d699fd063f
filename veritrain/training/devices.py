"""The devices this machine trains on, and which one a job's training runs on.

A device class is what torch reports: for the CPU the torch version, for each CUDA GPU its name,
compute capability, the CUDA and cuDNN versions torch was built with, and the torch version.
:func:`detect` reads them in this process (it imports torch); :func:`detect_isolated` reads them
in a short child process, so a caller that must not load torch yet (the worker, whose training
child sets the replay profile's environment before torch loads) still learns them. Both return
plain data (:class:`Device`) that the worker's policy compares with a job's
:class:`~veritrain.spec.CudaProfile` (:func:`cuda_differences`).

:func:`select` picks the torch device a task trains or replays on: the GPU for a
``device: cuda`` job when one is visible, else the CPU (a CPU verifier replaying a
tolerance-mode CUDA job). ``VERITRAIN_TRAIN_DEVICE=cpu`` forces the CPU (a GPU machine replaying
its own GPU's segments on its CPU, as ``scripts/gpu_check.py`` does).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from veritrain.spec import CudaProfile, ReplayProfile

if TYPE_CHECKING:  # pragma: no cover
    import torch

FORCE_ENV = "VERITRAIN_TRAIN_DEVICE"


@dataclass(frozen=True)
class Device:
    """One device of this machine. ``kind`` is ``cpu`` or ``cuda``; the CUDA fields are empty
    for the CPU."""

    kind: str
    torch_version: str
    name: str = ""
    compute_capability: str = ""
    cuda_version: str = ""
    cudnn_version: int = 0
    index: int = 0

    def label(self) -> str:
        if self.kind == "cpu":
            return f"cpu (torch {self.torch_version})"
        return (f"cuda:{self.index} {self.name} (sm {self.compute_capability}, CUDA "
                f"{self.cuda_version}, cuDNN {self.cudnn_version}, torch {self.torch_version})")

    def as_cuda_profile(self) -> CudaProfile:
        """The :class:`CudaProfile` a job posted for this GPU's class pins (defaults elsewhere)."""
        if self.kind != "cuda":
            raise ValueError("only a CUDA device has a CUDA profile")
        return CudaProfile(gpu_name=self.name, compute_capability=self.compute_capability,
                           cuda_version=self.cuda_version, cudnn_version=self.cudnn_version)


def detect() -> list[Device]:
    """This process's devices: the CPU first, then every CUDA GPU torch sees (imports torch)."""
    import torch

    version = str(torch.__version__).split("+")[0]
    found = [Device("cpu", version)]
    if not torch.cuda.is_available():
        return found
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 0
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        found.append(Device("cuda", version, torch.cuda.get_device_name(i), f"{major}.{minor}",
                            str(torch.version.cuda or ""), int(cudnn or 0), i))
    return found


@functools.lru_cache(maxsize=1)
def detect_isolated(timeout: float = 120.0) -> tuple[Device, ...]:
    """:func:`detect` run in a child process (this one never loads torch); cached.

    A child that fails (no torch, a broken driver) leaves the CPU alone, reported with torch
    version ``?``, rather than stopping the caller."""
    try:
        out = subprocess.run([sys.executable, "-m", "veritrain.training.devices"], capture_output=True,
                             text=True, timeout=timeout, check=True).stdout
        return tuple(Device(**d) for d in json.loads(out))
    except (subprocess.SubprocessError, OSError, ValueError, TypeError):
        return (Device("cpu", "?"),)


def cuda_differences(want: CudaProfile, device: Device) -> list[str]:
    """Each setting of the GPU class ``want`` that ``device`` differs in (empty: it matches)."""
    if device.kind != "cuda":
        return [f"device: the job wants a CUDA GPU {want.device_class()}, this is {device.label()}"]
    have = {"gpu_name": device.name, "compute_capability": device.compute_capability,
            "cuda_version": device.cuda_version, "cudnn_version": device.cudnn_version}
    wanted = {"gpu_name": want.gpu_name, "compute_capability": want.compute_capability,
              "cuda_version": want.cuda_version, "cudnn_version": want.cudnn_version}
    return [f"cuda.{k}: job wants {wanted[k]!r}, this GPU has {have[k]!r}"
            for k in wanted if wanted[k] != have[k]]


def matching_gpu(want: CudaProfile, devices: list[Device] | tuple[Device, ...]) -> Device | None:
    """The first GPU of ``devices`` in the class ``want``, or None."""
    return next((d for d in devices if d.kind == "cuda" and not cuda_differences(want, d)), None)


def select(replay: ReplayProfile) -> torch.device:
    """The torch device a task of this profile trains or replays on in this process."""
    import torch

    if replay.device == "cuda" and os.environ.get(FORCE_ENV, "") != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _main() -> int:
    print(json.dumps([asdict(d) for d in detect()]))
    return 0


def as_dicts(devices: Any) -> list[dict[str, Any]]:
    """Devices as JSON-ready dicts, each with its one-line ``label``."""
    return [{**asdict(d), "label": d.label()} for d in devices]


if __name__ == "__main__":
    sys.exit(_main())

"""Calibrate a tolerance-mode bound per job: measure honest divergence between machines.

A tolerance-mode job is verified on whatever the verifier runs (another thread count, CPU
kernel level, another GPU, or a CPU for a CUDA job). :func:`calibrate_job` trains the first
``segments`` segments of a task honestly under a reference :class:`Setting` and replays every
segment under each other setting, each in a fresh process with that setting's environment set
before torch loads (``ATEN_CPU_CAPABILITY`` and the thread pools are read at start-up). The
distance of every replay (:func:`veritrain.training.tolerance.distance`) is honest divergence;
the proposed bound is ``max(safety × largest, floor)``. ``veritrain job calibrate SPEC --data
PATH`` prints it for the requester to put in ``replay.tolerance.bound``.

The children run ``python -m veritrain.training.calibrate WORKDIR``; :func:`run_child` is also
the way a test or benchmark trains or replays a chain under a setting of its choice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veritrain import errors, lifeline
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.training.devices import FORCE_ENV


@dataclass(frozen=True)
class Setting:
    """One way an honest machine may differ: its thread count, its ATen kernel level (None: the
    CPU's best), MKL's reproducibility mode (None: unset) and the device (``cuda`` replays on
    this machine's GPU, for a CUDA job)."""

    threads: int = 1
    cpu_isa: str | None = None
    mkl_cbwr: str | None = None
    device: str = "cpu"

    def label(self) -> str:
        parts = [self.device, f"{self.threads} thread{'s' if self.threads > 1 else ''}",
                 f"isa {self.cpu_isa or 'best'}"]
        return ", ".join(parts + ([f"MKL_CBWR {self.mkl_cbwr}"] if self.mkl_cbwr else []))

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads),
                   PYTHONHASHSEED="0", **lifeline.env_for_child())
        for name, value in (("ATEN_CPU_CAPABILITY", self.cpu_isa), ("MKL_CBWR", self.mkl_cbwr)):
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        if self.device == "cpu":
            env[FORCE_ENV] = "cpu"
        else:
            env.pop(FORCE_ENV, None)
        return env


@dataclass
class JobCalibration:
    """Honest distances per setting (one per segment) and the bound proposed from them."""

    reference: str
    segments: int
    steps: int
    distances: dict[str, list[float]] = field(default_factory=dict)
    safety: float = 10.0
    floor: float = 1e-6

    @property
    def largest(self) -> float:
        return max((d for ds in self.distances.values() for d in ds), default=0.0)

    @property
    def bound(self) -> float:
        return float(f"{max(self.safety * self.largest, self.floor):.3g}")

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "segments": self.segments, "steps": self.steps,
                "distances": self.distances, "largest": self.largest, "safety": self.safety,
                "floor": self.floor, "bound": self.bound}


def truncated(spec: JobSpec, segments: int) -> JobSpec:
    """``spec`` with only its first ``segments`` segments (the per-segment divergence is what a
    verifier meets; training the whole task is not needed to measure it)."""
    n = spec.steps_per_task // spec.checkpoint_interval
    if not 1 <= segments <= n:
        raise errors.SpecError([f"segments: must be in 1..{n} for this job"])
    return spec.model_copy(update={"steps_per_task": segments * spec.checkpoint_interval})


def run_child(spec: JobSpec, task: TaskKey, features: Any, labels: Any, setting: Setting, op: str,
              checkpoints: Sequence[tuple[int, bytes]] = (), timeout: float | None = None) -> list[bytes]:
    """In a fresh process under ``setting``: ``op="train"`` returns the chain's checkpoint bytes
    ``[c_0..c_n]``; ``op="replay"`` replays segment ``j`` from each ``(j, bytes of checkpoint j)``
    and returns the replayed checkpoints ``j+1`` in the same order."""
    with tempfile.TemporaryDirectory(prefix="veritrain-calibrate-") as tmp:
        work = Path(tmp)
        np.savez(work / "data.npz", features=np.asarray(features), labels=np.asarray(labels))
        for n, (_, data) in enumerate(checkpoints):
            (work / f"in-{n}.vtck").write_bytes(data)
        (work / "job.json").write_text(json.dumps({
            "op": op, "spec": json.loads(spec.canonical_json()), "task": task.model_dump(),
            "segments": [j for j, _ in checkpoints]}))
        proc = subprocess.run([sys.executable, "-m", "veritrain.training.calibrate", str(work)],
                              env=setting.env(), capture_output=True, text=True, timeout=timeout)
        result = work / "result.json"
        if not result.exists():
            raise errors.VeritrainError(f"the calibration process ({setting.label()}) exited with code "
                                        f"{proc.returncode}: {proc.stderr.strip()[-2000:]}")
        out = json.loads(result.read_text())
        if "error" in out:
            raise errors.VeritrainError(f"calibration under {setting.label()}: {out['error']}")
        return [(work / name).read_bytes() for name in out["files"]]


def calibrate_job(spec: JobSpec, features: Any, labels: Any, *, segments: int = 3,
                  reference: Setting | None = None, others: Sequence[Setting] | None = None,
                  task: TaskKey | None = None, safety: float = 10.0, floor: float = 1e-6,
                  timeout: float | None = None) -> JobCalibration:
    """Honest chain under ``reference``, every segment replayed under each of ``others``."""
    from veritrain.training.tolerance import distance

    task = task or TaskKey(round=0, shard=0)
    short = truncated(spec, segments)
    reference = reference or Setting()
    others = list(others) if others is not None else default_settings(spec, reference)
    chain = run_child(short, task, features, labels, reference, "train", timeout=timeout)
    cal = JobCalibration(reference.label(), segments, short.steps_per_task, safety=safety, floor=floor)
    starts = [(j, chain[j]) for j in range(segments)]
    for setting in others:
        replayed = run_child(short, task, features, labels, setting, "replay", starts, timeout=timeout)
        cal.distances[setting.label()] = [distance(chain[j], chain[j + 1], replayed[j]).value
                                          for j in range(segments)]
    return cal


def default_settings(spec: JobSpec, reference: Setting) -> list[Setting]:
    """Another thread count, the lowest CPU kernel level, and this machine's GPU for a CUDA job."""
    out = [Setting(reference.threads + 1, reference.cpu_isa, reference.mkl_cbwr),
           Setting(reference.threads, "default", reference.mkl_cbwr)]
    if spec.replay.device == "cuda":
        import torch

        if torch.cuda.is_available():
            out.append(Setting(reference.threads, reference.cpu_isa, reference.mkl_cbwr, device="cuda"))
    return out


def _child(work: Path) -> int:
    from veritrain.training.engine import replay_segment_bytes, train_task
    from veritrain.training.sinks import MemorySink

    job = json.loads((work / "job.json").read_text())
    try:
        spec = load_spec(job["spec"])
        task = TaskKey.model_validate(job["task"])
        with np.load(work / "data.npz") as npz:
            x, y = npz["features"], npz["labels"]
        outputs: list[bytes] = []
        if job["op"] == "train":
            sink = MemorySink()
            train_task(spec, task, x, y, sink, strict_profile=False)
            outputs = [sink.data(i) for i in sorted(sink.items)]
        else:
            for n, j in enumerate(job["segments"]):
                start = (work / f"in-{n}.vtck").read_bytes()
                outputs.append(replay_segment_bytes(spec, task, j, start, x, y, strict_profile=False)[0])
        names = []
        for n, data in enumerate(outputs):
            (work / f"out-{n}.vtck").write_bytes(data)
            names.append(f"out-{n}.vtck")
        (work / "result.json").write_text(json.dumps({"files": names}))
        return 0
    except errors.VeritrainError as exc:
        (work / "result.json").write_text(json.dumps({"error": str(exc)}))
        return 2


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: python -m veritrain.training.calibrate WORKDIR (written by run_child)", file=sys.stderr)
        sys.exit(64)
    lifeline.from_env()
    sys.exit(_child(Path(sys.argv[1])))

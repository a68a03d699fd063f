"""Run training or replay in a process whose environment honours the job's replay profile.

``run_in_profile`` is the entry point for the worker and the verifier: it runs in this process
when this process already matches the profile (or torch has not loaded yet, so the
environment can still be set), and otherwise spawns ``python -m veritrain.training.runner
JOB.json`` with the profile's environment set before torch loads. The child reports progress
as ``progress STEP TOTAL`` lines on stdout and writes its result (or its error) to a file.

The shard crosses to the child as an ``.npz`` in a private (0700) temporary directory; a
round's initial model (``initial_model``: the canonical plaintext of
:func:`veritrain.jobdoc.encode_initial_model`, already checked by the caller) as
``initial.vtck`` beside it, and a DP-SGD task's shard key (``dp_key``, the noise's secret) as
``dp.key`` (mode 0600).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from veritrain import errors, lifeline
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.training import profile

Progress = Callable[[int, int], None]


def in_process_ok(spec: JobSpec) -> bool:
    """True when this process honours ``spec.replay`` (setting the environment if still possible)."""
    if profile.preset_environment(spec.replay):
        return True
    if profile.trains_anywhere(spec.replay):
        return not profile.major_difference(spec.replay, "")
    return not profile.differences(spec.replay)


def model_state_of(initial_model: bytes) -> dict[str, Any]:
    """The torch state_dict in an initial model's canonical bytes (its ``model/`` tensors)."""
    import torch

    from veritrain.checkpoint import decode

    tensors = decode(initial_model).tensors
    return {k.removeprefix("model/"): torch.from_numpy(v.copy()) for k, v in tensors.items()
            if k.startswith("model/")}


def train_or_resume(spec: JobSpec, task: TaskKey, features: Any, labels: Any, directory: Path,
                    progress: Progress | None = None, initial_model: bytes | None = None,
                    dp_key: bytes | None = None) -> list[bytes]:
    """Train ``task`` into ``directory`` (a DirectorySink), resuming after its last whole
    checkpoint if a previous run was killed; returns the full chain ``h_0..h_n``. A fresh
    start begins from ``initial_model`` when given (a resume reads it from checkpoint 0 on)."""
    from veritrain.training.engine import train_task
    from veritrain.training.sinks import DirectorySink

    sink = DirectorySink(directory)
    latest = sink.latest()
    start = model_state_of(initial_model) if initial_model is not None and latest is None else None
    train_task(spec, task, features, labels, sink, progress=progress,
               resume=latest[1] if latest else None, initial_model=start, dp_key=dp_key)
    return sink.chain()


def run_in_profile(spec: JobSpec, op: str, *, task: TaskKey, features: Any, labels: Any,
                   directory: Path | None = None, j: int | None = None, checkpoint: bytes | None = None,
                   progress: Progress | None = None, force_subprocess: bool = False,
                   timeout: float | None = None, initial_model: bytes | None = None,
                   dp_key: bytes | None = None) -> Any:
    """``op="train"``: :func:`train_or_resume` into ``directory`` (from ``initial_model``, the
    canonical bytes of a round's starting model, when given), returns ``[h_0..h_n]``.
    ``op="replay"``: replays segment ``j`` from ``checkpoint``, returns (bytes_{j+1}, h_{j+1}).
    ``dp_key``: the task's shard key, needed by a DP-SGD job (its noise is derived from it).
    """
    if op not in ("train", "replay"):
        raise ValueError(f"unknown op {op!r}; use 'train' or 'replay'")
    if op == "train" and directory is None:
        raise ValueError("op='train' needs a directory for the checkpoints")
    if op == "replay" and (j is None or checkpoint is None):
        raise ValueError("op='replay' needs j and checkpoint")
    if not force_subprocess and in_process_ok(spec):
        return _execute(spec, op, task, features, labels, directory, j, checkpoint, progress,
                        initial_model, dp_key)
    with tempfile.TemporaryDirectory(prefix="veritrain-run-") as tmp:
        work = Path(tmp)
        write_job(work, spec, op, task=task, features=features, labels=labels, directory=directory,
                  j=j, checkpoint=checkpoint, initial_model=initial_model, dp_key=dp_key)
        _spawn(spec, work, progress, timeout)
        result = json.loads((work / "result.json").read_text())
        if "error" in result:
            cls = getattr(errors, result["error"], None)
            if not (isinstance(cls, type) and issubclass(cls, errors.VeritrainError)):
                cls = errors.VeritrainError
            if issubclass(cls, errors.SpecError):
                raise errors.SpecError(result.get("problems") or [result["message"]])
            raise cls(result["message"])
        if op == "train":
            return [bytes.fromhex(h) for h in result["hashes"]]
        return (work / "next.vtck").read_bytes(), bytes.fromhex(result["hash"])


def write_job(work: Path, spec: JobSpec, op: str, *, task: TaskKey, features: Any, labels: Any,
              directory: Path | None = None, j: int | None = None, checkpoint: bytes | None = None,
              initial_model: bytes | None = None, dp_key: bytes | None = None) -> None:
    """Write the child's inputs into ``work`` (run it with :func:`command` and :func:`profile_env`)."""
    np.savez(work / "data.npz", features=np.asarray(features), labels=np.asarray(labels))
    if checkpoint is not None:
        (work / "checkpoint.vtck").write_bytes(checkpoint)
    if initial_model is not None:
        (work / "initial.vtck").write_bytes(initial_model)
    if dp_key is not None:
        fd = os.open(work / "dp.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(dp_key)
    job = {"op": op, "spec": json.loads(spec.canonical_json()), "task": task.model_dump(),
           "directory": str(directory) if directory else None, "j": j,
           "initial_model": initial_model is not None}
    (work / "job.json").write_text(json.dumps(job))


def command(work: Path) -> list[str]:
    return [sys.executable, "-m", "veritrain.training.runner", str(work)]


def _spawn(spec: JobSpec, work: Path, progress: Progress | None, timeout: float | None) -> None:
    env = {**profile.profile_env(spec.replay), **lifeline.env_for_child()}
    proc = subprocess.Popen(command(work), env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if progress is not None and len(parts) == 3 and parts[0] == "progress":
                progress(int(parts[1]), int(parts[2]))
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not (work / "result.json").exists():
        raise errors.VeritrainError(f"the training process exited with code {proc.returncode} "
                                    "without a result; see its stderr above")


def _execute(spec: JobSpec, op: str, task: TaskKey, features: Any, labels: Any, directory: Path | None,
             j: int | None, checkpoint: bytes | None, progress: Progress | None,
             initial_model: bytes | None = None, dp_key: bytes | None = None) -> Any:
    if op == "train":
        assert directory is not None
        return train_or_resume(spec, task, features, labels, directory, progress, initial_model,
                               dp_key)
    from veritrain.training.engine import replay_segment_bytes

    assert j is not None and checkpoint is not None
    return replay_segment_bytes(spec, task, j, checkpoint, features, labels, dp_key=dp_key)


def _child(work: Path) -> int:
    job = json.loads((work / "job.json").read_text())
    out = work / "result.json"
    try:
        spec = load_spec(job["spec"])
        task = TaskKey.model_validate(job["task"])
        with np.load(work / "data.npz") as npz:
            features, labels = npz["features"], npz["labels"]
        every = max(1, spec.steps_per_task // 100)

        def report(step: int, total: int) -> None:
            if step % every == 0 or step == total:
                print(f"progress {step} {total}", flush=True)

        ckpt = (work / "checkpoint.vtck").read_bytes() if job["op"] == "replay" else None
        directory = Path(job["directory"]) if job["directory"] else None
        start = (work / "initial.vtck").read_bytes() if job.get("initial_model") else None
        key_file = work / "dp.key"
        dp_key = key_file.read_bytes() if key_file.exists() else None
        result = _execute(spec, job["op"], task, features, labels, directory, job["j"], ckpt, report,
                          start, dp_key)
        if job["op"] == "train":
            out.write_text(json.dumps({"hashes": [h.hex() for h in result]}))
        else:
            (work / "next.vtck").write_bytes(result[0])
            out.write_text(json.dumps({"hash": result[1].hex()}))
        return 0
    except errors.VeritrainError as exc:
        problems = exc.problems if isinstance(exc, errors.SpecError) else None
        out.write_text(json.dumps({"error": type(exc).__name__, "message": str(exc), "problems": problems}))
        return 2


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: python -m veritrain.training.runner WORKDIR (written by run_in_profile)",
              file=sys.stderr)
        sys.exit(64)
    lifeline.from_env()  # a SIGKILLed worker leaves no orphan trainer writing checkpoints
    sys.exit(_child(Path(sys.argv[1])))

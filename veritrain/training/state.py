"""Training state in torch (model, optimizer, RNG, position) <-> the canonical checkpoint.

Tensor names: ``model/<state_dict key>``, ``optim/<param index:04d>/<state key>``,
``rng/torch`` (the global CPU generator: dropout draws from it). Metadata: format, the job's
spec digest, the task, the step and checkpoint index, model and optimizer names. Python's and
numpy's generators are not used by the engine, so they are not part of the state.
Normative text: docs/spec/README.md, sections 5-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from veritrain.canon import derive_seed
from veritrain.checkpoint import CheckpointState, decode, encode_and_hash
from veritrain.errors import CheckpointFormatError
from veritrain.spec import JobSpec, TaskKey
from veritrain.training import registry
from veritrain.training.portable import mode
from veritrain.training.steps import TrainingStep, step_or_refusal

#: Version 2 (docs/spec): seeds read big-endian from sha256(JCS(...)) and the spec digest is
#: RFC 8785. A version-1 checkpoint is refused by name, never restored under the new rules.
FORMAT = "veritrain-train-state/2"


@dataclass
class Live:
    """The live objects of a task at some step, and the training step the job chose."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: int
    train_step: TrainingStep
    device: torch.device = torch.device("cpu")


def build_model(spec: JobSpec) -> nn.Module:
    """The zoo model of ``spec``, made of portable operators when ``replay.mode`` is portable."""
    entry = registry.get(spec.model.name)
    return mode.make_model(spec, entry.builder(entry.parse_args(spec.model.args), spec.data.shape()))


def build_optimizer(spec: JobSpec, model: nn.Module) -> torch.optim.Optimizer:
    o = spec.optimizer
    params = list(model.parameters())
    portable = mode.make_optimizer(spec, params)
    if portable is not None:
        return portable
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
    return cls(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)


def initial(spec: JobSpec, task: TaskKey, model_state: dict[str, torch.Tensor] | None = None, *,
            dp_key: bytes | None = None, device: torch.device | None = None) -> Live:
    """Step 0 of ``task``: the job's seeded initial model (or ``model_state``, e.g. an aggregate).
    ``dp_key`` (the task's shard key) is needed to train a DP-SGD job only
    (:func:`veritrain.training.steps.training_step_for`); without it the state still serves for
    ``h_0`` and evaluation, and a step raises the refusal. The weights are drawn on the CPU and
    then moved to ``device`` (default: :func:`veritrain.training.devices.select`), so every
    device starts from the same bits."""
    from veritrain.training import devices

    device = devices.select(spec.replay) if device is None else device
    torch.manual_seed(derive_seed(spec.seed, "init", task.round))
    model = build_model(spec)
    if model_state is not None:
        model.load_state_dict(model_state)
    torch.manual_seed(derive_seed(spec.seed, "train", task.round, task.shard))
    mode.start_task(spec, model)
    model.to(device)
    return Live(model, build_optimizer(spec, model), 0, step_or_refusal(spec, task, dp_key), device)


def _meta(spec: JobSpec, task: TaskKey, step: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "job": spec.digest().hex(),
        "task": {"round": task.round, "shard": task.shard},
        "step": step,
        "index": step // spec.checkpoint_interval,
        "model": spec.model.name,
        "optimizer": spec.optimizer.name,
    }


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().numpy()


def _tensors(live: Live) -> dict[str, torch.Tensor]:
    """The state's tensors by checkpoint name, where they live (views, not copies)."""
    tensors = {f"model/{k}": v.detach() for k, v in live.model.state_dict().items()}
    for idx, slots in live.optimizer.state_dict()["state"].items():
        for key, value in slots.items():
            if not isinstance(value, torch.Tensor):  # none of the zoo's optimizers keep these
                raise TypeError(f"optimizer state {key!r} is not a tensor; cannot checkpoint it")
            tensors[f"optim/{idx:04d}/{key}"] = value.detach()
    tensors["rng/torch"] = torch.get_rng_state()
    return tensors


def capture(spec: JobSpec, task: TaskKey, live: Live) -> CheckpointState:
    return CheckpointState(meta=_meta(spec, task, live.step),
                           tensors={k: _np(v) for k, v in _tensors(live).items()})


def snapshot(spec: JobSpec, task: TaskKey, live: Live) -> Snapshot:
    """A copy of the state taken on the training thread, turned into a
    :class:`CheckpointState` later on a writer thread (:mod:`veritrain.training.writer`).

    On a GPU the copy is a device-to-device clone queued on the training stream (no wait for
    the host); the writer copies it to pinned host memory on a stream of its own. On the CPU
    it is one memory copy; encoding, hashing and the sink run on the writer."""
    tensors = {k: v.clone() for k, v in _tensors(live).items()}
    event = None
    if live.device.type == "cuda":
        event = torch.cuda.Event()
        event.record()
    return Snapshot(_meta(spec, task, live.step), tensors, event)


@dataclass
class Snapshot:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    ready: Any = None  # a CUDA event recorded after the clones, or None on the CPU

    def to_state(self) -> CheckpointState:
        """The host copy (call it off the training thread)."""
        if self.ready is None:
            return CheckpointState(meta=self.meta, tensors={k: _np(v) for k, v in self.tensors.items()})
        side = torch.cuda.Stream()
        side.wait_event(self.ready)
        host: dict[str, torch.Tensor] = {}
        with torch.cuda.stream(side):
            for name, t in self.tensors.items():
                if t.device.type == "cuda":
                    host[name] = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
                    host[name].copy_(t, non_blocking=True)
                else:
                    host[name] = t
        side.synchronize()
        self.tensors = {}  # the device copies may go back to the allocator now
        return CheckpointState(meta=self.meta, tensors={k: _np(v) for k, v in host.items()})


def checkpoint(spec: JobSpec, task: TaskKey, live: Live) -> tuple[bytes, bytes]:
    """The canonical bytes of ``live`` and their hash ``h_i``."""
    return encode_and_hash(capture(spec, task, live))


def restore(spec: JobSpec, task: TaskKey, data: bytes | CheckpointState, *,
            dp_key: bytes | None = None, device: torch.device | None = None) -> Live:
    """Live objects from a checkpoint of this job and task; sets the global torch RNG."""
    state = decode(data) if not isinstance(data, CheckpointState) else data
    meta = state.meta
    if meta.get("format") != FORMAT:
        raise CheckpointFormatError(f"checkpoint state format {meta.get('format')!r}; this build reads "
                                    f"{FORMAT!r} only (an older checkpoint cannot be resumed or replayed)")
    step = meta.get("step")
    if not isinstance(step, int) or step < 0 or step % spec.checkpoint_interval:
        raise CheckpointFormatError(f"checkpoint step {step!r} is not a multiple of k")
    expected = _meta(spec, task, step)
    wrong = [k for k in expected if k != "step" and meta.get(k) != expected[k]]
    if wrong:
        raise CheckpointFormatError(f"checkpoint is not of this job and task (mismatch: {', '.join(wrong)})")
    live = initial(spec, task, dp_key=dp_key, device=device)
    t = {k: torch.from_numpy(v) for k, v in state.tensors.items()}
    model_keys = {k.removeprefix("model/") for k in t if k.startswith("model/")}
    if model_keys != set(live.model.state_dict()):
        raise CheckpointFormatError("checkpoint model tensors do not match the job's model")
    live.model.load_state_dict({k: t[f"model/{k}"] for k in model_keys})
    opt_state: dict[int, dict[str, Any]] = {}
    for name, value in t.items():
        if name.startswith("optim/"):
            _, idx, key = name.split("/", 2)
            opt_state.setdefault(int(idx), {})[key] = value
    live.optimizer.load_state_dict({"state": opt_state,
                                    "param_groups": live.optimizer.state_dict()["param_groups"]})
    torch.set_rng_state(t["rng/torch"].clone())
    live.step = int(meta["step"])
    return live

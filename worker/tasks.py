"""Storage and training I/O of one task: job document, shard, training, checkpoint upload.

- The shard on IPFS is the ciphertext of the shard bytes under the job's data key
  (:mod:`veritrain.crypto`, ``job_id`` = the document's binding, ``shard_index`` = shard).
  It is kept *encrypted* on local disk (``shard.enc``) and decrypted in memory only.
- The shard bytes are in :mod:`veritrain.data`'s shard format (``VTSHARD``), checked
  (shape, finite features, labels in range) as they are decoded.
- Checkpoints are encrypted under the data key with ``job_id`` =
  :func:`veritrain.jobdoc.checkpoint_binding` and ``shard_index`` = checkpoint index; the
  ciphertext is kept on disk (``enc/``) so a re-upload yields the same CID.
- A round ``r > 0`` starts from the previous round's aggregate: the document lists one
  encrypted copy per shard (:mod:`veritrain.jobdoc`); the task's copy is fetched (checked
  against CID, sha256 and size), kept encrypted on disk (``initial.enc``), opened with the
  same shard key (``job_id = initial_model_binding(binding, r)``, ``shard_index`` = shard) and
  checked against the document's plaintext digest before training starts from it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from veritrain import crypto
from veritrain.chain.views import Job
from veritrain.errors import IntegrityError
from veritrain.jobdoc import (
    BlobRef,
    JobDocument,
    ShardRef,
    checkpoint_binding,
)
from veritrain.spec import JobSpec, TaskKey
from veritrain.storage import Storage
from worker.policy import Machine

Progress = Callable[[int, int], None]


class Trainer(Protocol):
    """Trains ``task`` into ``directory`` (resuming after its last whole checkpoint) and
    returns ``[h_0..h_n]``. The default is :func:`default_trainer`; tests and the demo pass
    another through ``run_worker(..., trainer=...)`` (see ``adversary.worker``). For a round
    ``r > 0`` the worker also passes ``initial_model=`` (the checked canonical bytes of the
    previous round's aggregate); for round 0 it never passes it, so round-0-only trainers
    keep their signature. For a DP-SGD job it passes ``dp_key=`` (the task's shard key, from
    which the noise is derived: docs/spec/dp.md); for other jobs never."""

    def __call__(self, spec: JobSpec, task: TaskKey, features: Any, labels: Any, directory: Path,
                 progress: Progress | None) -> list[bytes]: ...


def default_trainer(spec: JobSpec, task: TaskKey, features: Any, labels: Any, directory: Path,
                    progress: Progress | None, initial_model: bytes | None = None,
                    dp_key: bytes | None = None) -> list[bytes]:
    from veritrain.training.runner import run_in_profile

    return list(run_in_profile(spec, "train", task=task, features=features, labels=labels,
                               directory=directory, progress=progress, initial_model=initial_model,
                               dp_key=dp_key))


#: Examples of its shard a worker evaluates each checkpoint on for the manifest's loss curve.
LOSS_EXAMPLES = 512


def checkpoint_losses(spec: JobSpec, features: Any, labels: Any, paths: list[Path]) -> list[float] | None:
    """The mean loss of the checkpoints at ``paths`` (those the manifest lists, a forced one
    included, so the curve never gives a forced error away) on the first
    :data:`LOSS_EXAMPLES` examples of the task's shard: the loss curve the manifest publishes
    (docs/spec, section 13). None when a checkpoint is not this job's model (a trainer that
    wrote something else): the curve is optional, the result is not."""
    from veritrain.training.engine import evaluate

    x, y = features[:LOSS_EXAMPLES], labels[:LOSS_EXAMPLES]
    try:
        return [float(evaluate(spec, path.read_bytes(), x, y).loss) for path in paths]
    except Exception:  # noqa: BLE001 - an optional curve must never cost the worker its task
        return None


# ------------------------------------------------------------------------ job document
def load_jobdoc(storage: Storage, spec_cid: str, cache_dir: Path) -> JobDocument:
    """The job document behind ``specCid`` (verified by CID), cached on disk."""
    path = cache_dir / f"{spec_cid}.json"
    if path.exists():
        return JobDocument.from_bytes(path.read_bytes(), source=spec_cid)
    data = storage.get_bytes(spec_cid)
    doc = JobDocument.from_bytes(data, source=spec_cid)
    write_atomic(path, data)
    return doc


def job_problems(doc: JobDocument, job: Job) -> list[str]:
    """Disagreements between the document and the job on-chain (a job to stay away from)."""
    spec, out = doc.spec, []
    problem = start_problem(doc, job.starts_root) if doc.round == 0 else None
    if problem is not None:
        out.append(problem)
    if doc.shards_root() != job.shards_root:
        out.append("the job's shardsRoot does not match its document's shards")
    if job.checkpoint_count != spec.num_checkpoints:
        out.append(f"checkpointCount {job.checkpoint_count} != the spec's {spec.num_checkpoints}")
    if job.task_count != spec.num_shards:  # every round is its own job of num_shards tasks
        out.append(f"taskCount {job.task_count} != the spec's {spec.num_shards} shards (one job per round)")
    return out


#: startsRoot of a round-0 document, by its binding (computed once per job; it needs torch)
_PUBLIC_STARTS: dict[bytes, bytes] = {}


def start_problem(doc: JobDocument, starts_root: bytes, initial_model: bytes | None = None) -> str | None:
    """Why the job's bound starts (``starts_root`` on-chain) are not the starts of its document,
    or None when they are. Round 0's need only the public document, so a worker checks them
    before claiming: a requester that bound bogus starts would have it slashed for starting
    where the document says. Round ``r > 0``'s need ``initial_model`` (the round's plaintext,
    opened with the key): on a mismatch the worker refuses the task (``refuseStart``)."""
    from veritrain.starts import BoundStarts

    cached = _PUBLIC_STARTS.get(doc.binding) if initial_model is None else None
    if cached is None:
        cached = BoundStarts.of(doc, initial_model).root
        if initial_model is None:
            _PUBLIC_STARTS[doc.binding] = cached
    if cached == starts_root:
        return None
    return (f"the job's bound starts 0x{starts_root.hex()} are not the starts of its document "
            f"(0x{cached.hex()}): a worker starting where the document says would be slashed")


def estimate_memory_mb(spec: JobSpec, ref: ShardRef) -> float:
    """Rough peak memory of training (no torch import: torch must load only after the job's
    replay profile is set): parameters x (live + grads + optimizer slots + one encoded
    checkpoint), the shard three times (ciphertext, plaintext, tensors), and a base."""
    params = _approx_params(spec)
    slots = {"sgd": 1 if spec.optimizer.momentum else 0, "adam": 2, "adamw": 2}[spec.optimizer.name]
    return (params * 4 * (3 + slots) + 3 * ref.size) / 2**20 + 300


def _approx_params(spec: JobSpec) -> int:
    """Exact for ``mlp``; for other models a generous bound from the data shape."""
    import math

    args, d = spec.model.args, spec.data
    width = math.prod(d.input_shape)
    if spec.model.name == "mlp":
        total = 0
        for h in list(args.get("hidden", [128])) + [d.num_classes]:
            total += width * h + h
            width = h
        return total
    return 64 * width * max(8, d.num_classes) + 4_000_000


def this_machine(*, with_devices: bool = False) -> Machine:
    """torch version (without importing torch) and the CPU's instruction-set levels; with
    ``with_devices`` also the GPUs torch sees (read once, in a child process)."""
    from importlib.metadata import version

    from veritrain.training.devices import detect_isolated

    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    isas = {"default"} | ({"avx2"} if "avx2" in flags else set()) | (
        {"avx512"} if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags else set())
    return Machine(torch_version=version("torch").split("+")[0], cpu_isas=frozenset(isas),
                   cpus=os.cpu_count() or 1, devices=detect_isolated() if with_devices else ())


# ------------------------------------------------------------------------ shard
def _fetch_checked(storage: Storage, ref: BlobRef, dest: Path, what: str) -> Path:
    """``ref``'s ciphertext at ``dest`` (kept from an earlier run if it still checks), checked
    against the CID, the sha256 and the size the job document promises."""
    if dest.exists() and _sha256(dest.read_bytes()) == ref.sha256:
        return dest
    data = storage.get_bytes(ref.cid)
    if len(data) != ref.size or _sha256(data) != ref.sha256:
        raise IntegrityError(
            f"{what} ({ref.cid}) is {len(data)} bytes with sha256 {_sha256(data)[:16]}..., "
            f"but the job document promises {ref.size} bytes with sha256 {ref.sha256[:16]}...: "
            "the requester published inconsistent data; this task cannot be trained")
    write_atomic(dest, data)
    return dest


def fetch_shard(storage: Storage, ref: ShardRef, dest: Path) -> Path:
    """The shard's ciphertext at ``dest``, checked against the CID, sha256 and size."""
    return _fetch_checked(storage, ref, dest, f"shard {ref.index}")


def decrypt_shard(path: Path, key: bytes, doc: JobDocument, shard: int) -> bytes:
    return crypto.decrypt_bytes(path.read_bytes(), key, job_id=doc.binding, shard_index=shard)


# ------------------------------------------------------------------------ initial model
def fetch_initial_model(storage: Storage, doc: JobDocument, shard: int, dest: Path) -> Path:
    """Round ``doc.round``'s initial model copy for ``shard`` at ``dest`` (ciphertext), checked
    against the CID, the sha256 and the size the document promises."""
    if doc.initial_model is None:
        raise IntegrityError(f"round {doc.round}'s job document names no initial model")
    ref = doc.initial_model.copy_for(shard)
    return _fetch_checked(storage, ref, dest, f"the initial model for shard {shard}")


# ------------------------------------------------------------------------ checkpoints
def encrypted_checkpoint(source: Path, enc_dir: Path, index: int, key: bytes, doc: JobDocument,
                         task_id: int, worker: str) -> Path:
    """The encrypted form of checkpoint ``index`` (the plaintext at ``source``) on disk, made
    once, then reused."""
    dest = enc_dir / f"ckpt-{index:06d}.enc"
    if not dest.exists():
        plain = source.read_bytes()
        blob = crypto.encrypt_bytes(plain, key, job_id=checkpoint_binding(doc, task_id, worker),
                                    shard_index=index)
        write_atomic(dest, blob)
    return dest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

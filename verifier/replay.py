"""Fetch what a revealed result points to, replay one segment, and judge it.

The verifier needs: the job document (``specCid``), the worker's manifest (``manifestCid``,
whose root must be the root revealed on-chain), the task's shard key (a referee is given it;
a sampling verifier derives it from the job key), the shard, and
checkpoint ``j`` (and, in tolerance mode, ``j+1``). Every read is verified (CIDs by the
storage layer, checkpoint bytes against the manifest's ``h_i``) before it is trusted.

Outcomes of one segment check:

- ``match``: the replay reproduces the worker's ``h_{j+1}`` (or, in tolerance mode, lands
  within the job's bound of the worker's checkpoint ``j+1``);
- ``mismatch``: it does not; ``replayed`` is the hash this verifier computed;
- ``unrunnable``: this machine cannot honour the job's replay profile (the detail names the
  setting). Reported as such, never guessed;
- ``unavailable``: checkpoint ``j`` (or ``j+1``) could not be fetched or did not match its hash.

The replay itself goes through an injectable ``ReplayFn`` (default :func:`engine_replay`), the
narrow hook tests use to simulate a verifier that lies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from veritrain import crypto
from veritrain import manifest as manifest_mod
from veritrain.checkpoint import checkpoint_hash
from veritrain.errors import (
    DataError,
    IntegrityError,
    ManifestError,
    ReplayProfileError,
    SpecError,
    StorageError,
)
from veritrain.jobdoc import JobDocument, checkpoint_binding, open_shard
from veritrain.manifest import Manifest
from veritrain.spec import JobSpec, TaskKey
from veritrain.storage import Storage

log = logging.getLogger("verifier.replay")

#: ``replay(spec, task, j, checkpoint_j, features, labels) -> (bytes_{j+1}, h_{j+1})``
ReplayFn = Callable[..., tuple[bytes, bytes]]  # (spec, task, j, checkpoint_j, x, y[, dp_key=])

class CheckOutcome(StrEnum):
    """How one replayed segment came out (the module docstring says what each means)."""

    MATCH = "match"
    MISMATCH = "mismatch"
    UNRUNNABLE = "unrunnable"
    UNAVAILABLE = "unavailable"
    #: The worker's own evidence (checkpoint ``j``) cannot be fetched, opened or does not hash to
    #: its committed ``h_j``: per protocol.md this counts against the worker, so it is challenged.
    WITHHELD = "withheld"


MATCH, MISMATCH, UNRUNNABLE = CheckOutcome.MATCH, CheckOutcome.MISMATCH, CheckOutcome.UNRUNNABLE
UNAVAILABLE, WITHHELD = CheckOutcome.UNAVAILABLE, CheckOutcome.WITHHELD


def engine_replay(spec: JobSpec, task: TaskKey, j: int, checkpoint_j: bytes, features: Any,
                  labels: Any, *, dp_key: bytes | None = None) -> tuple[bytes, bytes]:
    """The honest replay, as the job's judge does it (:func:`veritrain.training.judges.judge_for`):
    exact mode under the full profile (a fresh process if this one does not match it; a portable
    job runs here, whatever this machine's threads and kernel level), tolerance mode on this
    machine's settings (torch version still pinned). ``dp_key``: a DP-SGD task's shard key."""
    from veritrain.training.judges import judge_for

    return judge_for(spec).replay(spec, task, j, checkpoint_j, features, labels, dp_key=dp_key)


def load_job_document(storage: Storage, spec_cid: str) -> JobDocument:
    return JobDocument.from_bytes(storage.get_bytes(spec_cid), source=f"job document {spec_cid}")


def load_manifest(storage: Storage, cid: str, *, root: bytes, task_id: int, worker: str) -> Manifest:
    """The manifest, checked against what the worker revealed on-chain."""
    m = manifest_mod.load(storage.get_bytes(cid), source=cid)
    if m.root_bytes() != root:
        raise ManifestError(f"manifest {cid} has root {m.root}, but the worker revealed 0x{root.hex()}")
    if m.task_id != task_id or m.worker.lower() != worker.lower():
        raise ManifestError(f"manifest {cid} is for task {m.task_id} of {m.worker}, "
                            f"not task {task_id} of {worker}")
    return m


@dataclass
class TaskContext:
    """Everything needed to replay any segment of one worker's result."""

    doc: JobDocument
    manifest: Manifest
    key: bytes  # the shard key of the task (veritrain.crypto.shard_key): shard and checkpoints
    task_id: int
    worker: str
    _shard: tuple[Any, Any] | None = field(default=None, repr=False)

    @property
    def spec(self) -> JobSpec:
        return self.doc.spec

    @property
    def task(self) -> TaskKey:
        return self.doc.task_key(self.task_id)

    @property
    def n_segments(self) -> int:
        return self.manifest.n_checkpoints - 1


@dataclass(frozen=True)
class SegmentCheck:
    j: int
    outcome: CheckOutcome
    claimed: str  # the worker's h_{j+1}, 0x-hex
    replayed: str | None = None  # this verifier's h_{j+1}
    detail: str = ""
    distance: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the outcome as its string), as the journal and the API carry it."""
        return {**asdict(self), "outcome": str(self.outcome)}

    @property
    def vote(self) -> bytes | None:
        """The hash a referee should vote: the worker's when it holds up, else its own."""
        if self.outcome == MATCH:
            return bytes.fromhex(self.claimed[2:])
        if self.outcome == MISMATCH and self.replayed:
            return bytes.fromhex(self.replayed[2:])
        return None


class SegmentReplayer:
    def __init__(self, storage: Storage, replay: ReplayFn = engine_replay) -> None:
        self.storage = storage
        self.replay_fn = replay

    def context(self, doc: JobDocument, manifest: Manifest, key: bytes, task_id: int,
                worker: str) -> TaskContext:
        return TaskContext(doc, manifest, key, task_id, worker)

    def shard(self, ctx: TaskContext) -> tuple[Any, Any]:
        if ctx._shard is None:
            ref = ctx.doc.shard(ctx.task.shard)
            blob = self.storage.get_bytes(ref.cid)
            plain = crypto.decrypt_bytes(blob, ctx.key, job_id=ctx.doc.binding, shard_index=ref.index)
            shard = open_shard(ctx.doc, plain, f"shard {ref.index}")  # with the job's preprocessing
            ctx._shard = (shard.features, shard.labels)
        return ctx._shard

    def checkpoint(self, ctx: TaskContext, i: int) -> bytes:
        """Checkpoint ``i`` decrypted and checked against the manifest's ``h_i``."""
        blob = self.storage.get_bytes(ctx.manifest.checkpoint_cids[i])
        binding = checkpoint_binding(ctx.doc, ctx.task_id, ctx.worker)
        plain = crypto.decrypt_bytes(blob, ctx.key, job_id=binding, shard_index=i)
        if checkpoint_hash(plain) != ctx.manifest.hash_bytes(i):
            raise IntegrityError(f"checkpoint {i} ({ctx.manifest.checkpoint_cids[i]}) does not hash to "
                                 f"the manifest's h_{i}")
        return plain

    def check(self, ctx: TaskContext, j: int) -> SegmentCheck:
        """Replay segment ``j`` of ``ctx`` and judge the worker's ``h_{j+1}``; logs what it
        replayed (task, worker, segment, steps, shard) and the outcome."""
        result = self._check(ctx, j)
        k = ctx.spec.checkpoint_interval
        log.info("task %d (worker %s, shard %d): replayed segment %d of %d (steps %d-%d): %s%s",
                 ctx.task_id, ctx.worker, ctx.task.shard, j, ctx.n_segments, j * k + 1, (j + 1) * k,
                 result.outcome, f" ({result.detail})" if result.detail else "")
        return result

    def _check(self, ctx: TaskContext, j: int) -> SegmentCheck:
        claimed = ctx.manifest.hashes[j + 1]
        try:  # the shard first: it proves this verifier's key (its hash is in the job document)
            x, y = self.shard(ctx)
        except (SpecError, DataError, StorageError, IntegrityError) as exc:
            return SegmentCheck(j, UNAVAILABLE, claimed, detail=f"shard: {type(exc).__name__}: {exc}")
        try:
            ck_j = self.checkpoint(ctx, j)
        except (StorageError, IntegrityError) as exc:
            return SegmentCheck(j, WITHHELD, claimed, detail=f"checkpoint {j}: {exc}")
        try:
            # a DP-SGD segment's noise is derived from the shard key this verifier holds
            dp = {"dp_key": bytes(ctx.key)} if ctx.spec.privacy.dp_sgd is not None else {}
            replayed_bytes, replayed = self.replay_fn(ctx.spec, ctx.task, j, ck_j, x, y, **dp)
        except ReplayProfileError as exc:
            return SegmentCheck(j, UNRUNNABLE, claimed, detail=str(exc))
        except (SpecError, DataError, StorageError, IntegrityError) as exc:
            return SegmentCheck(j, UNAVAILABLE, claimed, detail=f"{type(exc).__name__}: {exc}")
        return self.judge(ctx, j, ck_j, replayed_bytes, replayed)

    def judge(self, ctx: TaskContext, j: int, ck_j: bytes, replayed_bytes: bytes,
              replayed: bytes) -> SegmentCheck:
        claimed = ctx.manifest.hashes[j + 1]
        mine = "0x" + replayed.hex()
        if replayed == ctx.manifest.hash_bytes(j + 1):
            return SegmentCheck(j, MATCH, claimed, mine, distance=0.0)
        from veritrain.training.judges import judge_for

        judge = judge_for(ctx.spec)
        claimed_bytes = None
        if judge.needs_claimed_checkpoint:
            try:
                claimed_bytes = self.checkpoint(ctx, j + 1)
            except (StorageError, IntegrityError) as exc:
                return SegmentCheck(j, UNAVAILABLE, claimed, mine, detail=f"checkpoint {j + 1}: {exc}")
        verdict = judge.judge(ck_j, claimed_bytes, replayed_bytes)
        return SegmentCheck(j, MATCH if verdict.accepted else MISMATCH, claimed, mine, detail=verdict.detail,
                            distance=None if verdict.distance is None else verdict.distance.value)

"""Fetch each task's final checkpoint, check it against the root committed on-chain, aggregate.

For every finalized claim: the manifest (read from IPFS by the CID the worker revealed, so its
bytes are verified against that CID) must have ``root`` = the claim's on-chain root and
``checkpointCount`` hashes; the final checkpoint's ciphertext is fetched by its CID, decrypted
with the task's shard key (``job_id = checkpoint_binding(doc, task, worker)``, ``shard_index = n``), its
sha256 must be ``h_n`` and ``(n, h_n)`` must be proven under the on-chain root by the Merkle
proof (the contract's own check, :func:`veritrain.merkle.verify`); the decoded state must be
of this job and task. Any failure raises :class:`ResultIntegrityError` naming task and worker.

Round ``r > 0`` of a multi-round job also checks where the worker started: its ``h_0`` must be
proven under the on-chain root and equal the ``h_0`` computed from the round's published
initial model (``expected_h0``), so a worker that trained from another model is refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from requester.errors import ResultIntegrityError
from veritrain import crypto, manifest, merkle
from veritrain.checkpoint import CheckpointState, checkpoint_hash, decode
from veritrain.errors import CheckpointFormatError, DecryptionError, IntegrityError, ManifestError
from veritrain.jobdoc import JobDocument, checkpoint_binding
from veritrain.storage import Storage


@dataclass(frozen=True)
class TaskResult:
    """One task's verified final model and where it came from."""

    task_id: int
    shard: int
    worker: str
    root: str
    manifest_cid: str
    checkpoint_cid: str
    checkpoint_hash: str
    examples: int
    reveal_tx: str | None = None
    finalize_tx: str | None = None
    key_tx: str | None = None
    round: int = 0
    start_hash: str | None = None  # h_0, checked against the round's initial model (round > 0)


@dataclass
class Provenance:
    chain_id: int
    market: str
    job_id: int
    requester: str
    spec_cid: str
    binding: str
    shards_root: str
    post_tx: str | None
    approve_tx: str | None
    tasks: list[TaskResult] = field(default_factory=list)
    aggregate_hash: str | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    """Multi-round jobs: per round its job id, document, posting tx, initial model and aggregate."""
    privacy: dict[str, Any] | None = None
    """DP-SGD jobs: the budget spent (:meth:`veritrain.privacy.Budget.as_dict`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_task(doc: JobDocument, storage: Storage, key: bytes, *, task_id: int, shard: int,
                worker: str, onchain_root: bytes, manifest_cid: str, checkpoint_count: int,
                expected_h0: bytes | None = None) -> tuple[CheckpointState, TaskResult]:
    """The final state of one claim, checked against ``onchain_root`` (and, given
    ``expected_h0``, its start); ResultIntegrityError else."""
    who = f"task {task_id} (shard {shard}) of worker {worker}"
    try:
        m = manifest.load(storage.get_bytes(manifest_cid), source=manifest_cid)
    except (ManifestError, IntegrityError) as exc:
        raise ResultIntegrityError(f"{who}: manifest {manifest_cid} is unusable: {exc}") from None
    if m.root_bytes() != onchain_root:
        raise ResultIntegrityError(f"{who}: manifest root {m.root} is not the root committed "
                                   f"on-chain 0x{onchain_root.hex()}")
    if m.n_checkpoints != checkpoint_count:
        raise ResultIntegrityError(f"{who}: manifest lists {m.n_checkpoints} checkpoints, the job "
                                   f"has {checkpoint_count}")
    if m.worker.lower() != worker.lower() or m.task_id != task_id:
        raise ResultIntegrityError(f"{who}: manifest is for task {m.task_id} of {m.worker}")
    start = None
    if expected_h0 is not None:
        h0 = m.hash_bytes(0)
        if not merkle.verify(onchain_root, 0, h0, m.proof(0)):
            raise ResultIntegrityError(f"{who}: checkpoint 0 is not proven under the on-chain root")
        if h0 != expected_h0:
            raise ResultIntegrityError(
                f"{who}: h_0 0x{h0.hex()} is not the start from round {doc.round}'s initial model "
                f"(0x{expected_h0.hex()}): the worker did not start from the previous round's aggregate")
        start = "0x" + h0.hex()
    n = m.n_checkpoints - 1
    cid = m.cid_of(n)
    try:
        ct = storage.get_bytes(cid)
        plain = crypto.decrypt_bytes(ct, key, job_id=checkpoint_binding(doc, task_id, worker), shard_index=n)
    except (DecryptionError, IntegrityError) as exc:
        raise ResultIntegrityError(f"{who}: final checkpoint {cid} refused: {exc}") from None
    h = checkpoint_hash(plain)
    if h != m.hash_bytes(n):
        raise ResultIntegrityError(f"{who}: final checkpoint {cid} hashes to 0x{h.hex()}, the manifest "
                                   f"commits to {m.hashes[n]}")
    if not merkle.verify(onchain_root, n, h, m.proof(n)):
        raise ResultIntegrityError(f"{who}: checkpoint {n} is not proven under the on-chain root")
    try:
        state = decode(plain)
    except CheckpointFormatError as exc:
        raise ResultIntegrityError(f"{who}: final checkpoint is not a valid checkpoint: {exc}") from None
    meta = state.meta
    want = {"job": doc.spec.digest().hex(), "task": {"round": doc.round, "shard": shard},
            "step": doc.spec.steps_per_task}
    wrong = [k for k, v in want.items() if meta.get(k) != v]
    if wrong:
        raise ResultIntegrityError(f"{who}: final checkpoint is not of this job's task "
                                   f"(mismatch: {', '.join(wrong)})")
    result = TaskResult(task_id=task_id, shard=shard, worker=worker, root="0x" + onchain_root.hex(),
                        manifest_cid=manifest_cid, checkpoint_cid=cid, checkpoint_hash="0x" + h.hex(),
                        examples=doc.shard(shard).examples, round=doc.round, start_hash=start)
    return state, result

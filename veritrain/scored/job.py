"""A scored job's public document (on IPFS; its CID is the job's on-chain ``specCid``) and the
encrypted objects it points to: the dataset and the workers' updates.

The dataset is one shard (:func:`veritrain.data.encode_shard`) encrypted under the job key;
updates are encrypted under the same key with associated data naming the job, window and
worker, so an update cannot be passed off for another window or worker.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from veritrain import crypto
from veritrain.data import Dataset, decode_shard, encode_shard
from veritrain.errors import IntegrityError
from veritrain.spec import JobSpec
from veritrain.storage.base import Storage


class ScoredJobDoc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "veritrain-scored-job"
    spec: JobSpec
    data_cid: str
    data_sha256: str
    examples: int = Field(ge=1)
    local_batches: int = Field(default=2, ge=1, description="assigned batches per worker per window")
    local_epochs: int = Field(default=4, ge=1, description="passes over the assigned batches")
    eval_batches: int = Field(default=4, ge=1, description="held-out batches a validator samples")
    eval_batch_size: int = Field(default=64, ge=1)
    chunk: int = Field(default=256, ge=1, le=4096)
    k: int = Field(default=64, ge=1)
    top: int = Field(default=4, ge=1, description="updates averaged into the next global model")

    def put(self, storage: Storage) -> str:
        return storage.put_bytes(self.model_dump_json().encode())

    @classmethod
    def get(cls, storage: Storage, cid: str) -> ScoredJobDoc:
        return cls.model_validate_json(storage.get_bytes(cid))


def put_dataset(storage: Storage, data: Dataset, key: bytes) -> tuple[str, str]:
    blob = crypto.encrypt_bytes(encode_shard(data), key, job_id="scored-data", shard_index=0)
    return storage.put_bytes(blob), hashlib.sha256(blob).hexdigest()


def get_dataset(storage: Storage, doc: ScoredJobDoc, key: bytes) -> Dataset:
    blob = storage.get_bytes(doc.data_cid)
    if hashlib.sha256(blob).hexdigest() != doc.data_sha256:
        raise IntegrityError(f"scored dataset {doc.data_cid}: its hash does not match the job document")
    plain = crypto.decrypt_bytes(blob, key, job_id="scored-data", shard_index=0)
    return decode_shard(plain, "scored dataset")


def _ad(job_id: int, window: int, worker: str) -> str:
    return f"scored-update:{job_id}:{window}:{worker.lower()}"


def seal_update(data: bytes, key: bytes, job_id: int, window: int, worker: str) -> bytes:
    return crypto.encrypt_bytes(data, key, job_id=_ad(job_id, window, worker), shard_index=0)


def open_update(blob: bytes, key: bytes, job_id: int, window: int, worker: str) -> bytes:
    return crypto.decrypt_bytes(blob, key, job_id=_ad(job_id, window, worker), shard_index=0)


def update_hash(blob: bytes) -> bytes:
    """What a worker commits: sha256 of the encrypted update as stored."""
    return hashlib.sha256(blob).digest()

"""The job document: what a job's on-chain ``specCid`` points to.

A job's shards are encrypted and uploaded *before* the job exists on-chain, so the
document binds them to the spec rather than to an on-chain id:

    {"version": 1, "spec": <JobSpec>, "binding": "<hex>", "shards": [ShardRef, ...]}

- ``binding`` = sha256(spec digest || requester nonce): the ``job_id`` every ciphertext of
  the job is encrypted under (veritrain.crypto's associated data), so a shard or checkpoint
  of one job cannot be passed off as another's.
- ``shards_root()`` is what ``postJob`` takes as ``shardsRoot``: the contract holds a
  commitment to exactly these CIDs and ciphertext hashes.

The contexts below name what each key envelope and checkpoint ciphertext is for; every
role builds them with these functions and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from veritrain.errors import SpecError
from veritrain.spec import JobSpec

DOC_VERSION = 1


class ShardRef(BaseModel):
    """One encrypted shard on IPFS."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    cid: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the ciphertext")
    size: int = Field(ge=0, description="ciphertext bytes")
    examples: int = Field(ge=0)


class JobDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = DOC_VERSION
    spec: JobSpec
    binding: str = Field(pattern=r"^[0-9a-f]{64}$")
    shards: tuple[ShardRef, ...]

    @classmethod
    def create(cls, spec: JobSpec, shards: list[ShardRef], nonce: bytes) -> JobDocument:
        return cls(spec=spec, binding=binding_for(spec, nonce), shards=tuple(shards))

    def shard(self, index: int) -> ShardRef:
        for ref in self.shards:
            if ref.index == index:
                return ref
        raise SpecError([f"shards: no shard {index} (job has {len(self.shards)})"])

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def to_bytes(self) -> bytes:
        return self.canonical_json().encode()

    def shards_root(self) -> bytes:
        """sha256 over the canonical shard list: the ``shardsRoot`` bound on-chain."""
        refs = [r.model_dump(mode="json") for r in sorted(self.shards, key=lambda r: r.index)]
        return hashlib.sha256(json.dumps(refs, sort_keys=True, separators=(",", ":")).encode()).digest()

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> JobDocument:
        try:
            raw: Any = json.loads(data)
        except ValueError as exc:
            raise SpecError([f"job document is not JSON: {exc}"], source) from exc
        if not isinstance(raw, dict):
            raise SpecError(["job document must be a JSON object"], source)
        spec = JobSpec.from_dict(raw.get("spec") or {}, source=source)  # every spec problem
        try:
            doc = cls.model_validate({**raw, "spec": spec})
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise SpecError(problems, source) from exc
        indices = sorted(r.index for r in doc.shards)
        if indices != list(range(spec.num_shards)):
            raise SpecError(
                [f"shards: indices {indices} do not cover 0..{spec.num_shards - 1}"], source
            )
        return doc


def new_nonce() -> bytes:
    return os.urandom(16)


def binding_for(spec: JobSpec, nonce: bytes) -> str:
    return hashlib.sha256(spec.digest() + nonce).hexdigest()


def worker_key_context(chain_id: int, market: str, task_id: int, worker: str) -> bytes:
    """Context of the envelope that gives ``worker`` the data key for ``task_id``."""
    return f"veritrain/key/v1/{chain_id}/{market.lower()}/task/{task_id}/{worker.lower()}".encode()


def referee_key_context(chain_id: int, market: str, dispute_id: int, referee: str) -> bytes:
    """Context of the envelope that gives a drawn referee the key for one dispute."""
    return f"veritrain/key/v1/{chain_id}/{market.lower()}/dispute/{dispute_id}/{referee.lower()}".encode()


def verifier_key_context(chain_id: int, market: str, job_id: int, verifier: str) -> bytes:
    """Context of the envelope that lets a sampling verifier replay a job's tasks."""
    return f"veritrain/key/v1/{chain_id}/{market.lower()}/job/{job_id}/{verifier.lower()}".encode()


def checkpoint_binding(doc: JobDocument, task_id: int, worker: str) -> str:
    """The ``job_id`` checkpoints are encrypted under (``shard_index`` = checkpoint index)."""
    return f"{doc.binding}/task/{task_id}/{worker.lower()}/checkpoint"

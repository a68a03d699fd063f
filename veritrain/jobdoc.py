"""The job document: what a job's on-chain ``specCid`` points to.

A job's shards are encrypted and uploaded *before* the job exists on-chain, so the
document binds them to the spec rather than to an on-chain id:

    {"version": 2, "spec": <JobSpec>, "binding": "<hex>", "shards": [ShardRef, ...],
     "round": r, "initial_model": InitialModelRef | null}

Version 2 (docs/spec/README.md, section 3): the document, ``shardsRoot`` and the spec digest
inside ``binding`` are RFC 8785 canonical JSON (:func:`veritrain.canon.jcs`). A version-1
document (Python's JSON text, floats and all) is refused by name, not misread.

- ``binding`` = sha256(spec digest || requester nonce): the ``job_id`` every ciphertext of
  the job is encrypted under (veritrain.crypto's associated data), so a shard or checkpoint
  of one job cannot be passed off as another's.
- ``shards_root()`` is what ``postJob`` takes as ``shardsRoot``: the contract holds a
  commitment to exactly these CIDs and ciphertext hashes.

The contexts below name what each key envelope and checkpoint ciphertext is for; every
role builds them with these functions and nothing else.

Rounds (``spec.rounds > 1``, FedAvg / DiLoCo style): every round is its own on-chain job of
``num_shards`` tasks, and its document says which round it is (``round``, 0-based). All
rounds share the spec, the shards, the binding (so the shard keys workers receive are the
same in every round) and the requester's job key. Round ``r > 0`` starts from round
``r - 1``'s FedAvg aggregate, the *initial model*:

- plaintext: :func:`encode_initial_model`, the canonical checkpoint encoding
  (:mod:`veritrain.checkpoint`) of the aggregate's ``model/`` tensors with meta
  ``{"format", "job" (spec digest), "binding", "round"}``; ``initial_model.digest`` is its
  sha256, so anyone holding a shard key checks a copy (and, through the engine, the task's
  ``h_0``) against the document;
- it is derived from private data, so it is published only encrypted. Key choice: one copy
  per shard, encrypted under *that shard's key* (``crypto.shard_key(job key, binding,
  shard)``), ``job_id = initial_model_binding(binding, round)``, ``shard_index = shard``. A
  worker only ever receives its task's shard key, so key delivery is unchanged: the envelope
  it already gets opens its shard and its copy of the initial model, nothing else. (One copy
  under the job key would need a second envelope per claim; one copy per shard costs
  ``num_shards`` uploads of the model, small next to the shards.)
- ``initial_model.copies`` lists each copy's CID, ciphertext sha256 and size, like
  :class:`ShardRef`; ``initial_model.previous_job`` names the on-chain job of round ``r - 1``.

Every document carries ``round`` and ``initial_model`` (``null`` in round 0), and
``shards_root()`` commits to both, so ``postJob``'s ``shardsRoot`` binds them.

Two keys describe the data (``null`` when the spec declares no preprocessing and the labels
are numbers):

- ``preprocessing``: ``{"kind", "offset", "scale"}``, the per-feature transform the requester
  fitted on its training split (:func:`veritrain.data.fit_transform`). Shards hold the raw
  features; every worker and verifier applies this transform after decrypting a shard
  (:func:`open_shard`), and the requester applies it to its held-out set, so all of them train,
  replay and evaluate on the same float32 numbers.
- ``label_classes``: the text labels of a CSV in class order (class ``i`` is
  ``label_classes[i]``), so a prediction can be read back as the requester's own label.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from veritrain import crypto
from veritrain.canon import jcs
from veritrain.checkpoint import CheckpointState, decode, encode
from veritrain.data import Dataset, Transform, decode_shard, spec_checks
from veritrain.errors import CheckpointFormatError, IntegrityError, SpecError
from veritrain.spec import JobSpec, TaskKey
from veritrain.tasks import INDEX_MASK

DOC_VERSION: Literal[2] = 2
SCHEMA_PATH = Path(__file__).parent / "schemas" / "jobdoc.schema.json"
INITIAL_MODEL_FORMAT = "veritrain-initial-model/1"


class BlobRef(BaseModel):
    """A ciphertext on IPFS as the document promises it: whoever fetches it checks the CID,
    the sha256 and the size before decrypting. (Canonical JSON sorts keys, so field order
    does not reach any hash.)"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cid: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the ciphertext")
    size: int = Field(ge=0, description="ciphertext bytes")


class ShardRef(BlobRef):
    """One encrypted shard on IPFS."""

    index: int = Field(ge=0)
    examples: int = Field(ge=0)


class ModelCopyRef(BlobRef):
    """One encrypted copy of a round's initial model on IPFS (under shard ``shard``'s key)."""

    shard: int = Field(ge=0)


class InitialModelRef(BaseModel):
    """Where round ``r > 0`` starts: round ``r - 1``'s aggregate, one encrypted copy per shard."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str = Field(pattern=r"^[0-9a-f]{64}$",
                        description="sha256 of the plaintext (encode_initial_model)")
    previous_job: int = Field(ge=1, description="the on-chain job of the previous round")
    copies: tuple[ModelCopyRef, ...]

    def copy_for(self, shard: int) -> ModelCopyRef:
        for ref in self.copies:
            if ref.shard == shard:
                return ref
        raise SpecError([f"initial_model.copies: no copy for shard {shard}"])


class PreprocessingRef(BaseModel):
    """The fitted transform as published: ``(x - offset) / scale`` per feature, in float32."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["standardize", "minmax"]
    offset: tuple[float, ...] = Field(min_length=1)
    scale: tuple[float, ...] = Field(min_length=1)

    def transform(self) -> Transform:
        return Transform(self.kind, self.offset, self.scale)

    @classmethod
    def of(cls, t: Transform) -> PreprocessingRef:
        return cls(kind=t.kind, offset=t.offset, scale=t.scale)  # type: ignore[arg-type]


class JobDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[2] = DOC_VERSION
    spec: JobSpec
    binding: str = Field(pattern=r"^[0-9a-f]{64}$")
    shards: tuple[ShardRef, ...]
    round: int = Field(default=0, ge=0, description="which round of the spec this job trains")
    initial_model: InitialModelRef | None = None
    preprocessing: PreprocessingRef | None = Field(
        default=None, description="the transform fitted on the training split (null: none)")
    label_classes: tuple[str, ...] | None = Field(
        default=None, description="text labels in class order (null: numeric labels)")

    @classmethod
    def create(cls, spec: JobSpec, shards: list[ShardRef], nonce: bytes, *,
               transform: Transform | None = None, classes: tuple[str, ...] | None = None) -> JobDocument:
        pre = PreprocessingRef.of(transform) if transform is not None else None
        return cls(spec=spec, binding=binding_for(spec, nonce),
                   shards=tuple(shards), preprocessing=pre, label_classes=classes)

    def transform(self) -> Transform | None:
        """The transform workers, verifiers and the requester apply to this job's features."""
        return self.preprocessing.transform() if self.preprocessing is not None else None

    def next_round(self, initial_model: InitialModelRef) -> JobDocument:
        """The document of the round after this one: same spec, shards and binding."""
        doc = self.model_copy(update={"round": self.round + 1, "initial_model": initial_model})
        doc.check()
        return doc

    def problems(self) -> list[str]:
        """Cross-field problems: shard coverage, round range, the initial model's presence."""
        out = []
        spec = self.spec
        indices = sorted(r.index for r in self.shards)
        if indices != list(range(spec.num_shards)):
            out.append(f"shards: indices {indices} do not cover 0..{spec.num_shards - 1}")
        if self.round >= spec.rounds:
            out.append(f"round: {self.round} is outside the spec's {spec.rounds} round(s) "
                       f"(0..{spec.rounds - 1})")
        im = self.initial_model
        if self.round > 0 and im is None:
            out.append(f"initial_model: round {self.round} must name the previous round's aggregate")
        if self.round == 0 and im is not None:
            out.append("initial_model: round 0 starts from the spec's seeded model; remove initial_model")
        out += self._data_problems()
        if im is not None:
            shards = sorted(c.shard for c in im.copies)
            if shards != list(range(spec.num_shards)):
                out.append(f"initial_model.copies: shards {shards} do not cover 0..{spec.num_shards - 1} "
                           "(one encrypted copy per shard)")
        return out

    def _data_problems(self) -> list[str]:
        out = []
        pre, want = self.preprocessing, self.spec.data.preprocessing
        if want != "none" and pre is None:
            out.append(f"preprocessing: the spec declares {want}; the document must publish its statistics")
        if pre is not None:
            if pre.kind != want:
                out.append(f"preprocessing.kind: {pre.kind}, but the spec declares {want}")
            features = int(np.prod(self.spec.data.input_shape))
            if len(pre.offset) != features or len(pre.scale) != features:
                out.append(f"preprocessing: offset and scale need {features} values (one per feature)")
            if not all(np.isfinite(pre.offset)) or not all(v > 0 and np.isfinite(v) for v in pre.scale):
                out.append("preprocessing: offsets must be finite and scales finite and > 0")
        if self.label_classes is not None:
            if len(set(self.label_classes)) != len(self.label_classes):
                out.append("label_classes: names must be distinct")
            if len(self.label_classes) > self.spec.data.num_classes:
                out.append(f"label_classes: {len(self.label_classes)} labels, but data.num_classes is "
                           f"{self.spec.data.num_classes}")
        return out

    def check(self, source: str | None = None) -> None:
        problems = self.problems()
        if problems:
            raise SpecError(problems, source)

    def task_key(self, task_id: int) -> TaskKey:
        """The (round, shard) task ``task_id`` (or a bare index) of this document's job trains.

        Every round is its own job of ``num_shards`` tasks: index ``s`` is shard ``s`` of
        round ``self.round``.
        """
        index = task_id & INDEX_MASK
        if index >= self.spec.num_shards:
            raise SpecError([f"task index {index}: a round's job has {self.spec.num_shards} tasks"])
        return TaskKey(round=self.round, shard=index)

    def shard(self, index: int) -> ShardRef:
        for ref in self.shards:
            if ref.index == index:
                return ref
        raise SpecError([f"shards: no shard {index} (job has {len(self.shards)})"])

    def canonical_json(self) -> str:
        """The document as RFC 8785 canonical JSON: the bytes uploaded, whose CID is ``specCid``."""
        return self.to_bytes().decode()

    def to_bytes(self) -> bytes:
        return jcs(self.model_dump(mode="json"))

    def shards_root(self) -> bytes:
        """``sha256(JCS({"initial_model", "round", "shards"}))``, shards by index: the
        ``shardsRoot`` bound on-chain (docs/spec, section 3)."""
        refs = [r.model_dump(mode="json") for r in sorted(self.shards, key=lambda r: r.index)]
        im = self.initial_model.model_dump(mode="json") if self.initial_model is not None else None
        return hashlib.sha256(jcs({"initial_model": im, "round": self.round, "shards": refs})).digest()

    @classmethod
    def from_bytes(cls, data: bytes, source: str | None = None) -> JobDocument:
        try:
            raw: Any = json.loads(data)
        except ValueError as exc:
            raise SpecError([f"job document is not JSON: {exc}"], source) from exc
        if not isinstance(raw, dict):
            raise SpecError(["job document must be a JSON object"], source)
        if raw.get("version") != DOC_VERSION:
            raise SpecError([f"version: job document version {raw.get('version')!r}; this build reads "
                             f"version {DOC_VERSION} only (RFC 8785 digests, docs/spec): post the job again "
                             "with this build"], source)
        spec = JobSpec.from_dict(raw.get("spec") or {}, source=source)  # every spec problem
        try:
            doc = cls.model_validate({**raw, "spec": spec})
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise SpecError(problems, source) from exc
        doc.check(source)
        return doc


def open_shard(doc: JobDocument, plain: bytes, source: str) -> Dataset:
    """A decrypted shard of ``doc``'s job as its model trains on it: decoded, checked against the
    spec, and the document's preprocessing applied. Workers and verifiers use this alone."""
    data = decode_shard(plain, source, **spec_checks(doc.spec))
    t = doc.transform()
    return t.apply_to(data) if t is not None else data


def schema_json() -> str:
    """The job document's JSON Schema, as written to :data:`SCHEMA_PATH`."""
    return json.dumps(JobDocument.model_json_schema(), indent=2, sort_keys=True) + "\n"


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


def scored_key_context(chain_id: int, contract: str, job_id: int, account: str) -> bytes:
    """Context of the envelope that gives a scored job's worker or validator its data key."""
    return f"veritrain/key/v1/{chain_id}/{contract.lower()}/scored/{job_id}/{account.lower()}".encode()


def checkpoint_binding(doc: JobDocument, task_id: int, worker: str) -> str:
    """The ``job_id`` checkpoints are encrypted under (``shard_index`` = checkpoint index)."""
    return f"{doc.binding}/task/{task_id}/{worker.lower()}/checkpoint"


def initial_model_binding(binding: str, round_: int) -> str:
    """The ``job_id`` round ``round_``'s initial-model copies are encrypted under
    (``shard_index`` = the shard whose key encrypts the copy)."""
    return f"{binding}/round/{round_}/initial-model"


def encode_initial_model(spec: JobSpec, binding: str, round_: int, tensors: dict[str, np.ndarray]) -> bytes:
    """The canonical plaintext of round ``round_``'s initial model: ``model/`` tensors only."""
    if round_ < 1:
        raise ValueError("round 0 has no initial model")
    model = {k: v for k, v in tensors.items() if k.startswith("model/")}
    if not model or len(model) != len(tensors):
        raise CheckpointFormatError("an initial model holds model/ tensors only (and at least one)")
    meta = {"format": INITIAL_MODEL_FORMAT, "job": spec.digest().hex(), "binding": binding, "round": round_}
    return encode(CheckpointState(meta=meta, tensors=model))


def seal_initial_model(plain: bytes, shard_key: bytes, binding: str, round_: int, shard: int) -> bytes:
    """Shard ``shard``'s copy of round ``round_``'s initial model, under that shard's key."""
    return crypto.encrypt_bytes(plain, shard_key, job_id=initial_model_binding(binding, round_),
                                shard_index=shard)


def open_initial_model(doc: JobDocument, ciphertext: bytes, shard_key: bytes, shard: int) -> bytes:
    """The canonical plaintext of ``doc``'s initial-model copy for ``shard``, decrypted with
    that shard's key and checked against the document (:func:`decode_initial_model`)."""
    try:
        plain = crypto.decrypt_bytes(ciphertext, shard_key, shard_index=shard,
                                     job_id=initial_model_binding(doc.binding, doc.round))
    except IntegrityError as exc:
        raise IntegrityError(f"the initial model for shard {shard} does not open with this task's key "
                             f"(tampered, or under another key): {exc}") from None
    decode_initial_model(doc, plain)
    return plain


def decode_initial_model(doc: JobDocument, plain: bytes) -> dict[str, np.ndarray]:
    """The ``model/`` tensors of ``doc``'s initial model from its plaintext, checked against the
    document's digest and meta; :class:`IntegrityError` naming what is wrong."""
    im = doc.initial_model
    if im is None:
        raise IntegrityError(f"round {doc.round} has no initial model")
    got = hashlib.sha256(plain).hexdigest()
    if got != im.digest:
        raise IntegrityError(f"the initial model hashes to {got[:16]}..., the job document promises "
                             f"{im.digest[:16]}...: not the previous round's aggregate")
    try:
        state = decode(plain)
    except CheckpointFormatError as exc:
        raise IntegrityError(f"the initial model is not a canonical model encoding: {exc}") from None
    want = {"format": INITIAL_MODEL_FORMAT, "job": doc.spec.digest().hex(), "binding": doc.binding,
            "round": doc.round}
    wrong = [k for k, v in want.items() if state.meta.get(k) != v]
    if wrong:
        raise IntegrityError(f"the initial model is not this job's round {doc.round} "
                             f"(mismatch: {', '.join(wrong)})")
    return state.tensors


if __name__ == "__main__":  # python -m veritrain.jobdoc: rewrite the schema
    SCHEMA_PATH.write_text(schema_json())
    print(f"wrote {SCHEMA_PATH}")

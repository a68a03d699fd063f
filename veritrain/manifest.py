"""The manifest a worker uploads with its checkpoints: what its committed root covers.

RFC 8785 canonical JSON (:func:`veritrain.canon.jcs`; docs/spec, section 13) so every party
derives the same bytes and therefore the same CID. Loading validates everything and checks
that ``root`` is the Merkle root (:mod:`veritrain.merkle`) of ``hashes``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from veritrain import merkle
from veritrain.canon import jcs
from veritrain.envelope import to_checksum_address
from veritrain.errors import ManifestError
from veritrain.storage.cid import Cid, decode_cid

SCHEMA_VERSION = 1
_HEX32 = re.compile(r"^0x[0-9a-f]{64}$")
_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _hex32(v: str) -> str:
    if not _HEX32.match(v):
        raise ValueError("must be 0x followed by 64 lowercase hex digits")
    return v


def _cid(v: str) -> str:
    decode_cid(v)
    return v


def _address(v: str) -> str:
    if not _ADDR.match(v):
        raise ValueError("must be a 0x-prefixed 20-byte address")
    return to_checksum_address(bytes.fromhex(v[2:]))


Hex32 = Annotated[str, AfterValidator(_hex32)]
CidStr = Annotated[str, AfterValidator(_cid)]
Address = Annotated[str, AfterValidator(_address)]


class Manifest(BaseModel):
    """Checkpoint hashes ``h_0..h_n`` (every ``k`` steps), their CIDs and the Merkle root."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    spec_cid: CidStr
    job_id: int = Field(ge=0)
    task_id: int = Field(ge=0)
    worker: Address
    k: int = Field(gt=0, description="steps between checkpoints")
    hashes: list[Hex32] = Field(min_length=1)
    checkpoint_cids: list[CidStr] = Field(min_length=1)
    root: Hex32
    #: Optional, informational: the worker's mean loss of checkpoint ``i`` on its own shard
    #: (what the explorer draws). Not covered by ``root``: nobody can check it without the key.
    losses: list[float] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _no_null_losses(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "losses" in raw and raw["losses"] is None:
            raise ValueError("losses: leave the member out rather than null (its bytes would not round-trip)")
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(self.checkpoint_cids) != len(self.hashes):
            raise ValueError(
                f"{len(self.hashes)} hashes but {len(self.checkpoint_cids)} checkpoint CIDs: "
                "there must be one CID per checkpoint"
            )
        if self.losses is not None:
            if len(self.losses) != len(self.hashes):
                raise ValueError(f"{len(self.hashes)} hashes but {len(self.losses)} losses: there must "
                                 "be one loss per checkpoint, or no losses member")
            if not all(math.isfinite(x) and x >= 0 for x in self.losses):
                raise ValueError("losses must be finite numbers >= 0")
        expected = merkle.MerkleTree(self.hashes).root_hex
        if self.root != expected:
            raise ValueError(f"root {self.root} is not the Merkle root of the hashes ({expected})")
        return self

    @classmethod
    def build(cls, *, spec_cid: str, job_id: int, task_id: int, worker: str, k: int,
              hashes: list[bytes], checkpoint_cids: list[str],
              losses: list[float] | None = None) -> Manifest:
        """A manifest whose root is computed here from ``hashes`` (32-byte digests); ``losses``
        (one per checkpoint) is the optional loss curve."""
        hexes = ["0x" + bytes(h).hex() for h in hashes]
        root = merkle.MerkleTree(hashes).root_hex if hashes else "0x" + "00" * 32
        raw: dict[str, Any] = dict(spec_cid=spec_cid, job_id=job_id, task_id=task_id, worker=worker, k=k,
                                   hashes=hexes, checkpoint_cids=checkpoint_cids, root=root)
        if losses is not None:
            raw["losses"] = [float(x) for x in losses]
        return load_dict(raw)

    def canonical_json(self) -> bytes:
        # an absent loss curve is no member at all (not null): manifests without one keep their CID
        return jcs(self.model_dump(mode="json", exclude_none=True))

    @property
    def n_checkpoints(self) -> int:
        return len(self.hashes)

    def hash_bytes(self, i: int) -> bytes:
        return bytes.fromhex(self.hashes[i][2:])

    def root_bytes(self) -> bytes:
        return bytes.fromhex(self.root[2:])

    def cid_of(self, i: int) -> Cid:
        return Cid(self.checkpoint_cids[i])

    def proof(self, i: int) -> list[bytes]:
        return merkle.MerkleTree(self.hashes).proof(i)


def _problems(exc: ValidationError) -> str:
    out = []
    for e in exc.errors():
        path = ".".join(str(p) for p in e["loc"]) or "manifest"
        msg = e["msg"].removeprefix("Value error, ")
        out.append(f"{path}: {msg}")
    return "; ".join(out)


def load_dict(raw: Any, source: str = "manifest") -> Manifest:
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"invalid manifest {source}: {_problems(exc)}") from None


def load(data: bytes | str, source: str = "manifest") -> Manifest:
    """Parse and validate manifest JSON; raises ManifestError listing every problem."""
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {source} is not JSON: {exc}") from None
    return load_dict(raw, source)

"""The requester's local job records: what it needs to resume a job after a restart.

A multi-round job is one record (its public id is round 0's on-chain id); ``rounds`` lists
every later round's on-chain job, document and initial model, ``terms`` what each round pays.

One JSON file per job, mode 0600, under
``<home>/requester/<chain id>-<market>/jobs/<job id>.json`` (``home`` = ``VERITRAIN_HOME``,
default ``.veritrain``). The job's data key is stored *sealed*: wrapped (ECIES,
:mod:`veritrain.envelope`) to the requester account's own public key, so the file alone does
not reveal it — only the account's private key opens it.

A record is first written under ``pending/<document CID>.json`` before ``postJob`` is sent
and moved to ``jobs/`` once the job id is known, so a crash between the two never loses the
key of a job that did get posted (:meth:`JobStore.pending` lists them for recovery).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from requester.errors import UnknownJobError
from veritrain import envelope
from veritrain.errors import ConfigError

RECORD_VERSION = 1
R = TypeVar("R", bound=BaseModel)


class RoundRecord(BaseModel):
    """Round ``round >= 1`` of a multi-round job (round 0 is the record's own fields).

    Written (``job_id`` None: *uploaded*) after its initial model copies and document are on
    IPFS and before ``postJob`` is sent; completed (*posted*) once the job id is known. A
    restart finds an uploaded round's job through ``JobPosted`` with its ``doc_cid`` before
    posting it, so the round is neither posted twice nor lost.
    """

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=1)
    doc_cid: str
    shards_root: str
    initial_model_digest: str = Field(description="sha256 of the initial model's plaintext")
    previous_job: int = Field(description="the on-chain job of round - 1")
    previous_aggregate: str = Field(description="0x sha256 of round - 1's aggregate (canonical encoding)")
    job_id: int | None = None
    post_block: int | None = None
    post_tx: str | None = None
    approve_tx: str | None = None
    uploaded: float = Field(default_factory=time.time)


class Terms(BaseModel):
    """What every round's ``postJob`` pays (token units); kept to post later rounds."""

    model_config = ConfigDict(extra="forbid")

    reward_per_task: int
    stake_per_task: int
    griefing_fee: int
    referee_fee_pool: int
    approve: bool = True


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = RECORD_VERSION
    chain_id: int
    market: str
    requester: str
    job_id: int | None = None
    doc_cid: str
    binding: str
    sealed_key: str = Field(description="the data key, ECIES-wrapped to the requester's own key")
    shards_root: str
    post_block: int | None = None
    post_tx: str | None = None
    approve_tx: str | None = None
    holdout: str | None = Field(default=None, description="path of the held-out set (.npz, 0600)")
    created: float = Field(default_factory=time.time)
    # multi-round jobs (spec.rounds > 1); absent in single-round records
    terms: Terms | None = None
    rounds: list[RoundRecord] = Field(default_factory=list, description="rounds 1.. (round 0 is above)")
    cancelled: bool = Field(default=False, description="cancelled by the requester: post no more rounds")


def _context(doc_cid: str) -> bytes:
    return f"veritrain/requester/job-key/v1/{doc_cid}".encode()


def seal_key(data_key: bytes, account: Any, doc_cid: str) -> str:
    pub = envelope.public_key_from_private(bytes(account.key))
    return envelope.wrap(data_key, pub, _context(doc_cid)).hex()


def unseal_key(record: JobRecord | ScoredRecord, account: Any) -> bytes:
    if account.address.lower() != record.requester.lower():
        raise ConfigError(f"job {record.job_id} was posted by {record.requester}; the account "
                          f"{account.address} cannot open its data key")
    return envelope.unwrap(bytes.fromhex(record.sealed_key), bytes(account.key), _context(record.doc_cid))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class _Records(Generic[R]):
    """Record files of one kind: ``jobs_dir/<job id>.json`` once posted, ``pending_dir/<document
    CID>.json`` before."""

    model: type[R]
    #: Folder names under ``<home>/requester/<chain id>-<contract>/``.
    folders: tuple[str, str] = ("jobs", "pending")

    def __init__(self, home: Path, chain_id: int, contract: str) -> None:
        self.root = Path(home) / "requester" / f"{chain_id}-{contract.lower()}"
        self.jobs_dir, self.pending_dir = (self.root / name for name in self.folders)

    def job_ids(self) -> list[int]:
        if not self.jobs_dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.jobs_dir.glob("*.json") if p.stem.isdigit())

    def pending(self) -> list[R]:
        if not self.pending_dir.is_dir():
            return []
        return [self.model.model_validate(json.loads(p.read_text()))
                for p in sorted(self.pending_dir.glob("*.json"))]


class JobStore(_Records[JobRecord]):
    model = JobRecord

    def path(self, job_id: int) -> Path:
        return self.jobs_dir / f"{job_id}.json"

    def holdout_path(self, doc_cid: str) -> Path:
        return self.root / "holdout" / f"{doc_cid}.npz"

    def save_pending(self, record: JobRecord) -> Path:
        path = self.pending_dir / f"{record.doc_cid}.json"
        _write_private(path, record.model_dump_json(indent=2))
        return path

    def save(self, record: JobRecord) -> Path:
        if record.job_id is None:
            raise ValueError("a posted job record needs its job id")
        path = self.path(record.job_id)
        _write_private(path, record.model_dump_json(indent=2))
        (self.pending_dir / f"{record.doc_cid}.json").unlink(missing_ok=True)
        return path

    def load(self, job_id: int) -> JobRecord:
        path = self.path(job_id)
        try:
            return JobRecord.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise UnknownJobError(
                f"no job {job_id} of this requester on this deployment (looked for {path}); "
                "`veritrain job list` shows the jobs posted from this machine"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"job record {path} is damaged: {exc}") from None



class ScoredRecord(BaseModel):
    """A scored job posted from here: what ``veritrain job serve`` needs to answer its key
    requests after a restart (docs/scored.md)."""

    model_config = ConfigDict(extra="forbid")

    version: int = RECORD_VERSION
    chain_id: int
    contract: str = Field(description="the ScoredRounds address")
    requester: str
    job_id: int | None = None
    doc_cid: str
    sealed_key: str = Field(description="the data key, ECIES-wrapped to the requester's own key")
    windows: int
    created: float = Field(default_factory=time.time)


class ScoredStore(_Records[ScoredRecord]):
    """Scored job records, one JSON file (0600) per job under
    ``<home>/requester/<chain id>-<ScoredRounds>/scored/<job id>.json``; written first under
    ``pending/<document CID>.json`` before ``postJob`` is sent, as :class:`JobStore` does, so a
    crash between the two never loses the key of a job that did get posted."""

    model = ScoredRecord
    folders = ("scored", "scored-pending")

    def save(self, record: ScoredRecord) -> Path:
        """Pending while ``record.job_id`` is None, posted once it is known."""
        if record.job_id is None:
            path = self.pending_dir / f"{record.doc_cid}.json"
        else:
            path = self.jobs_dir / f"{record.job_id}.json"
        _write_private(path, record.model_dump_json(indent=2))
        if record.job_id is not None:
            (self.pending_dir / f"{record.doc_cid}.json").unlink(missing_ok=True)
        return path

    def load(self, job_id: int) -> ScoredRecord:
        path = self.jobs_dir / f"{job_id}.json"
        try:
            return ScoredRecord.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise UnknownJobError(f"no scored job {job_id} of this requester (looked for {path})") from None
        except ValueError as exc:
            raise ConfigError(f"scored job record {path} is damaged: {exc}") from None


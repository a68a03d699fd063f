"""Where a verifier gets data keys.

- Referee duty: the requester (or a worker party) delivers the key on-chain,
  ``RefereeKeyDelivered(disputeId, referee, envelope)``, wrapped under
  :func:`veritrain.jobdoc.referee_key_context`.
- Sampling: a job whose policy lets this verifier replay gives it an envelope under
  :func:`veritrain.jobdoc.verifier_key_context`. The contracts have no on-chain request for it
  yet, so envelopes arrive out of band and are dropped in ``<home>/keys/job-<id>.envelope``
  (raw bytes or hex); :class:`DirectoryKeySource` opens them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from veritrain.envelope import unwrap
from veritrain.errors import DecryptionError
from veritrain.jobdoc import verifier_key_context


class KeySource(Protocol):
    def job_key(self, job_id: int) -> bytes | None:
        """The job's data key, or None when this verifier has not been given it."""


def _read_envelope(path: Path) -> bytes:
    raw = path.read_bytes()
    text = raw.strip()
    try:
        return bytes.fromhex(text.decode().removeprefix("0x"))
    except (UnicodeDecodeError, ValueError):
        return raw


class DirectoryKeySource:
    def __init__(self, folder: Path, private_key: bytes, chain_id: int, market: str, me: str) -> None:
        self.folder = Path(folder)
        self.private_key = private_key
        self.chain_id = chain_id
        self.market = market
        self.me = me

    def path(self, job_id: int) -> Path:
        return self.folder / f"job-{job_id}.envelope"

    def job_key(self, job_id: int) -> bytes | None:
        path = self.path(job_id)
        if not path.exists():
            return None
        ctx = verifier_key_context(self.chain_id, self.market, job_id, self.me)
        try:
            return unwrap(_read_envelope(path), self.private_key, ctx)
        except DecryptionError as exc:
            raise DecryptionError(f"{path}: {exc}") from None

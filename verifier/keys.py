"""Where a verifier gets data keys.

- Referee duty: the requester (or a worker party) delivers the key on-chain,
  ``RefereeKeyDelivered(disputeId, referee, envelope)``, wrapped under
  :func:`veritrain.jobdoc.referee_key_context`.
- Sampling: :class:`ChainKeySource` asks for the job key on-chain
  (``JobMarket.requestVerifierKey``, once per job, journaled as ``vkey:<job>``) and reads the
  requester's answer from ``VerifierKeyDelivered(jobId, verifier, envelope)``, wrapped under
  :func:`veritrain.jobdoc.verifier_key_context`. It is the job key: a sampling verifier must be
  able to replay any task of the job. Whether a job admits this verifier is the JobSpec's
  ``verification.verifiers`` rule, applied by the requester's key service.
- :class:`DirectoryKeySource` still opens an envelope dropped in ``<home>/keys/job-<id>.envelope``
  (raw bytes or hex) by an operator; it is consulted first, without any request.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from veritrain.chain.states import VerifierKeyStatus
from veritrain.envelope import unwrap
from veritrain.errors import ContractRevert, DecryptionError
from veritrain.jobdoc import verifier_key_context
from veritrain.journal import Journal

log = logging.getLogger("veritrain.verifier.keys")


class KeySource(Protocol):
    def job_key(self, job_id: int) -> bytes | None:
        """The job's data key, or None when this verifier has not been given it."""

    def pending(self, job_id: int) -> bool:
        """True while the key may still come (asked for, not answered yet)."""


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

    def pending(self, job_id: int) -> bool:
        return False

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


class ChainKeySource:
    """Job keys asked for and delivered on-chain; ``file`` (if given) is consulted first."""

    def __init__(self, chain: Any, journal: Journal, file: DirectoryKeySource | None = None) -> None:
        self.chain = chain
        self.journal = journal
        self.file = file

    def _unwrap(self, job_id: int, env: bytes) -> bytes:
        ctx = verifier_key_context(self.chain.chain_id, self.chain.market.address, job_id, self.chain.address)
        try:
            return unwrap(env, self.chain.private_key(), ctx)
        except DecryptionError as exc:
            raise DecryptionError(f"job {job_id}: the requester's verifier key envelope: {exc}") from None

    def job_key(self, job_id: int) -> bytes | None:
        if self.file is not None and self.file.path(job_id).exists():
            return self.file.job_key(job_id)
        key = f"vkey:{job_id}"
        item = self.journal.get(key)
        if item is not None and item.data.get("envelope"):
            return self._unwrap(job_id, bytes.fromhex(item.data["envelope"][2:]))
        if item is not None and item.phase == "refused":
            return None
        status = self.chain.verifier_key_status(job_id)
        if status == VerifierKeyStatus.DELIVERED:  # the envelope is in the event
            env = self._delivered(job_id, item)
            if env is not None:
                self.journal.put(key, "delivered", envelope="0x" + env.hex())
                return self._unwrap(job_id, env)
            return None
        if status == VerifierKeyStatus.REQUESTED:  # asked (by this or an earlier run): wait for the answer
            if item is None or item.phase != "requested":
                self.journal.put(key, "requested")
            return None
        # None on-chain: ask once (a journaled intent from a crashed run that never landed is
        # superseded; the status check above keeps a landed one from being sent twice)
        self.journal.put(key, item.phase if item is not None else "wanted",
                         asked_block=self.chain.block_number())  # the answer comes after this block
        try:  # journaled (a failure is recorded as failed by the send)
            self.chain.send(self.journal, key, "requestVerifierKey", self.chain.request_verifier_key(job_id))
        except ContractRevert as exc:
            self.journal.put(key, "refused", detail=str(exc))
            log.info("job %d: cannot ask for its key: %s", job_id, exc)
            return None
        self.journal.put(key, "requested")
        log.info("job %d: asked the requester for its data key on-chain", job_id)
        return None

    def _delivered(self, job_id: int, item: Any) -> bytes | None:
        """The envelope of ``VerifierKeyDelivered`` for this verifier and job, read (in pages) from
        the job's posting block as the watcher saw it, or the block this verifier asked at: a
        delivery cannot come before either. Without a record, from the deployment block."""
        data = item.data if item is not None else {}
        start = max(int(data.get("posted_block") or 0), int(data.get("asked_block") or 0))
        if start == 0:
            return self.chain.verifier_key_envelope(job_id)  # nothing recorded: from the deployment
        logs = self.chain.market.logs("VerifierKeyDelivered", start, jobId=job_id,
                                      verifier=self.chain.address)
        return bytes(logs[-1]["args"]["envelope"]) if logs else None

    def pending(self, job_id: int) -> bool:
        item = self.journal.get(f"vkey:{job_id}")
        return item is not None and item.phase == "requested"

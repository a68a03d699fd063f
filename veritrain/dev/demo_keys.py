"""WORKAROUND, stated in the demo's output: hand the sampling verifier its job-key envelope.

A verifier can only sample-replay a job's results with the job's data key, which it reads
from ``<verifier home>/keys/job-<id>.envelope`` (an envelope under
:func:`veritrain.jobdoc.verifier_key_context`; docs/verifier.md). The requester offers no
command that issues one and its key service delivers worker and referee keys only
(requester/keyservice.py), so nobody in the product can produce that file today. The
contracts gained ``requestVerifierKey``/``deliverVerifierKey`` in a5175ea; once the verifier
requests and the requester's key service answers through them, delete this module.

Until then the demo does it on the requester's behalf, out of band, as
the docs describe: it opens the requester's sealed job record with the requester's own
(dev) key and wraps the data key to the verifier's public key.

This is the one place the demo reaches past the chain and IPFS. It reads the requester's
record format (``sealed_key``, ``doc_cid`` and the sealing context of requester/store.py),
which it must not import; remove this module once the requester can grant the envelope.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from veritrain import envelope
from veritrain.jobdoc import verifier_key_context


def _record_path(requester_home: Path, chain_id: int, market: str, job_id: int) -> Path:
    return requester_home / "requester" / f"{chain_id}-{market.lower()}" / "jobs" / f"{job_id}.json"


def grant_sampling_key(requester_home: Path, requester: Any, verifier: Any, verifier_home: Path, *,
                       chain_id: int, market: str, job_id: int) -> Path:
    """Write ``job-<id>.envelope`` for ``verifier`` (a LocalAccount) from the requester's record."""
    record = json.loads(_record_path(requester_home, chain_id, market, job_id).read_text())
    sealing = f"veritrain/requester/job-key/v1/{record['doc_cid']}".encode()
    data_key = envelope.unwrap(bytes.fromhex(record["sealed_key"]), bytes(requester.key), sealing)
    pub = envelope.public_key_from_private(bytes(verifier.key))
    wrapped = envelope.wrap(data_key, pub, verifier_key_context(chain_id, market, job_id, verifier.address))
    path = verifier_home / "keys" / f"job-{job_id}.envelope"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(wrapped.hex())
    path.chmod(0o600)
    return path

"""Before anything is posted: shard, encrypt and upload the data, then the job document.

Shard ``index`` is encrypted under its own key, ``veritrain.crypto.shard_key(job key,
binding, index)``, derived from one fresh job key that never leaves the requester, with
``job_id = doc.binding`` and ``shard_index = index`` (veritrain.crypto's associated data), so
a shard cannot be passed off as another job's or another index's, and a worker given one
shard's key cannot open another shard. The binding is fixed (spec digest + a random nonce)
before the first shard is encrypted, and the document that lists the shards carries it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from requester.data import Dataset, split_holdout, split_shards
from veritrain import crypto
from veritrain.data import encode_shard, fit_transform
from veritrain.jobdoc import JobDocument, ShardRef, binding_for, new_nonce
from veritrain.spec import JobSpec
from veritrain.storage import Storage


@dataclass(frozen=True)
class PreparedJob:
    doc: JobDocument
    doc_cid: str
    data_key: bytes
    holdout: Dataset | None


def encrypt_and_upload_shards(spec: JobSpec, data: Dataset, storage: Storage, key: bytes,
                              binding: str) -> list[ShardRef]:
    refs = []
    for index, shard in enumerate(split_shards(spec, data)):
        ct = crypto.encrypt_bytes(encode_shard(shard), crypto.shard_key(key, binding, index), job_id=binding,
                                  shard_index=index)
        cid = storage.put_bytes(ct)
        refs.append(ShardRef(index=index, cid=cid, sha256=hashlib.sha256(ct).hexdigest(),
                             size=len(ct), examples=len(shard)))
    return refs


def prepare_job(spec: JobSpec, data: Dataset, storage: Storage, *, holdout: float = 0.2,
                holdout_data: Dataset | None = None) -> PreparedJob:
    """Split off the held-out set (unless given), shard, encrypt, upload; upload the document."""
    if holdout_data is None:
        train, held = split_holdout(spec, data, holdout)
    else:
        train, held = data, holdout_data
    # the declared preprocessing is fitted on the training split only (the held-out set must not
    # leak into it); shards stay raw and every role applies the published transform
    transform = fit_transform(spec.data.preprocessing, train.features)
    key = crypto.generate_data_key()
    nonce = new_nonce()
    binding = binding_for(spec, nonce)
    refs = encrypt_and_upload_shards(spec, train, storage, key, binding)
    doc = JobDocument.create(spec, refs, nonce, transform=transform, classes=data.classes)
    doc.check()
    assert doc.binding == binding
    doc_cid = storage.put_bytes(doc.to_bytes())
    return PreparedJob(doc=doc, doc_cid=doc_cid, data_key=key, holdout=held)

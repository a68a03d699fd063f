"""The requester's side of a scored job (docs/scored.md): post it to ScoredRounds, watch its
windows (participants, scores, payouts, the global model's loss) and fetch the final global
model by the aggregation rule.

The data key is generated here and returned to the caller; with ``home`` it is also kept there
(sealed to the requester's key), and ``veritrain job serve`` answers the job's key requests:
each worker and validator that joins gets it on-chain, wrapped to its own public key
(docs/spec/scored.md S2). ``ScoredChain.serve_keys`` does the same from the caller's process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from web3.logs import DISCARD

from requester.store import ScoredRecord, ScoredStore, seal_key, unseal_key
from veritrain import crypto
from veritrain.data import Dataset
from veritrain.errors import ConfigError
from veritrain.incentives import incentive_for
from veritrain.scored import aggregate
from veritrain.scored.chain import Phase, ScoredChain
from veritrain.scored.follow import GlobalModels
from veritrain.scored.job import ScoredJobDoc, put_dataset
from veritrain.scored.train import ScoredModel
from veritrain.spec import JobSpec
from veritrain.storage.base import Storage

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class ScoredTerms:
    """What ScoredRounds.postJob takes besides the document (token units; seconds)."""

    reward_per_window: int
    validator_fee_per_window: int
    worker_stake: int
    validator_stake: int
    submit_window: int = 60
    reveal_window: int = 30
    score_commit_window: int = 60
    score_reveal_window: int = 30
    max_submissions: int = 16
    max_validators: int = 8
    deviation_bps: int = 2000
    deviation_floor: int = 2000
    slash_bps: int = 5000


@dataclass(frozen=True)
class PostedScoredJob:
    job_id: int
    doc_cid: str
    data_key: bytes
    initial_model: bytes


def scored_store(chain: ScoredChain, home: Path) -> ScoredStore:
    """The requester's records of the scored jobs it posted on ``chain``'s ScoredRounds."""
    return ScoredStore(home, chain.chain_id, chain.c.address)


def post_scored_job(chain: ScoredChain, storage: Storage, spec: JobSpec, data: Dataset, terms: ScoredTerms,
                    *, data_key: bytes | None = None, home: Path | None = None,
                    **doc_fields: Any) -> PostedScoredJob:
    """Encrypt and store ``data`` (under ``data_key``, fresh when None), store the job document,
    approve the escrow and post the job. With ``home`` (the requester's home, as ``job serve``
    reads it) the data key is kept there, sealed to the requester's own key, before the job is
    posted: ``veritrain job serve`` then answers the job's key requests, also after a restart."""
    if incentive_for(spec).name != "scored":
        raise ConfigError(f"post_scored_job takes a spec with incentive: scored, not {spec.incentive!r}")
    from veritrain.training.engine import as_tensors

    key = bytes(crypto.generate_data_key()) if data_key is None else data_key
    data_cid, data_sha = put_dataset(storage, data, key)
    doc = ScoredJobDoc(spec=spec, data_cid=data_cid, data_sha256=data_sha, examples=len(data), **doc_fields)
    doc_cid = doc.put(storage)
    start = ScoredModel(spec, *as_tensors(spec, data.features, data.labels)).initial_state()
    initial = aggregate.model_hash(start)
    escrow = incentive_for(spec).round_escrow(spec, terms.reward_per_window, terms.validator_fee_per_window)
    params = (doc_cid, initial, spec.rounds, terms.max_submissions, terms.max_validators, terms.deviation_bps,
              terms.slash_bps, terms.reward_per_window, terms.validator_fee_per_window, terms.worker_stake,
              terms.validator_stake, terms.deviation_floor, terms.submit_window, terms.reveal_window,
              terms.score_commit_window, terms.score_reveal_window)
    store = scored_store(chain, home) if home is not None else None
    record = ScoredRecord(chain_id=chain.chain_id, contract=chain.c.address,
                          requester=chain.account.address, doc_cid=doc_cid, windows=spec.rounds,
                          sealed_key=seal_key(key, chain.account, doc_cid))
    if store is not None:
        store.save(record)  # pending: a crash after postJob still has the key
    chain.approve(escrow * spec.rounds)
    receipt = chain.send("postJob", params)
    job_id = chain.c.events.JobPosted().process_receipt(receipt, errors=DISCARD)[0]["args"]["jobId"]
    if store is not None:
        store.save(record.model_copy(update={"job_id": int(job_id)}))
    return PostedScoredJob(job_id, doc_cid, key, initial)


def serve_keys_once(chain: ScoredChain, store: ScoredStore) -> dict[int, list[str]]:
    """One pass over the scored jobs in ``store`` whose last window is not settled: answer every
    open key request (``chain``'s account must be their requester); job -> accounts answered."""
    for record in store.pending():  # posted, then the poster died before writing its job id
        mine = chain.logs("JobPosted", requester=record.requester)
        posted = [e for e in mine if e["args"]["specCid"] == record.doc_cid]
        if posted:
            store.save(record.model_copy(update={"job_id": int(posted[0]["args"]["jobId"])}))
    answered = {}
    for job_id in store.job_ids():
        record = store.load(job_id)
        if chain.phase(job_id, record.windows - 1) == Phase.SETTLED:
            continue
        answered[job_id] = chain.deliver_keys(job_id, unseal_key(record, chain.account))
    return answered


def watch(chain: ScoredChain, job_id: int, models: GlobalModels | None = None,
          eval_batches: list[list[int]] | None = None) -> list[dict[str, Any]]:
    """Per settled window: participants, scores, copies, payouts, slashes, validator fees, and
    (with ``models`` and ``eval_batches``) the loss of the window's resulting global model."""
    rows = []
    for w in range(chain.params(job_id)["windows"]):
        if chain.phase(job_id, w) != Phase.SETTLED:
            break
        settled = chain.settled(job_id, w)
        row: dict[str, Any] = {
            "window": w,
            "participants": [s.worker for s in settled],
            "scores": [s.score for s in settled],
            "copies": [s.copier for s in settled],
            "payouts": [s.payout for s in settled],
            "slashed": chain.slashed(job_id, w),
            "validator_fees": chain.validator_fees(job_id, w),
        }
        if models is not None and eval_batches is not None:
            state, _ = models.start(w + 1)
            row["global_loss"] = models.model.loss(state, eval_batches)
        rows.append(row)
    return rows


def final_model(models: GlobalModels, windows: int) -> tuple[dict[str, torch.Tensor], str]:
    """The global model after the last window (every window settled) and its hash."""
    return models.start(windows)

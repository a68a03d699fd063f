"""``job.result()``: verified task results -> FedAvg -> evaluation on the held-out set.

A multi-round job is verified round by round (:func:`verify_round`): every finalized result
against its on-chain root, round ``r > 0``'s ``h_0`` against its published initial model, and
round ``r``'s initial model against round ``r - 1``'s aggregate recomputed here. The result is
the final round's aggregate; the provenance lists every round.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requester.aggregate import aggregate_state
from requester.errors import JobNotReadyError, ResultIntegrityError
from requester.result import Provenance, TaskResult, verify_task
from veritrain import crypto
from veritrain.checkpoint import CheckpointState, encode_and_hash
from veritrain.errors import IntegrityError
from veritrain.jobdoc import JobDocument, encode_initial_model, open_initial_model


@dataclass
class JobResult:
    model: Any  # torch.nn.Module with the aggregated weights
    state: CheckpointState
    metrics: dict[str, Any]
    provenance: Provenance
    spec: Any = None  # the JobSpec (saved so `veritrain audit` can rebuild the model)
    transform: Any = None  # the job's published preprocessing (veritrain.data.Transform) or None

    def save(self, path: str | Path) -> Path:
        """The model's weights as safetensors; the metrics, provenance, JobSpec and the job's
        preprocessing in its metadata."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k.removeprefix("model/"): v for k, v in self.state.tensors.items()}
        meta = {"veritrain.metrics": json.dumps(self.metrics, sort_keys=True),
                "veritrain.provenance": json.dumps(self.provenance.to_dict(), sort_keys=True)}
        if self.spec is not None:
            meta["veritrain.spec"] = self.spec.canonical_json()
        if self.transform is not None:
            t = self.transform
            meta["veritrain.transform"] = json.dumps({"kind": t.kind, "offset": list(t.offset),
                                                      "scale": list(t.scale)})
        save_file(tensors, str(path), metadata=meta)
        return path


@dataclass
class RoundOutcome:
    """One round's verified results and their FedAvg aggregate."""

    round: int
    job_id: int
    results: list[TaskResult]
    weights: list[int]
    aggregate: CheckpointState
    aggregate_hash: bytes


def initial_model_plain(doc: JobDocument, data_key: bytes, storage: Any, shard: int) -> bytes:
    """The requester opens its own published copy for ``shard`` (checked against the digest)."""
    assert doc.initial_model is not None
    ref = doc.initial_model.copy_for(shard)
    try:
        key = crypto.shard_key(data_key, doc.binding, shard)
        plain = open_initial_model(doc, storage.get_bytes(ref.cid), key, shard)
    except IntegrityError as exc:
        raise ResultIntegrityError(f"round {doc.round}: the published initial model for shard {shard} "
                                   f"({ref.cid}) is unusable: {exc}") from None
    return plain


def expected_start(doc: JobDocument, data_key: bytes, storage: Any, shard: int) -> bytes:
    """``h_0`` of round ``doc.round``'s task on ``shard``, from the published initial model
    (under the job's replay profile, set while torch is unloaded, as :mod:`veritrain.starts`)."""
    from veritrain.training.runner import in_process_ok, model_state_of

    in_process_ok(doc.spec)
    from veritrain.training.engine import start_hash

    plain = initial_model_plain(doc, data_key, storage, shard)
    return start_hash(doc.spec, doc.task_key(shard), model_state_of(plain))


def verify_round(job: Any, rj: Any, *, require_all: bool = True) -> RoundOutcome:
    """Round ``rj`` (a :class:`requester.sdk.RoundJob`, posted) verified and aggregated."""
    from requester.status import round_status

    market, storage = job.requester.market, job.requester.storage
    doc, key, spec = job.round_doc(rj.round), job.data_key, job.spec
    st = round_status(market, rj.job_id, rj.post_block, doc)
    pending = [t for t in st.tasks if t.finalized == 0]
    if pending and (require_all or len(pending) == len(st.tasks)):
        where = f"job {job.id}" + (f" round {rj.round} (on-chain job {rj.job_id})" if spec.rounds > 1 else "")
        raise JobNotReadyError(
            f"{where}: {len(pending)} of {len(st.tasks)} tasks have no finalized result yet "
            f"(tasks {', '.join(str(t.index) for t in pending[:8])}); `job.wait()` first")
    states, weights, results = [], [], []
    for t in st.tasks:
        used = False
        shard = doc.task_key(t.task_id).shard
        h0 = expected_start(doc, key, storage, shard) if doc.round > 0 and t.finalized else None
        for c in t.claims:
            if c.phase != "finalized" or c.manifest_cid is None:
                continue
            claim = market.get_claim(t.task_id, c.worker)
            state, res = verify_task(doc, storage, crypto.shard_key(key, doc.binding, shard),
                                     task_id=t.task_id, shard=shard, worker=c.worker, onchain_root=claim.root,
                                     manifest_cid=c.manifest_cid, checkpoint_count=spec.num_checkpoints,
                                     expected_h0=h0)
            res = TaskResult(**{**res.__dict__, "reveal_tx": c.txs.get("ResultRevealed"),
                                "finalize_tx": c.txs.get("ClaimFinalized"),
                                "key_tx": c.txs.get("KeyDelivered")})
            results.append(res)
            if not used:  # one result per shard enters the average
                states.append(state)
                weights.append(res.examples)
                used = True
    meta: dict[str, object] = {"job": spec.digest().hex(), "aggregate": "fedavg", "job_id": rj.job_id}
    if spec.rounds > 1:
        meta["round"] = rj.round
    agg = aggregate_state(states, weights, meta=meta)
    _, agg_hash = encode_and_hash(agg)
    return RoundOutcome(rj.round, rj.job_id, results, weights, agg, agg_hash)


def baseline_metrics(spec: Any, held: Any) -> dict[str, Any]:
    """What the trained model must beat on the same held-out set: the majority class (the best
    constant guess) and the untrained model (the spec's seeded initial weights)."""
    import numpy as np

    from veritrain.spec import TaskKey
    from veritrain.training import state as tstate
    from veritrain.training.engine import evaluate

    labels = np.asarray(held.labels).reshape(-1)
    majority = float(np.bincount(labels).max() / labels.size) if labels.size else 0.0
    task = TaskKey(round=0, shard=0)
    start = tstate.capture(spec, task, tstate.initial(spec, task))
    untrained = evaluate(spec, start, held.features, held.labels)
    out = {"baseline_majority_accuracy": majority, "baseline_untrained_accuracy": untrained.accuracy}
    if untrained.perplexity is not None:
        out["baseline_untrained_perplexity"] = untrained.perplexity
    return out


def job_result(job: Any, *, require_all: bool = True) -> JobResult:
    spec = job.spec
    rounds = job.rounds
    if spec.rounds > 1:
        st = job.status()
        if st.rounds_posted < spec.rounds:
            raise JobNotReadyError(f"job {job.id}: round {st.round + 1} of {spec.rounds} is under way; "
                                   "`job.wait()` first (it advances the rounds)")
    outcomes: list[RoundOutcome] = []
    for rj in rounds:
        last = rj.round == len(rounds) - 1
        out = verify_round(job, rj, require_all=require_all or not last)
        if outcomes:  # round r started from round r-1's aggregate, recomputed here
            prev = outcomes[-1]
            doc = job.round_doc(rj.round)
            plain = encode_initial_model(spec, doc.binding, rj.round, prev.aggregate.tensors)
            assert doc.initial_model is not None
            if hashlib.sha256(plain).hexdigest() != doc.initial_model.digest:
                raise ResultIntegrityError(f"job {job.id}: round {rj.round}'s initial model is not round "
                                           f"{prev.round}'s verified aggregate")
        outcomes.append(out)
    final = outcomes[-1]
    r = job.record
    prov = Provenance(chain_id=r.chain_id, market=r.market, job_id=job.id, requester=r.requester,
                      spec_cid=r.doc_cid, binding=r.binding, shards_root=r.shards_root,
                      post_tx=r.post_tx, approve_tx=r.approve_tx,
                      tasks=[t for o in outcomes for t in o.results],
                      aggregate_hash="0x" + final.aggregate_hash.hex())
    if spec.rounds > 1:
        prov.rounds = [{"round": rj.round, "job_id": rj.job_id, "spec_cid": rj.doc_cid, "post_tx": rj.post_tx,
                        "initial_model_digest": rj.initial_model_digest,
                        "aggregate_hash": "0x" + o.aggregate_hash.hex(),
                        "workers": sorted({t.worker for t in o.results})}
                       for rj, o in zip(rounds, outcomes, strict=True)]
    metrics: dict[str, Any] = {"tasks": len(final.weights), "examples_trained": int(sum(final.weights))}
    if spec.rounds > 1:
        metrics["rounds"] = len(outcomes)
    if spec.privacy.dp_sgd is not None:  # the budget spent, from the published shard sizes
        from veritrain import privacy

        budget = privacy.spent(job.round_doc(0))
        assert budget is not None
        spent = budget.as_dict()
        metrics["privacy"] = spent
        prov.privacy = spent
    agg = final.aggregate
    from veritrain.training import state as tstate
    from veritrain.training.engine import evaluate

    if r.holdout and Path(r.holdout).exists():
        from veritrain.data import load_npz

        # raw, as split off: the job's transform applies to it too
        held = load_npz(Path(r.holdout), sequence=spec.data.targets == "sequence")
        transform = job.round_doc(0).transform()
        if transform is not None:
            held = transform.apply_to(held)
        ev = evaluate(spec, agg, held.features, held.labels)
        metrics.update(holdout_loss=ev.loss, holdout_accuracy=ev.accuracy, holdout_examples=ev.examples)
        metrics.update(baseline_metrics(spec, held))
        if ev.perplexity is not None:
            metrics["holdout_perplexity"] = ev.perplexity
    import torch

    model = tstate.build_model(spec)
    model.load_state_dict({k.removeprefix("model/"): torch.from_numpy(v.copy())
                           for k, v in agg.tensors.items()})
    return JobResult(model=model, state=agg, metrics=metrics, provenance=prov, spec=spec,
                     transform=job.round_doc(0).transform())

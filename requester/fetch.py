"""``job.result()``: verified task results -> FedAvg -> evaluation on the held-out set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requester.aggregate import aggregate_state
from requester.errors import JobNotReadyError
from requester.result import Provenance, TaskResult, verify_task
from veritrain import crypto
from veritrain.checkpoint import CheckpointState, encode_and_hash
from veritrain.tasks import task_key


@dataclass
class JobResult:
    model: Any  # torch.nn.Module with the aggregated weights
    state: CheckpointState
    metrics: dict[str, Any]
    provenance: Provenance

    def save(self, path: str | Path) -> Path:
        """The model's weights as safetensors, the metrics and provenance in its metadata."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k.removeprefix("model/"): v for k, v in self.state.tensors.items()}
        meta = {"veritrain.metrics": json.dumps(self.metrics, sort_keys=True),
                "veritrain.provenance": json.dumps(self.provenance.to_dict(), sort_keys=True)}
        save_file(tensors, str(path), metadata=meta)
        return path


def job_result(job: Any, *, require_all: bool = True) -> JobResult:
    st = job.status()
    pending = [t for t in st.tasks if t.finalized == 0]
    if pending and (require_all or len(pending) == len(st.tasks)):
        raise JobNotReadyError(
            f"job {job.id}: {len(pending)} of {len(st.tasks)} tasks have no finalized result yet "
            f"(tasks {', '.join(str(t.index) for t in pending[:8])}); `job.wait()` first")
    market = job.requester.market
    doc, key, spec = job.doc, job.data_key, job.spec
    states, weights, results = [], [], []
    for t in st.tasks:
        used = False
        for c in t.claims:
            if c.phase != "finalized" or c.manifest_cid is None:
                continue
            claim = market.get_claim(t.task_id, c.worker)
            shard = task_key(spec, t.task_id).shard
            state, res = verify_task(doc, job.requester.storage, crypto.shard_key(key, doc.binding, shard),
                                     task_id=t.task_id, shard=shard,
                                     worker=c.worker, onchain_root=claim.root,
                                     manifest_cid=c.manifest_cid, checkpoint_count=spec.num_checkpoints)
            res = TaskResult(**{**res.__dict__, "reveal_tx": c.txs.get("ResultRevealed"),
                                "finalize_tx": c.txs.get("ClaimFinalized"),
                                "key_tx": c.txs.get("KeyDelivered")})
            results.append(res)
            if not used:  # one result per shard enters the average
                states.append(state)
                weights.append(res.examples)
                used = True
    agg = aggregate_state(states, weights, meta={"job": spec.digest().hex(), "aggregate": "fedavg",
                                                  "job_id": job.id})
    _, agg_hash = encode_and_hash(agg)
    r = job.record
    prov = Provenance(chain_id=r.chain_id, market=r.market, job_id=job.id, requester=r.requester,
                      spec_cid=r.doc_cid, binding=r.binding, shards_root=r.shards_root,
                      post_tx=r.post_tx, approve_tx=r.approve_tx, tasks=results,
                      aggregate_hash="0x" + agg_hash.hex())
    metrics: dict[str, Any] = {"tasks": len(states), "examples_trained": int(sum(weights))}
    from veritrain.training import state as tstate
    from veritrain.training.engine import evaluate

    if r.holdout and Path(r.holdout).exists():
        from veritrain.data import load_npz

        held = load_npz(Path(r.holdout))
        ev = evaluate(spec, agg, held.features, held.labels)
        metrics.update(holdout_loss=ev.loss, holdout_accuracy=ev.accuracy, holdout_examples=ev.examples)
        if ev.perplexity is not None:
            metrics["holdout_perplexity"] = ev.perplexity
    import torch

    model = tstate.build_model(spec)
    model.load_state_dict({k.removeprefix("model/"): torch.from_numpy(v.copy())
                           for k, v in agg.tensors.items()})
    return JobResult(model=model, state=agg, metrics=metrics, provenance=prov)

"""The verifier's read-only HTTP API (FastAPI), served from its journal.

``GET /health``, ``/tasks/{task_id}`` (verification state and evidence of every worker's
result on that task), ``/disputes``, ``/stats``, ``/metrics`` (Prometheus text format).
No write endpoints: the service acts on-chain; the API only reports.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from verifier import sampling
from verifier.records import DisputePhase, DisputeRecord, Duty, ResultPhase, ResultRecord, Role
from verifier.replay import CheckOutcome
from veritrain import __version__
from veritrain.chain.states import Outcome
from veritrain.journal import Item, Journal
from veritrain.tasks import split_task_id

P = ResultPhase
RESULT_PHASES = (P.SEEN, P.VERIFIED, P.CHALLENGED, P.SKIPPED, P.NO_KEY, P.UNAVAILABLE, P.UNRUNNABLE,
                 P.MISSED, P.CHALLENGE_FAILED, P.ERROR, P.RETRACTED)
SEGMENT_OUTCOMES = (CheckOutcome.MATCH, CheckOutcome.MISMATCH, CheckOutcome.UNRUNNABLE,
                    CheckOutcome.UNAVAILABLE)
DISPUTE_FIELDS = ("dispute_id", "task_id", "accused", "accuser", "segment", "accused_next", "accuser_next",
                  "role", "referees", "commit_deadline", "reveal_deadline", "duty", "duty_detail", "vote",
                  "votes", "outcome", "verdict", "referee_pot", "check", "opened_tx", "settled_tx")


def _result_view(item: Item) -> dict[str, Any]:
    d: ResultRecord = ResultRecord.of(item)
    return {
        "task_id": d.task_id, "job_id": d.job_id, "worker": d.worker,
        "state": item.phase, "detail": d.detail, "root": d.root,
        "manifest_cid": d.manifest_cid, "challenge_deadline": d.challenge_deadline,
        "segments_total": d.n_segments, "segments_sampled": d.segments,
        "full_verification": d.full, "checks": [c.model_dump() for c in d.checks],
        "challenge": d.challenge, "challenge_tx": d.challenge_tx,
        "dispute_id": d.dispute_id, "dispute_outcome": d.dispute_outcome,
        "revealed_in_block": d.block, "updated": item.updated,
    }


def _dispute_view(item: Item) -> dict[str, Any]:
    d: DisputeRecord = DisputeRecord.of(item)
    dumped = d.model_dump(include=set(DISPUTE_FIELDS) & d.model_fields_set)
    return {"status": item.phase, **{k: dumped[k] for k in DISPUTE_FIELDS if k in dumped}}


def stats(journal: Journal) -> dict[str, Any]:
    results = [(i, ResultRecord.of(i)) for i in journal.items("result:")]
    disputes: list[tuple[Item, DisputeRecord]] = [(i, DisputeRecord.of(i)) for i in journal.items("dispute:")]
    by_phase = Counter(i.phase for i, _ in results)
    checks = [c for _, r in results for c in r.checks]
    outcomes = Counter(c.outcome for c in checks)
    mine = [(i, d) for i, d in disputes if d.role == Role.ACCUSER]
    refereed = [(i, d) for i, d in disputes if d.role == Role.REFEREE]
    txs = journal.txs()
    address = journal.value("address")
    return {
        "address": address,
        "p": journal.value("p"),
        "last_block": journal.value("last_block"),
        "results": {"total": len(results), **{p: by_phase.get(p, 0) for p in RESULT_PHASES}},
        "segments": {"replayed": len(checks), **{str(k): outcomes.get(k, 0) for k in SEGMENT_OUTCOMES}},
        "challenges": {
            "sent": len(mine),
            "won": sum(1 for _, d in mine if d.outcome == Outcome.ACCUSED_LOST.label),
            "lost": sum(1 for _, d in mine if d.outcome == Outcome.ACCUSER_LOST.label),
            "forced": sum(1 for _, d in mine if d.outcome == Outcome.FORCED.label),
            "jackpots": sum(d.jackpot or 0 for _, d in mine
                            if d.jackpot_to and d.jackpot_to.lower() == str(address).lower()),
            "open": sum(1 for i, _ in mine if i.phase != DisputePhase.SETTLED),
        },
        "referee": {
            "drawn": len(refereed),
            "revealed": sum(1 for _, d in refereed if d.duty == Duty.REVEALED),
            "missed": sum(1 for _, d in refereed if d.duty == Duty.MISSED),
            "with_majority": sum(1 for i, d in refereed if i.phase == DisputePhase.SETTLED and d.vote
                                 and d.my_vote == d.verdict),
        },
        "transactions": dict(Counter(t.status for t in txs)),
        "withdrawn_total": journal.value("withdrawn_total", 0),
        "last_error": journal.value("last_error"),
    }


def metrics_text(journal: Journal) -> str:
    s = stats(journal)
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{lab}}} {value:g}" if lab else f"{name} {value:g}")

    metric("veritrain_verifier_sampling_probability", "gauge", "Probability p of replaying a segment.",
           [({}, float(s["p"] or 0))])
    metric("veritrain_verifier_last_block", "gauge", "Last block scanned for events.",
           [({}, float(s["last_block"] or 0))])
    metric("veritrain_verifier_results_total", "gauge", "Revealed results seen, by verification state.",
           [({"state": k}, float(v)) for k, v in s["results"].items() if k != "total"])
    metric("veritrain_verifier_segments_replayed_total", "counter", "Segments replayed, by outcome.",
           [({"outcome": k}, float(v)) for k, v in s["segments"].items() if k != "replayed"])
    metric("veritrain_verifier_challenges_total", "counter", "Challenges sent, by outcome.",
           [({"outcome": k}, float(v)) for k, v in s["challenges"].items() if k not in ("sent", "jackpots")])
    metric("veritrain_verifier_jackpots_wei_total", "counter",
           "Token amount won in forced errors' jackpots (docs/spec/forced.md).",
           [({}, float(s["challenges"]["jackpots"]))])
    metric("veritrain_verifier_referee_duties_total", "counter", "Referee duties, by state.",
           [({"state": k}, float(v)) for k, v in s["referee"].items()])
    metric("veritrain_verifier_transactions_total", "counter", "Transactions, by status.",
           [({"status": k}, float(v)) for k, v in s["transactions"].items()])
    metric("veritrain_verifier_withdrawn_wei_total", "counter", "Token amount withdrawn from the market.",
           [({}, float(s["withdrawn_total"] or 0))])
    return "\n".join(lines) + "\n"


def create_app(journal: Journal, *, segments_for_figures: int = 10) -> FastAPI:
    app = FastAPI(title="Veritrain verifier", version=__version__,
                  description="Read-only view of what this verifier checked and sent.")
    started = time.time()

    @app.get("/health")
    def health() -> dict[str, Any]:
        err = journal.value("last_error")
        return {"status": "degraded" if err else "ok", "address": journal.value("address"),
                "last_block": journal.value("last_block"), "uptime_seconds": round(time.time() - started, 1),
                "last_error": err, "version": __version__}

    @app.get("/tasks/{task_id}")
    def task(task_id: int) -> dict[str, Any]:
        results = journal.items(f"result:{task_id}:")
        if not results:
            raise HTTPException(404, f"no revealed result of task {task_id} seen by this verifier")
        disputes = [_dispute_view(i) for i in journal.items("dispute:")
                    if DisputeRecord.of(i).task_id == task_id]
        return {"task_id": task_id, "job_id": split_task_id(task_id)[0],
                "results": [_result_view(i) for i in results], "disputes": disputes}

    @app.get("/disputes")
    def disputes() -> list[dict[str, Any]]:
        items = sorted(journal.items("dispute:"), key=lambda i: DisputeRecord.of(i).dispute_id or 0)
        return [_dispute_view(i) for i in items]

    @app.get("/stats")
    def get_stats() -> dict[str, Any]:
        s = stats(journal)
        p = s["p"]
        if p is not None:
            s["detection"] = sampling.figures(float(p), segments_for_figures).as_dict()
        return s

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return metrics_text(journal)

    return app

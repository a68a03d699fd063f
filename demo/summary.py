"""The demo's verdict, computed from the chain's events (never from what the processes say).

:func:`build` turns the decoded events of the protocol's contracts (``demo_chain.EventLog``)
into ``summary.json`` (the shape issue 9 fixes) plus the list of checks that failed;
:func:`render` prints it for a person. Pure: no chain, no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("None", "AccusedLost", "AccuserLost", "BothLost", "Dismissed")
TOKEN = 10**18


@dataclass(frozen=True)
class Party:
    name: str
    address: str
    kind: str  # "worker" | "verifier" | "requester"
    behaviour: str = "honest"  # workers: "honest" | "cheater"; verifiers: "challenger" | "referee"


@dataclass
class Verdict:
    summary: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _lower(a: Any) -> str:
    return str(a).lower()


def build(events: list[Any], job_id: int, parties: list[Party], *, seconds: float, gas_total: int,
          accuracy: float | None, accuracy_bar: float) -> Verdict:
    """The summary of job ``job_id`` and every check of issue 9 that did not hold."""
    mine = [e for e in events if "taskId" not in e.args or int(e.args["taskId"]) >> 32 == job_id]
    posted = [e for e in events if e.name == "JobPosted" and int(e.args["jobId"]) == job_id]
    tasks = int(posted[0].args["taskCount"]) if posted else 0
    by_addr = {p.address.lower(): p for p in parties}

    def total(name: str, who: str, amount: str, key: str = "worker") -> int:
        return sum(int(e.args[amount]) for e in mine if e.name == name and _lower(e.args[key]) == who)

    workers, failures = [], []
    finalized: dict[int, str] = {}
    for e in mine:
        if e.name == "ClaimFinalized":
            finalized[int(e.args["taskId"])] = _lower(e.args["worker"])
    slashed_tasks = {int(e.args["taskId"]): _lower(e.args["worker"])
                     for e in mine if e.name == "ClaimSlashed"}
    withdrawn = {p.address.lower(): total("Withdrawn", p.address.lower(), "amount", "account")
                 for p in parties}
    for p in (p for p in parties if p.kind == "worker"):
        a = p.address.lower()
        paid, slashed = total("ClaimFinalized", a, "reward"), total("ClaimSlashed", a, "stake")
        workers.append({"address": p.address, "behaviour": p.behaviour, "paid": paid, "slashed": slashed})
        if p.behaviour == "cheater":
            if slashed == 0:
                failures.append(f"cheater {p.name} was not slashed")
            if paid:
                failures.append(f"cheater {p.name} was paid {paid / TOKEN:g} tokens")
        else:
            if paid == 0:
                failures.append(f"honest {p.name} was not paid")
            if slashed:
                failures.append(f"honest {p.name} was slashed {slashed / TOKEN:g} tokens")
            if paid and withdrawn[a] < paid:
                failures.append(f"honest {p.name} did not withdraw its pay "
                                f"(withdrew {withdrawn[a] / TOKEN:g})")

    cheaters = {p.address.lower() for p in parties if p.behaviour == "cheater"}
    disputes: list[dict[str, Any]] = []
    dispute_rows: list[dict[str, Any]] = []
    settled = {int(e.args["disputeId"]): e for e in events if e.name == "DisputeSettled"}
    for e in (e for e in mine if e.name == "DisputeOpened"):
        d_id, task = int(e.args["disputeId"]), int(e.args["taskId"])
        accused, accuser = str(e.args["accused"]), str(e.args["accuser"])
        outcome = OUTCOMES[int(settled[d_id].args["outcome"])] if d_id in settled else "open"
        loser = {"AccusedLost": accused, "AccuserLost": accuser,
                 "BothLost": f"{accused},{accuser}"}.get(outcome, "")
        disputes.append({"task": task, "challenger": accuser, "loser": loser})
        dispute_rows.append({"id": d_id, "task": task, "index": task & 0xFFFFFFFF,
                             "segment": int(e.args["segment"]), "accused": accused, "challenger": accuser,
                             "outcome": outcome})
        if outcome != "AccusedLost" or accused.lower() not in cheaters:
            failures.append(f"dispute {d_id} on task {task & 0xFFFFFFFF}: {outcome} "
                            f"(accused {_name(by_addr, accused)}, challenger {_name(by_addr, accuser)})")
        elif withdrawn.get(accuser.lower(), 0) == 0:
            failures.append(f"challenger {_name(by_addr, accuser)} did not withdraw its bounty")
    for c in cheaters:
        if not any(d["loser"].lower() == c for d in disputes):
            failures.append(f"no dispute was won against cheater {by_addr[c].name}")
    if len(finalized) != tasks or tasks == 0:
        failures.append(f"{len(finalized)} of {tasks} tasks finalized")
    for task in slashed_tasks:
        redo = finalized.get(task)
        if redo is None or redo in cheaters:
            failures.append(f"task {task & 0xFFFFFFFF} (slashed) was not redone by an honest worker")
    if accuracy is None:
        failures.append("the model was not fetched and evaluated")
    elif accuracy < accuracy_bar:
        failures.append(f"held-out accuracy {accuracy:.4f} is below {accuracy_bar}")

    summary = {"ok": not failures, "job_id": job_id, "tasks": tasks, "seconds": round(seconds, 1),
               "gas_total": gas_total, "model_accuracy": accuracy if accuracy is not None else 0.0,
               "workers": workers, "disputes": disputes}
    details = {"disputes": dispute_rows, "withdrawn": {by_addr[a].name: w for a, w in withdrawn.items()},
               "finalized": {t & 0xFFFFFFFF: _name(by_addr, w) for t, w in sorted(finalized.items())},
               "slashed_tasks": {t & 0xFFFFFFFF: _name(by_addr, w) for t, w in slashed_tasks.items()}}
    return Verdict(summary, failures, details)


def _name(by_addr: dict[str, Party], address: str) -> str:
    p = by_addr.get(address.lower())
    return p.name if p else address


def _tok(amount: int) -> str:
    return f"{amount / TOKEN:,.2f}"


def render(verdict: Verdict, parties: list[Party], *, gas_by_fn: dict[str, int], transactions: int,
           logs: dict[str, str], accuracy_bar: float, notes: list[str]) -> str:
    s, d = verdict.summary, verdict.details
    by_addr = {p.address.lower(): p for p in parties}
    out = [f"job {s['job_id']}: {s['tasks']} tasks", "",
           f"{'worker':<10} {'behaviour':<9} {'address':<42} {'paid':>8} {'slashed':>8} {'withdrawn':>10}"]
    for w in s["workers"]:
        p = by_addr[w["address"].lower()]
        out.append(f"{p.name:<10} {w['behaviour']:<9} {w['address']:<42} {_tok(w['paid']):>8} "
                   f"{_tok(w['slashed']):>8} {_tok(d['withdrawn'].get(p.name, 0)):>10}")
    out.append("(paid: rewards earned; withdrawn: all the worker pulled from the market, its rewards "
               "plus its stakes returned)")
    verifiers = [p for p in parties if p.kind == "verifier"]
    if verifiers:
        out.append("")
        out.append(f"{'verifier':<10} {'role':<10} {'address':<42} {'withdrawn':>10}")
        for p in verifiers:
            amount = _tok(d["withdrawn"].get(p.name, 0))
            out.append(f"{p.name:<10} {p.behaviour:<10} {p.address:<42} {amount:>10}")
    out.append("")
    if d["disputes"]:
        for r in d["disputes"]:
            out.append(f"dispute {r['id']}: task {r['index']} segment {r['segment']}: "
                       f"{_name(by_addr, r['challenger'])} challenged {_name(by_addr, r['accused'])} "
                       f"-> {r['outcome']}")
    else:
        out.append("no disputes")
    redo = ", ".join(f"task {t}: {w}" for t, w in d["finalized"].items())
    out.append(f"finalized by: {redo or '-'}")
    acc = s["model_accuracy"]
    out.append(f"model accuracy on the held-out digits: {acc:.4f} (bar {accuracy_bar})")
    top = ", ".join(f"{fn} {g:,}" for fn, g in list(gas_by_fn.items())[:6])
    out.append(f"gas: {s['gas_total']:,} in {transactions} transactions ({top}, ...)")
    out.append(f"wall time: {s['seconds']:.1f} s")
    if s.get("remote"):
        r = s["remote"]
        out.append(f"network {s.get('network')}: {r.get('rate_limited', 0)} requests rate-limited (429), "
                   f"{r.get('log_pages', 0)} log pages read (widest {r.get('max_log_range', 0)} blocks), "
                   f"{r.get('reorgs', 0)} reorg(s) survived ({r.get('dropped_by_reorg', 0)} transactions "
                   f"dropped, {r.get('resent_after_reorg', 0)} sent again and mined), "
                   f"{r.get('failover_requests', 0)} requests failed over to the secondary provider, "
                   f"{r.get('replaced', 0)} stuck transactions replaced, "
                   f"{r.get('dropped_connections', 0)} connections dropped")
    for n in notes:
        out.append(f"note: {n}")
    out.append("logs: " + ", ".join(f"{k}={v}" for k, v in logs.items()))
    out.append("")
    if verdict.failures:
        out.append("NOT OK:")
        out.extend(f"  - {f}" for f in verdict.failures)
    else:
        out.append("OK: the cheater was caught and slashed, every honest worker was paid, "
                   "the model checks out")
    return "\n".join(out)

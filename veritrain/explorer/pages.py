"""What each explorer page shows, as plain data: built from the index's events, the contracts'
own views and the public documents. No HTML here (templates/), no web framework (app.py).

Every figure read from an event is a :class:`Fig` that links to the event (``/tx/HASH#log-N``);
a figure read from a contract view links to the newest transaction of the market (the state
it reflects) and names the view it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veritrain.chain.events import Event
from veritrain.chain.states import BallotState, ClaimStatus, DisputeStatus, JobStatus, Outcome
from veritrain.explorer import charts
from veritrain.explorer.index import ChainIndex, NotFound
from veritrain.tasks import split_task_id, task_id_of
from veritrain.units import format_tokens


@dataclass(frozen=True)
class Fig:
    """One figure on a page: its text, where it came from (a link) and its raw integer."""

    text: str
    href: str | None = None
    raw: int | None = None
    source: str = ""


def ev_href(e: Event) -> str:
    return f"/tx/{e.tx_hash}#log-{e.log_index}"


@dataclass
class Ctx:
    """One page build: the index plus what is read once per build (token format, head)."""

    index: ChainIndex
    decimals: int = 18
    symbol: str = ""
    charts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, index: ChainIndex) -> Ctx:
        decimals, symbol = index.token_format()
        return cls(index, decimals, symbol)

    def money(self, amount: int, href: str | None = None, source: str = "") -> Fig:
        return Fig(format_tokens(amount, self.decimals, self.symbol), href, int(amount), source)

    def ev_money(self, amount: int, e: Event) -> Fig:
        return self.money(amount, ev_href(e), f"{e.name} event")

    def view_href(self) -> str | None:
        """The newest transaction the market's state reflects (where a view's figure links)."""
        return ev_href(self.index.events[-1]) if self.index.events else None


def _short(h: str, n: int = 10) -> str:
    return h if len(h) <= n + 4 else f"{h[:n]}…{h[-4:]}"


# ---------------------------------------------------------------------------------- market
def market(index: ChainIndex) -> dict[str, Any]:
    ctx = Ctx.of(index)
    c = index.contracts
    balance = c.token.balanceOf(c.market.address)
    liabilities = c.market.liabilities()
    escrow, stakes, registry_held, resolver_held, owed = index.client.call(c.market.web3_contract, "buckets")
    src = ctx.view_href()
    money = {
        "balance": ctx.money(balance, src, "Token.balanceOf(JobMarket)"),
        "liabilities": ctx.money(liabilities, src, "JobMarket.liabilities()"),
        "buckets": [(name, ctx.money(v, src, "JobMarket.buckets()")) for name, v in (
            ("escrows", escrow), ("worker stakes", stakes), ("verifier stakes (registry)", registry_held),
            ("dispute bonds (resolver)", resolver_held), ("owed, not yet withdrawn", owed))],
        "surplus": ctx.money(balance - liabilities, src, "balance - liabilities"),
        "solvent": balance >= liabilities,
    }
    jobs = []
    for e in index.of("JobPosted"):
        jid = int(e.args["jobId"])
        job = c.market.getJob(jid)
        finals = [x for x in index.of("ClaimFinalized") if split_task_id(int(x.args["taskId"]))[0] == jid]
        done = Fig(str(len(finals)), ev_href(finals[-1]) if finals else None, len(finals),
                   "ClaimFinalized events")
        jobs.append({"id": jid, "requester": job.requester, "tasks": job.task_count,
                     "redundancy": job.redundancy, "status": job.status.label,
                     "escrow": ctx.money(job.escrow, src, "JobMarket.getJob().escrow"),
                     "posted": Fig(f"block {e.block_number}", ev_href(e)), "finalized": done})
    disputes = [_dispute_row(ctx, e) for e in index.of("DisputeOpened")]
    recent = [{"name": e.name, "block": e.block_number, "href": ev_href(e), "what": _describe(e)}
              for e in reversed(index.events[-15:])]
    ctx.charts.append(charts.gas_per_action(index))
    ctx.charts.append(charts.progress(index, None))
    return {"money": money, "jobs": jobs, "disputes": disputes, "recent": recent,
            "charts": ctx.charts, "market": c.market.address, "token": c.token.address}


def _dispute_row(ctx: Ctx, e: Event) -> dict[str, Any]:
    did = int(e.args["disputeId"])
    d = ctx.index.contracts.resolver.getDispute(did)
    return {"id": did, "task": int(e.args["taskId"]), "accused": e.args["accused"],
            "segment": int(e.args["segment"]), "status": d.status.label,
            "outcome": d.outcome.label if d.outcome else "",
            "opened": Fig(f"block {e.block_number}", ev_href(e))}


def _describe(e: Event) -> str:
    a = e.args
    parts = []
    for k in ("jobId", "taskId", "disputeId"):
        if k in a:
            parts.append(f"{k[:-2]} {a[k]}")
    for k in ("worker", "accused", "referee", "verifier", "account"):
        if k in a:
            parts.append(f"{k} {_short(str(a[k]))}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------- job
def job(index: ChainIndex, job_id: int) -> dict[str, Any]:
    ctx = Ctx.of(index)
    c = index.contracts
    count = c.market.jobCount()
    if not 1 <= job_id <= count:
        have = f"jobs 1..{count}" if count else "no jobs yet"
        raise NotFound(f"no job {job_id} on this market (it has {have})")
    j = c.market.getJob(job_id)
    posted = index.of("JobPosted", jobId=job_id)
    doc = index.document(j.spec_cid)
    spec: dict[str, Any] = {"cid": j.spec_cid, "error": doc.error}
    if doc.value is not None:
        from veritrain import privacy

        d = doc.value
        budget = privacy.spent(d)
        spec.update(model=d.spec.model.name, steps=d.spec.steps_per_task, k=d.spec.checkpoint_interval,
                    rounds=d.spec.rounds, round=d.round, shards=d.spec.num_shards,
                    incentive=d.spec.incentive, verifiers=d.spec.verification.verifiers,
                    privacy=(f"DP-SGD: ε = {budget.epsilon:.3g} at δ = {budget.delta:g}"
                             if budget is not None else "no differential privacy"),
                    previous_job=d.initial_model.previous_job if d.initial_model else None)
    src = ctx.view_href()
    tasks = [_task_row(ctx, job_id, i, j) for i in range(j.task_count)]
    ctx.charts.append(charts.progress(index, job_id))
    ctx.charts.append(charts.detection_odds(max(1, j.checkpoint_count - 1)))
    ctx.charts.append(charts.loss_curves(index, [m for t in tasks for m in t["manifests"]],
                                         f"loss-job-{job_id}", f"Training loss, job {job_id}"))
    return {"id": job_id, "job": j, "status": j.status.label, "spec": spec, "tasks": tasks,
            "posted": Fig(f"block {posted[0].block_number}", ev_href(posted[0])) if posted else None,
            "escrow": ctx.money(j.escrow, src, "JobMarket.getJob().escrow"),
            "reward": ctx.money(j.reward_per_task, ev_href(posted[0]) if posted else src, "postJob"),
            "stake": ctx.money(j.stake_per_task, ev_href(posted[0]) if posted else src, "postJob"),
            "charts": ctx.charts, "closed": j.status in (JobStatus.CLOSED, JobStatus.CANCELLED)}


def _claims(ctx: Ctx, task_id: int) -> list[dict[str, Any]]:
    """Each worker's claim of ``task_id``: its events in order, its status from the contract."""
    index, market = ctx.index, ctx.index.contracts.market
    out = []
    workers: list[str] = []
    for e in index.of("TaskClaimed", taskId=task_id):
        if e.args["worker"] not in workers:
            workers.append(e.args["worker"])
    for w in workers:
        evs = [e for e in index.of(taskId=task_id) if _same_addr(e.args.get("worker"), w)]
        claim = market.getClaim(task_id, w)
        revealed = [e for e in evs if e.name == "ResultRevealed"]
        out.append({"worker": w, "status": claim.status.label, "events": evs,
                    "manifest_cid": revealed[-1].args["manifestCid"] if revealed else None,
                    "root": revealed[-1].args["root"] if revealed else None,
                    "challenge_deadline": claim.challenge_deadline if claim.status in (
                        ClaimStatus.REVEALED, ClaimStatus.DISPUTED) else None})
    return out


def _verification(claims: list[dict[str, Any]], disputes: list[dict[str, Any]]) -> str:
    if any(d["status"] != DisputeStatus.SETTLED.label for d in disputes):
        return "disputed"
    statuses = {c["status"] for c in claims}
    if ClaimStatus.REVEALED.label in statuses:
        return "challenge window open"
    if disputes and any(d["outcome"] == Outcome.ACCUSED_LOST.label for d in disputes):
        return "cheat caught"
    if statuses and statuses <= {ClaimStatus.FINALIZED.label}:
        return "final"
    return "in progress" if statuses else "unclaimed"


def _task_row(ctx: Ctx, job_id: int, i: int, j: Any) -> dict[str, Any]:
    tid = task_id_of(job_id, i)
    t = ctx.index.contracts.market.getTask(tid)
    claims = _claims(ctx, tid)
    disputes = [_dispute_row(ctx, e) for e in ctx.index.of("DisputeOpened", taskId=tid)]
    manifests = [(c["worker"], c["manifest_cid"]) for c in claims if c["manifest_cid"]]
    slots = Fig(f"{t.active} / {t.committed} / {t.finalized} of {j.redundancy}", ctx.view_href(), None,
                "JobMarket.getTask()")
    return {"index": i, "id": tid, "active": t.active, "committed": t.committed, "finalized": t.finalized,
            "closed": t.closed, "slots": slots, "claims": claims, "disputes": disputes,
            "verification": _verification(claims, disputes), "manifests": manifests,
            "phases": [c["status"] for c in claims]}


# ---------------------------------------------------------------------------------- task
def task(index: ChainIndex, task_id: int) -> dict[str, Any]:
    ctx = Ctx.of(index)
    job_id, i = split_task_id(task_id)
    count = index.contracts.market.jobCount()
    if not 1 <= job_id <= count:
        raise NotFound(f"no task {task_id}: job {job_id} does not exist (the market has "
                       f"{f'jobs 1..{count}' if count else 'no jobs yet'})")
    j = index.contracts.market.getJob(job_id)
    if i >= j.task_count:
        raise NotFound(f"no task {task_id}: job {job_id} has tasks 0..{j.task_count - 1}, not {i}")
    row = _task_row(ctx, job_id, i, j)
    checkpoints = []
    for c in row["claims"]:
        c["manifest"] = None
        if c["manifest_cid"]:
            m = index.manifest(c["manifest_cid"])
            c["manifest"] = m
            if m.value is not None:
                losses = m.value.losses or []
                c["checkpoints"] = [{"i": n, "step": n * m.value.k, "hash": h, "cid": cid,
                                     "loss": losses[n] if n < len(losses) else None}
                                    for n, (h, cid) in enumerate(zip(m.value.hashes, m.value.checkpoint_cids,
                                                                     strict=True))]
                checkpoints.append(c["worker"])
    ctx.charts.append(charts.loss_curves(index, row["manifests"], f"loss-task-{task_id}",
                                         f"Training loss, task {task_id}"))
    posted = index.of("JobPosted", jobId=job_id)
    src = ev_href(posted[0]) if posted else None
    return {"id": task_id, "job_id": job_id, "index": i, "row": row, "charts": ctx.charts,
            "stake": ctx.money(j.stake_per_task, src, "postJob"),
            "reward": ctx.money(j.reward_per_task, src, "postJob")}


# ---------------------------------------------------------------------------------- dispute
def dispute(index: ChainIndex, dispute_id: int) -> dict[str, Any]:
    ctx = Ctx.of(index)
    res = index.contracts.resolver
    count = res.disputeCount()
    if not 1 <= dispute_id <= count:
        have = f"disputes 1..{count}" if count else "none yet"
        raise NotFound(f"no dispute {dispute_id} (there are {have})")
    d = res.getDispute(dispute_id)
    opened = index.of("DisputeOpened", disputeId=dispute_id)
    answered = index.of("DisputeAnswered", disputeId=dispute_id)
    drawn = index.of("CommitteeDrawn", disputeId=dispute_id)
    settled = index.of("DisputeSettled", disputeId=dispute_id)
    ballots = res.getBallots(dispute_id) if d.status in (DisputeStatus.VOTING, DisputeStatus.SETTLED) else []
    seats = []
    for seat, b in enumerate(ballots):
        commits = index.of("VoteCommitted", disputeId=dispute_id, referee=b.referee)
        reveals = index.of("VoteRevealed", disputeId=dispute_id, referee=b.referee)
        keys = index.of("RefereeKeyDelivered", disputeId=dispute_id, referee=b.referee)
        label = _ballot_label(b.state, d.accuser_is_worker)
        seats.append({"seat": seat, "referee": b.referee, "state": label,
                      "revealed": b.state.revealed,
                      "key": Fig("delivered", ev_href(keys[-1])) if keys else None,
                      "commit": Fig(f"block {commits[-1].block_number}", ev_href(commits[-1]))
                      if commits else None,
                      "reveal": Fig(label, ev_href(reveals[-1])) if reveals else None})
    settle_tx = settled[0].tx_hash if settled else None
    slashes = [e for e in index.events if settle_tx and e.tx_hash == settle_tx
               and e.name in ("ClaimSlashed", "VerifierSlashed", "Credited")]
    o = opened[0] if opened else None
    return {
        "id": dispute_id, "d": d, "status": d.status.label,
        "outcome": d.outcome.label if d.outcome != Outcome.NONE else None,
        "opened": o, "opened_href": ev_href(o) if o else None,
        "bond": ctx.ev_money(int(o.args["bond"]), o) if o else None,
        "accuser_next": o.args["accuserNext"] if o else None,
        "accused_next": "0x" + d.accused_next.hex() if any(d.accused_next) else None,
        "answered": answered[0] if answered else None,
        "answered_href": ev_href(answered[0]) if answered else None,
        "drawn": drawn[0] if drawn else None, "drawn_href": ev_href(drawn[0]) if drawn else None,
        "seats": seats, "revealed": sum(1 for s in seats if s["revealed"]),
        "settled": settled[0] if settled else None,
        "settled_href": ev_href(settled[0]) if settled else None,
        "referee_pot": ctx.ev_money(int(settled[0].args["refereePot"]), settled[0]) if settled else None,
        "moves": [{"name": e.name,
                   "who": e.args.get("worker") or e.args.get("verifier") or e.args.get("account"),
                   "amount": ctx.ev_money(int(e.args.get("stake") or e.args.get("amount") or 0), e)}
                  for e in slashes],
        "task_id": d.task_id, "job_id": split_task_id(d.task_id)[0],
    }


def _ballot_label(state: BallotState, accuser_is_worker: bool) -> str:
    """What a seat's ballot says. Against a verifier's challenge a vote is for the accused or
    against it (the contract compares it with the accused's h_{j+1} only); between two workers
    it may side with either, or with neither."""
    return {BallotState.NONE: "no vote yet", BallotState.COMMITTED: "committed (sealed)",
            BallotState.FOR_ACCUSED: "for the accused", BallotState.FOR_ACCUSER: "for the accusing worker",
            BallotState.AGAINST: "against both workers" if accuser_is_worker else "against the accused",
            }[state]


# ---------------------------------------------------------------------------------- account
def account(index: ChainIndex, address: str) -> dict[str, Any]:
    from web3 import Web3

    if not Web3.is_address(address):
        raise NotFound(f"{address!r} is not an address (0x followed by 40 hex digits)")
    addr = Web3.to_checksum_address(address)
    ctx = Ctx.of(index)
    c = index.contracts
    src = ctx.view_href()

    def total(name: str, key: str, **args: Any) -> tuple[Fig, list[Event]]:
        evs = index.of(name, **args)
        return ctx.money(sum(int(e.args[key]) for e in evs), ev_href(evs[-1]) if evs else None,
                         f"sum of {name} events"), evs

    earned, finals = total("ClaimFinalized", "reward", worker=addr)
    slashed_w, sl = total("ClaimSlashed", "stake", worker=addr)
    timed_out, to = total("ClaimTimedOut", "penalty", worker=addr)
    slashed_v, vs = total("VerifierSlashed", "amount", verifier=addr)
    withdrawn, wd = total("Withdrawn", "amount", account=addr)
    locked = 0
    claims = []
    for e in index.of("TaskClaimed", worker=addr):
        tid = int(e.args["taskId"])
        claim = c.market.getClaim(tid, addr)
        if ClaimStatus.CLAIMED <= claim.status <= ClaimStatus.DISPUTED:
            locked += c.market.getJob(split_task_id(tid)[0]).stake_per_task
        claims.append({"task": tid, "status": claim.status.label,
                       "claimed": Fig(f"block {e.block_number}", ev_href(e))})
    lost = sum(f.raw or 0 for f in (slashed_w, timed_out, slashed_v))
    last_loss = next((ev_href(e) for e in reversed(sl + to + vs)), None)
    return {
        "address": addr, "claims": claims,
        "worker_stake": ctx.money(locked, src, "stakes of open claims (JobMarket.getClaim, getJob)"),
        "verifier_stake": ctx.money(c.registry.stakeOf(addr), src, "VerifierRegistry.stakeOf()"),
        "earned": earned, "withdrawn": withdrawn,
        "slashed": ctx.money(lost, last_loss, "ClaimSlashed + ClaimTimedOut + VerifierSlashed events"),
        "withdrawable": ctx.money(c.market.owed(addr), src, "JobMarket.owed()"),
        "jobs": [int(e.args["jobId"]) for e in index.of("JobPosted", requester=addr)],
        "disputes": [int(e.args["disputeId"]) for e in index.events if e.name == "DisputeOpened"
                     and (_same_addr(e.args["accused"], addr) or _same_addr(e.args["accuser"], addr))],
        "referee_of": sorted({int(e.args["disputeId"]) for e in index.of("VoteCommitted", referee=addr)}),
    }


# ---------------------------------------------------------------------------------- tx
def tx(index: ChainIndex, tx_hash: str) -> dict[str, Any]:
    if not (tx_hash.startswith("0x") and len(tx_hash) == 66):
        raise NotFound(f"{tx_hash!r} is not a transaction hash (0x followed by 64 hex digits)")
    r = index.receipt(tx_hash)
    return {"hash": tx_hash, "block": int(r["blockNumber"]), "from": r["from"], "to": r["to"],
            "gas": int(r["gasUsed"]), "status": "success" if r["status"] == 1 else "reverted",
            "time": index.block_time(int(r["blockNumber"])), "action": index.action_of(tx_hash),
            "events": index.tx_events(tx_hash)}


def _same_addr(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


__all__ = ["ClaimStatus", "Fig", "account", "dispute", "job", "market", "task", "tx"]

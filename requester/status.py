"""A job's status: its on-chain state, and every task's claims with their phase and transactions.

Built from the job's events since its posting block (who claimed, what was revealed, which
transactions) and the contract's views (the current phase of each live claim). A multi-round
job's status covers every posted round (each its own on-chain job): ``tasks`` lists them all
(``TaskView.round``), ``rounds`` one line per round, and ``done`` needs the last round final.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from veritrain.chain.states import ClaimStatus
from veritrain.tasks import split_task_id

EVENTS = ["TaskClaimed", "KeyDelivered", "ResultCommitted", "ResultRevealed", "ClaimFinalized",
          "ClaimAbandoned", "ClaimTimedOut", "ClaimDisputed", "ClaimReleased", "ClaimSlashed",
          "JobCancelled", "JobClosed"]

_ENDED = {"ClaimAbandoned": "abandoned", "ClaimTimedOut": "timed out", "ClaimSlashed": "slashed"}


@dataclass
class ClaimView:
    worker: str
    phase: str
    root: str | None = None
    manifest_cid: str | None = None
    txs: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskView:
    task_id: int
    index: int
    examples: int
    finalized: int = 0
    claims: list[ClaimView] = field(default_factory=list)
    round: int = 0

    @property
    def label(self) -> str:
        """The one task naming every command uses: the on-chain task id (what the worker and
        the contract print), with the shard (and round) it trains."""
        where = f"round {self.round} shard {self.index}" if self.round else f"shard {self.index}"
        return f"{self.task_id} ({where})"

    @property
    def phase(self) -> str:
        live = [c.phase for c in self.claims if c.phase not in _ENDED.values()]
        if not live:
            return "open"
        order = [s.name.lower().replace("_", " ") for s in ClaimStatus]
        return min(live, key=lambda p: order.index(p) if p in order else len(order))


@dataclass
class RoundView:
    round: int
    job_id: int | None  # None: uploaded, not posted yet
    state: str  # the round job's on-chain state, or "posting"
    spec_cid: str
    tasks_final: int = 0
    tasks: int = 0


@dataclass
class JobStatusView:
    job_id: int
    state: str
    redundancy: int
    escrow: int
    spec_cid: str
    tasks: list[TaskView]
    rounds_total: int = 1
    rounds: list[RoundView] = field(default_factory=list)
    privacy: dict[str, Any] | None = None  # DP-SGD jobs: the budget (veritrain.privacy.Budget)

    @property
    def rounds_posted(self) -> int:
        return sum(r.job_id is not None for r in self.rounds) if self.rounds else 1

    @property
    def round(self) -> int:
        """The round under way (the last one posted)."""
        return self.rounds_posted - 1

    @property
    def done(self) -> bool:
        final = all(t.finalized >= self.redundancy for t in self.tasks)
        return final and self.rounds_posted == self.rounds_total

    def task_phase(self, t: TaskView) -> str:
        """A task's phase as the job's state allows: a cancelled or closed job takes no more
        claims, so its unclaimed tasks are not ``open``."""
        phase = t.phase
        if phase == "open" and self.state in ("cancelled", "closed"):
            return self.state
        return phase

    def summary(self) -> str:
        final = sum(t.finalized >= self.redundancy for t in self.tasks)
        text = f"job {self.job_id} {self.state}: {final}/{len(self.tasks)} tasks final"
        if self.rounds_total > 1:
            text += f", round {self.round + 1}/{self.rounds_total}"
        if self.privacy is not None:
            p = self.privacy
            text += (f"; DP-SGD: epsilon {p['epsilon']:.3g} at delta {p['delta']:g} "
                     f"(noise multiplier {p['noise_multiplier']:.4g}, accountant {p['accountant']})")
        return text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["done"] = self.done
        for t, view in zip(d["tasks"], self.tasks, strict=True):
            t["phase"] = self.task_phase(view)
        if self.rounds_total == 1:  # single-round jobs keep their old shape
            del d["rounds_total"], d["rounds"]
        if self.privacy is None:
            del d["privacy"]
        return d


def _phase(status: int) -> str:
    return ClaimStatus(status).name.lower().replace("_", " ")


def job_status(job: Any, trackers: dict[int, RoundTracker] | None = None) -> JobStatusView:
    """The job's status; ``trackers`` (kept between calls) makes each call read only what is new."""
    from veritrain import privacy

    view = _job_status(job, trackers)
    if job.spec.privacy.dp_sgd is not None:
        budget = privacy.spent(job.round_doc(0))
        view.privacy = budget.as_dict() if budget is not None else None
    return view


def _job_status(job: Any, trackers: dict[int, RoundTracker] | None = None) -> JobStatusView:
    if job.spec.rounds == 1:
        return round_status(job.requester.market, job.id, job.from_block, job.doc, trackers)
    views, rounds, tasks = [], [], []
    for rj in job.rounds:
        if rj.job_id is None:
            rounds.append(RoundView(rj.round, None, "posting", rj.doc_cid))
            continue
        v = round_status(job.requester.market, rj.job_id, rj.post_block, job.round_doc(rj.round), trackers)
        views.append(v)
        tasks += v.tasks
        rounds.append(RoundView(rj.round, rj.job_id, v.state, rj.doc_cid,
                                sum(t.finalized >= v.redundancy for t in v.tasks), len(v.tasks)))
    last = views[-1]
    state = last.state
    if job.record.cancelled:
        state = "cancelled"
    elif len(views) < job.spec.rounds and state == "closed":
        state = "open"  # between rounds: the next one is being posted
    return JobStatusView(job_id=job.id, state=state, redundancy=last.redundancy,
                         escrow=sum(v.escrow for v in views), spec_cid=views[0].spec_cid, tasks=tasks,
                         rounds_total=job.spec.rounds, rounds=rounds)


def round_status(market: Any, job_id: int, from_block: int, doc: Any,
                 trackers: dict[int, RoundTracker] | None = None) -> JobStatusView:
    """One on-chain job's status (a single-round job, or one round of a multi-round job).
    With ``trackers`` (kept by the caller between calls, e.g. :meth:`requester.sdk.Job.wait`)
    each call reads only the events since the last one."""
    if trackers is None:
        return RoundTracker(market, job_id, from_block, doc).view()
    if job_id not in trackers:
        trackers[job_id] = RoundTracker(market, job_id, from_block, doc)
    return trackers[job_id].view()


class RoundTracker:
    """One on-chain job's tasks and claims, kept from its events: each :meth:`view` reads the
    events since the last (one poller, in pages), the job's views once, and ``getClaim`` only
    for the claims an event touched since, so a whole ``wait()`` costs O(events), not O(N) per
    poll. A reorg (events retracted) starts the view again from the posting block."""

    def __init__(self, market: Any, job_id: int, from_block: int, doc: Any) -> None:
        self.market, self.job_id, self.from_block, self.doc = market, job_id, from_block, doc
        self._reset()

    def _reset(self) -> None:
        from veritrain.tasks import task_id_of

        self.poller = self.market.market.events(self.from_block, names=EVENTS)
        self.tasks = {task_id_of(self.job_id, i): TaskView(task_id_of(self.job_id, i), i,
                                                           self.doc.shard(i).examples, round=self.doc.round)
                      for i in range(self.doc.spec.num_shards)}
        self.claims: dict[tuple[int, str], ClaimView] = {}  # live claims

    def view(self) -> JobStatusView:
        events = self.poller.poll()
        if self.poller.retracted:
            self._reset()
            events = self.poller.poll()
        touched: set[tuple[int, str]] = set()
        for ev in events:
            if ev.name in ("JobCancelled", "JobClosed"):
                continue
            task_id = int(ev.args["taskId"])
            if split_task_id(task_id)[0] != self.job_id:
                continue
            worker = str(ev.args["worker"])
            key = (task_id, worker.lower())
            if ev.name == "TaskClaimed":
                self.claims[key] = ClaimView(worker=worker, phase="claimed")
                self.tasks[task_id].claims.append(self.claims[key])
            c = self.claims.get(key)
            if c is None:
                continue
            c.txs[ev.name] = ev.tx_hash
            touched.add(key)
            if ev.name == "ResultRevealed":
                c.root, c.manifest_cid = str(ev.args["root"]), str(ev.args["manifestCid"])
            if ev.name in _ENDED:
                c.phase = _ENDED[ev.name]
                self.claims.pop(key)  # a later claim by the same worker starts a new view
                touched.discard(key)
        for key in sorted(touched):
            c = self.claims[key]
            c.phase = _phase(self.market.get_claim(key[0], c.worker).status)
            if c.phase == "finalized":  # final: nothing more to follow
                self.claims.pop(key)
        for task_id in {k[0] for k in touched}:
            t = self.tasks[task_id]
            t.finalized = sum(c.phase == "finalized" for c in t.claims)
        onchain = self.market.get_job(self.job_id)
        return JobStatusView(job_id=self.job_id, state=onchain.status.name.lower(),
                             redundancy=onchain.redundancy, escrow=onchain.escrow,
                             spec_cid=onchain.spec_cid, tasks=[self.tasks[t] for t in sorted(self.tasks)])


__all__ = ["JobStatusView", "RoundView", "TaskView", "ClaimView", "job_status", "round_status",
           "split_task_id", "RoundTracker"]

"""The verifier's run loop: ingest events, verify results, serve as referee, settle, withdraw.

One :meth:`VerifierService.tick` does, in order:

1. read new confirmed events (cursors in the journal): ``JobPosted`` becomes a ``vkey:<job>``
   item (the job key is asked for on-chain at once when this verifier will sample the job),
   ``ResultRevealed`` becomes a ``result:<task>:<worker>`` item, dispute events update
   ``dispute:<id>`` items (and create referee duty when this verifier is drawn, storing its key
   envelope when it arrives);
2. referee duty first (it has deadlines measured in hours, but a missed reveal costs stake);
3. pending results: sample, replay, challenge (:class:`verifier.watcher.Watcher`);
4. every open dispute (not only its own: a dispute nobody drives would lapse): draw the
   committee once the draw block is mined, settle once every vote is in or a deadline passed
   (an accused that did not answer a challenge in time loses then);
5. withdraw whatever the market owes it (bounties, referee fees, returned bonds).

Everything is journaled (:mod:`veritrain.journal`), so a restarted service resumes where it
stopped: it never challenges twice and never forgets to reveal a committed vote.

Hooks for tests and demos (never reached by the CLI): ``replay`` (a :data:`ReplayFn`) and
``vote_policy`` (a :data:`VotePolicy`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from verifier.chain import VerifierChain
from verifier.keys import KeySource
from verifier.records import DisputePhase, Duty, ResultPhase
from verifier.referee import Referee, VotePolicy, honest
from verifier.replay import ReplayFn, SegmentReplayer, engine_replay
from verifier.watcher import WatchConfig, Watcher
from veritrain.chain.states import BallotState, DisputeStatus, Outcome, VerifierStatus
from veritrain.errors import ChainError, ConfigError, ContractRevert, StorageError
from veritrain.journal import Journal
from veritrain.storage import Storage
from veritrain.tasks import split_task_id

if TYPE_CHECKING:
    from veritrain.chain.facades import Tx

log = logging.getLogger("veritrain.verifier")
#: Result phases in which this verifier sent a transaction about the result.
ACTED = (ResultPhase.CHALLENGED, ResultPhase.START_SLASHED)
#: A dispute item's phase for each on-chain status (after a reorg it is read from the chain).
DISPUTE_PHASES = {DisputeStatus.NONE: DisputePhase.RETRACTED, DisputeStatus.ANSWERING: DisputePhase.ANSWERING,
                  DisputeStatus.DRAWING: DisputePhase.DRAWING, DisputeStatus.VOTING: DisputePhase.VOTING,
                  DisputeStatus.SETTLED: DisputePhase.SETTLED}
#: Gas for drawCommittee sent without estimation (committees of up to 15 from a large pool).
DRAW_GAS = 3_000_000


class VerifierService:
    def __init__(self, chain: VerifierChain, storage: Storage, journal: Journal, keys: KeySource, *,
                 p: float, secret: bytes, full_jobs: frozenset[int] = frozenset(), confirmations: int = 0,
                 start_block: int | None = None, replay: ReplayFn = engine_replay,
                 vote_policy: VotePolicy = honest, vote_margin: int = 600, challenge_margin: int = 0) -> None:
        self.chain = chain
        self.storage = storage
        self.journal = journal
        self.p = p
        self.confirmations = confirmations
        self.replayer = SegmentReplayer(storage, replay)
        self.watcher = Watcher(chain, journal, self.replayer, keys,
                               WatchConfig(p=p, secret=secret, full_jobs=full_jobs, margin=challenge_margin))
        self.referee = Referee(chain, journal, self.replayer, vote_policy=vote_policy,
                               vote_margin=vote_margin)
        start = chain.deployment.deploy_block if start_block is None else start_block
        self.journal.set("address", chain.address)
        self.journal.set("p", p)
        # the pollers' journaled states hold their cursors; a bare cursor:* key is what journals
        # of earlier versions hold
        m_from = int(journal.value("cursor:market", start))
        r_from = int(journal.value("cursor:resolver", start))
        self._saved: dict[str, Any] = {}
        #: job id -> its spec CID, fixed at posting: read once per job, not once per result (a
        #: fresh verifier catching up on a long chain meets every result ever revealed)
        self._spec_cids: dict[int, str] = {}
        self._market_events, self._resolver_events = chain.pollers(m_from, r_from, confirmations)
        # with their remembered hashes and newest events: a reorg while this verifier was down
        # is noticed on the first poll and undone like any other (``undo``)
        self._market_events.resume(journal.value("poller:market"))
        self._resolver_events.resume(journal.value("poller:resolver"))
        #: Scored jobs this verifier validates beside its replay checks (verifier/scored_jobs.py).
        self.scored: Any = None

    # ------------------------------------------------------------------ registration
    def ensure_registered(self, stake: int | None = None) -> str:
        """Register with ``stake`` (default: the registry minimum) unless already active."""
        if self.chain.is_active():
            return "already registered"
        status = self.chain.verifier_status()
        if status == VerifierStatus.UNBONDING:
            raise ConfigError(f"{self.chain.address} is unbonding from the verifier registry; withdraw its "
                              "stake after the unbonding delay, then register again")
        amount = stake or self.chain.min_stake()
        self.chain.send(self.journal, "registry", "register", self.chain.register(amount), detail=str(amount))
        return f"registered with stake {amount}"

    # ------------------------------------------------------------------ loop
    def tick(self) -> dict[str, int]:
        """One pass; returns counts of what it did (for logs and tests). Its reads of the latest
        block share one request (:meth:`ChainClient.one_head`)."""
        with self.chain.one_head():
            return self._tick()

    def _tick(self) -> dict[str, int]:
        counts = {"events": self.ingest()}
        now = self.chain.timestamp()
        counts["duties"] = sum(1 for item in self.referee.duties() if self.referee.step(item, now))
        for item in self.journal.items("vkey:", phases=("wanted",)):
            self.watcher.ask_key(item)
        checked = 0
        for item in self.watcher.pending():
            self.watcher.process(item)
            checked += 1
        counts["results"] = checked
        counts["opt_outs"] = sum(1 for item in self.journal.items("optout:", phases=("pending",))
                                 if self.watcher.check_opt_out(item) == "challenged")
        counts["housekeeping"] = self.housekeeping(self.chain.timestamp())
        counts["withdrawn"] = self.withdraw()
        if self.scored is not None:
            counts["scored"] = len(self.scored.tick())
        return counts

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Tick until ``stop`` is set; RPC and IPFS trouble is logged and retried."""
        while not stop.is_set():
            try:
                self.tick()
                self.journal.set("last_error", None)
            except (ChainError, StorageError) as exc:
                log.warning("will retry: %s", exc)
                self.journal.set("last_error", str(exc))
            stop.wait(interval)

    # ------------------------------------------------------------------ events
    def ingest(self) -> int:
        events = self._market_events.poll()
        self.undo(self._market_events)  # before the new chain's events of the same poll
        for ev in events:
            if ev.name == "ResultRevealed":
                self._on_revealed(ev)
            elif ev.name == "JobPosted":
                self._on_job_posted(ev)
        self._save("poller:market", self._market_events.state())
        devents = self._resolver_events.poll()
        self.undo(self._resolver_events)
        for ev in devents:
            getattr(self, f"_on_{ev.name}")(ev)
        self._save("poller:resolver", self._resolver_events.state())
        self._save("last_block", max(self._market_events.cursor, self._resolver_events.cursor) - 1)
        return len(events) + len(devents)

    def _save(self, key: str, value: Any) -> None:
        """Journal ``value`` under ``key`` unless it is what was journaled last: each write is a
        synchronous SQLite commit, and on a quiet chain the pollers' state rarely changes."""
        if self._saved.get(key) != value:
            self.journal.set(key, value)
            self._saved[key] = value

    def _on_job_posted(self, ev: Any) -> None:
        """A new job: ask for its key now (``Watcher.ask_key``), not when its first result shows."""
        key = f"vkey:{int(ev.args['jobId'])}"
        self._spec_cids[int(ev.args["jobId"])] = str(ev.args["specCid"])
        if self.journal.get(key) is None:
            self.journal.put(key, "wanted", spec_cid=ev.args["specCid"], requester=ev.args["requester"],
                             posted_block=ev.block_number)  # where the key's event is searched from

    # ------------------------------------------------------------------ reorgs
    def undo(self, poller: Any) -> int:
        """Undo what the journal derived from the events a reorg dropped (the poller's
        ``retracted``), before the replacing blocks' events are applied; returns how many.

        - A dropped reveal's result, unless this verifier already acted on it (challenged or
          slashed it), is set aside as ``retracted``: it is neither checked nor counted until its
          reveal is mined again, then it is checked afresh with the new block's challenge
          deadline.
        - A dispute touched by a dropped event takes the phase the chain now gives it
          (``retracted`` if the chain has no such dispute), and a committee seat from a dropped
          draw is given up: only a draw on the current chain makes this verifier a referee.
        """
        retracted, poller.retracted = list(poller.retracted), []
        disputes: set[int] = set()
        for ev in retracted:
            if ev.name == "ResultRevealed":
                self._undo_revealed(ev)
            elif "disputeId" in ev.args:
                disputes.add(int(ev.args["disputeId"]))
        for dispute_id in sorted(disputes):
            self._resync_dispute(dispute_id, [e for e in retracted if e.args.get("disputeId") == dispute_id])
        if retracted:
            log.warning("a reorg dropped %d event(s) this verifier had read (blocks %d-%d); undone",
                        len(retracted), min(e.block_number for e in retracted),
                        max(e.block_number for e in retracted))
        return len(retracted)

    def _undo_revealed(self, ev: Any) -> None:
        key = f"result:{int(ev.args['taskId'])}:{str(ev.args['worker']).lower()}"
        item = self.journal.get(key)
        if item is None or item.data.get("tx") != ev.tx_hash:
            return  # not derived from this event
        if item.phase in ACTED:
            log.warning("%s: its reveal (block %d) was dropped by a reorg after this verifier %s it; "
                        "the journaled transaction is re-sent or reverts by name", key, ev.block_number,
                        item.phase)
            return
        self.journal.put(key, ResultPhase.RETRACTED, detail=f"its reveal in block {ev.block_number} was "
                         "dropped by a reorg; checked again once it is mined again")

    def _resync_dispute(self, dispute_id: int, dropped: list[Any]) -> None:
        key = f"dispute:{dispute_id}"
        item = self.journal.get(key)
        if item is None:
            return
        status = self.chain.dispute(dispute_id).status
        phase = DISPUTE_PHASES[status]
        extra: dict[str, Any] = {}
        if any(e.name == "CommitteeDrawn" for e in dropped) and status != DisputeStatus.VOTING:
            extra.update(referees=None, duty=Duty.RETRACTED if item.data.get("duty") else None)
        if any(e.name == "DisputeOpened" for e in dropped) and status == DisputeStatus.NONE:
            extra.update(duty=Duty.RETRACTED if item.data.get("duty") else None)
        self.journal.put(key, phase, reorged=[e.name for e in dropped], **extra)

    def _on_revealed(self, ev: Any) -> None:
        a = ev.args
        task_id, worker = int(a["taskId"]), str(a["worker"])
        key = f"result:{task_id}:{worker.lower()}"
        item = self.journal.get(key)
        if item is not None and item.phase != ResultPhase.RETRACTED:
            return
        job_id = split_task_id(task_id)[0]
        self.journal.put(key, "seen", task_id=task_id, job_id=job_id, worker=worker, root=a["root"],
                         manifest_cid=a["manifestCid"], challenge_deadline=int(a["challengeDeadline"]),
                         spec_cid=self._spec_cid(job_id), block=ev.block_number, tx=ev.tx_hash)

    def _spec_cid(self, job_id: int) -> str:
        """The job's spec CID: from its JobPosted event or an earlier read, else one ``getJob``."""
        if job_id not in self._spec_cids:
            posted = self.journal.get(f"vkey:{job_id}")
            self._spec_cids[job_id] = (str(posted.data["spec_cid"]) if posted is not None
                                       else self.chain.spec_cid(job_id))
        return self._spec_cids[job_id]

    def _on_DisputeOpened(self, ev: Any) -> None:  # noqa: N802 - named after the event
        a = ev.args
        me = self.chain.address.lower()
        role = "accuser" if str(a["accuser"]).lower() == me else (
            "accused" if str(a["accused"]).lower() == me else "observer")
        key = f"dispute:{int(a['disputeId'])}"
        known = self.journal.get(key)
        if known is None or known.phase == DisputePhase.RETRACTED:  # new, or opened again after a reorg
            # a challenge without proofs waits for the accused's answer (drawBlock is set then)
            answering = not a["accuserIsWorker"] and int(a["drawBlock"]) == 0
            self.journal.put(key, "answering" if answering else "drawing",
                             dispute_id=int(a["disputeId"]), task_id=int(a["taskId"]),
                             accused=a["accused"], accuser=a["accuser"],
                             accuser_is_worker=a["accuserIsWorker"], segment=int(a["segment"]),
                             accused_next=a["accusedNext"], accuser_next=a["accuserNext"],
                             bond=int(a["bond"]), draw_block=int(a["drawBlock"]),
                             role=role, opened_tx=ev.tx_hash)

    def _on_DisputeAnswered(self, ev: Any) -> None:  # noqa: N802
        a = ev.args
        key = f"dispute:{int(a['disputeId'])}"
        item = self.journal.get(key)
        phase = "drawing" if item is None or item.phase == "answering" else item.phase
        self.journal.put(key, phase, accused_h=a["h"], accused_next=a["hNext"],
                         draw_block=int(a["drawBlock"]))

    def _on_DrawRescheduled(self, ev: Any) -> None:  # noqa: N802
        a = ev.args
        key = f"dispute:{int(a['disputeId'])}"
        item = self.journal.get(key)
        self.journal.put(key, item.phase if item else "drawing", draw_block=int(a["drawBlock"]))

    def _on_CommitteeDrawn(self, ev: Any) -> None:  # noqa: N802
        a = ev.args
        key = f"dispute:{int(a['disputeId'])}"
        item = self.journal.get(key)
        referees = [str(r) for r in a["referees"]]
        extra: dict[str, Any] = {"referees": referees, "commit_deadline": int(a["commitDeadline"]),
                                 "reveal_deadline": int(a["revealDeadline"])}
        if self.chain.address.lower() in {r.lower() for r in referees}:
            extra["role"] = "referee"
            if item is None or item.data.get("duty") in (None, Duty.RETRACTED):  # a seat from a re-draw
                extra["duty"] = "pending"
        self.journal.put(key, "voting", **extra)

    def _on_RefereeKeyDelivered(self, ev: Any) -> None:  # noqa: N802
        a = ev.args
        if str(a["referee"]).lower() == self.chain.address.lower():
            item = self.journal.get(f"dispute:{int(a['disputeId'])}")
            self.journal.put(f"dispute:{int(a['disputeId'])}", item.phase if item else "voting",
                             envelope=a["envelope"])

    def _on_VoteRevealed(self, ev: Any) -> None:  # noqa: N802
        a = ev.args
        key = f"dispute:{int(a['disputeId'])}"
        item = self.journal.get(key)
        votes = dict(item.data.get("votes", {})) if item else {}
        votes[str(a["referee"])] = a["voteHash"]
        extra = {}
        if str(a["referee"]).lower() == self.chain.address.lower():
            extra["my_vote"] = BallotState(int(a["vote"])).label  # what the contract made of it
        self.journal.put(key, item.phase if item else "voting", votes=votes, **extra)

    def _on_SeedOpened(self, ev: Any) -> None:  # noqa: N802
        """A forced job's claim opened its seed; a drawn one is checked for the opt-out
        (:meth:`verifier.watcher.Watcher.check_opt_out`)."""
        a = ev.args
        if not a["selected"]:
            return
        key = f"optout:{int(a['taskId'])}:{str(a['worker']).lower()}"
        if self.journal.get(key) is None:
            self.journal.put(key, "pending", task_id=int(a["taskId"]), worker=str(a["worker"]),
                             segment=int(a["segment"]), block=ev.block_number)

    def _on_JackpotPaid(self, ev: Any) -> None:  # noqa: N802
        """A forced error caught (docs/spec/forced.md): the catcher's jackpot, in its dispute."""
        a = ev.args
        key = f"dispute:{int(a['disputeId'])}"
        item = self.journal.get(key)
        if item is None:
            return
        self.journal.put(key, item.phase, jackpot=int(a["amount"]), jackpot_to=str(a["catcher"]))
        if str(a["catcher"]).lower() == self.chain.address.lower():
            log.info("dispute %d: a forced error caught; jackpot %d (withdraw it with the verifier's "
                     "withdraw command)", int(a["disputeId"]), int(a["amount"]))

    def _on_DisputeSettled(self, ev: Any) -> None:  # noqa: N802
        a = ev.args
        outcome = Outcome(int(a["outcome"])).label
        key = f"dispute:{int(a['disputeId'])}"
        item = self.journal.get(key)
        self.journal.put(key, "settled", outcome=outcome, verdict=BallotState(int(a["verdict"])).label,
                         referee_pot=int(a["refereePot"]), settled_tx=ev.tx_hash)
        if item is not None:
            self.journal.put(f"result:{item.data['task_id']}:{str(item.data['accused']).lower()}",
                             (self.journal.get(f"result:{item.data['task_id']}:"
                                               f"{str(item.data['accused']).lower()}") or item).phase,
                             dispute_outcome=outcome)

    # ------------------------------------------------------------------ disputes
    def housekeeping(self, now: int) -> int:
        """Draw committees and settle disputes, every open one (not only this verifier's): a
        dispute nobody drives would lapse, so any party able to move it on does; returns txs
        sent. An accused that did not answer in time loses at its settlement."""
        sent = 0
        block = self.chain.block_number()
        for item in self.journal.items("dispute:", phases=("answering", "drawing", "voting")):
            dispute_id = int(item.data["dispute_id"])
            try:
                d = self.chain.dispute(dispute_id)
                if d.status == DisputeStatus.DRAWING and now <= d.deadline and block >= d.draw_block:
                    # in the draw block itself gas estimation (at the head) would see TooEarly; the
                    # transaction lands in a later block, so send it with a fixed gas limit then
                    gas = None if block > d.draw_block else DRAW_GAS
                    sent += self._tx(item.key, "drawCommittee", self.chain.draw(dispute_id), gas=gas)
                elif self._settleable(d, dispute_id, now):
                    sent += self._tx(item.key, "settle", self.chain.settle(dispute_id))
            except ContractRevert as exc:  # someone else was faster: events will tell
                log.info("dispute %s: %s", dispute_id, exc)
        return sent

    def _settleable(self, d: Any, dispute_id: int, now: int) -> bool:
        if d.status in (DisputeStatus.DRAWING, DisputeStatus.ANSWERING):
            return now > d.deadline
        if d.status != DisputeStatus.VOTING:
            return False
        if now > d.deadline + self.chain.reveal_window():
            return True
        return all(state.revealed for _, state, _ in self.chain.ballots(dispute_id))

    def _tx(self, item: str, action: str, tx: Tx, gas: int | None = None) -> int:
        self.chain.send(self.journal, item, action, tx, gas=gas)
        return 1

    def withdraw(self) -> int:
        owed = self.chain.owed()
        if owed == 0:
            return 0
        self._tx("market", "withdraw", self.chain.withdraw())
        self.journal.set("withdrawn_total", int(self.journal.value("withdrawn_total", 0)) + owed)
        return owed


__all__ = ["VerifierService"]

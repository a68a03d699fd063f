"""Multi-round jobs: one on-chain job per round, driven by the requester's key-service loop.

``spec.rounds > 1`` (FedAvg / DiLoCo style): round ``r`` is an on-chain job of ``num_shards``
tasks whose document (:mod:`veritrain.jobdoc`) names round ``r``, the same shards, binding and
key as round 0, and, for ``r > 0``, the initial model: round ``r - 1``'s verified aggregate,
encrypted once per shard under that shard's key. The public job id is round 0's.

:class:`RoundDriver` is what ``job.serve_keys()``, ``job.wait()`` and ``veritrain job serve``
run every pass: it serves keys for every posted round (:class:`~requester.keyservice.KeyService`
per round job) and advances the rounds. When the last posted round's tasks all have final,
verified results (``requester.fetch.verify_round``: every checkpoint against its on-chain root,
``h_0`` against its initial model), it

1. encodes the aggregate (:func:`veritrain.jobdoc.encode_initial_model`), encrypts one copy per
   shard, uploads them and the next round's document;
2. journals the round in the job record (``RoundRecord``, no job id yet) — *uploaded*;
3. posts it, unless a ``JobPosted`` of this account with that document CID exists already
   (a crash after ``postJob`` left the record behind); then records the job id — *posted*.

A crash before 2 leaves only unreferenced blobs on IPFS (the next pass uploads afresh); a
crash between 2 and 3 is caught up on restart without posting twice. A cancelled job (the
record's ``cancelled``, or the round job cancelled on-chain) posts no more rounds.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from requester.errors import ResultIntegrityError
from requester.keyservice import Delivery, KeyService
from requester.store import JobRecord, RoundRecord
from veritrain import crypto
from veritrain.chain.receipts import tx_hash
from veritrain.chain.states import JobStatus
from veritrain.errors import ContractRevert
from veritrain.jobdoc import InitialModelRef, ModelCopyRef, encode_initial_model, seal_initial_model
from veritrain.starts import BoundStarts, fetch_initial_model

log = logging.getLogger("veritrain.requester.rounds")


@dataclass(frozen=True)
class RoundJob:
    """One round of a job as recorded: ``job_id`` None while uploaded but not posted."""

    round: int
    job_id: int | None
    doc_cid: str
    post_block: int
    post_tx: str | None
    initial_model_digest: str | None = None


def rounds_of(record: JobRecord, deploy_block: int = 0) -> list[RoundJob]:
    first = RoundJob(0, record.job_id, record.doc_cid, int(record.post_block or deploy_block), record.post_tx)
    return [first] + [RoundJob(r.round, r.job_id, r.doc_cid, int(r.post_block or first.post_block),
                               r.post_tx, r.initial_model_digest) for r in record.rounds]


def post_params(doc: Any, doc_cid: str, terms: Any, starts_root: bytes) -> tuple[Any, ...]:
    """``postJob``'s arguments for one round (every round: ``num_shards`` tasks); ``starts_root``
    binds every task's start (:class:`veritrain.starts.BoundStarts`); a round > 0's are keyed
    (computed from the encrypted initial model, so a worker may refuse them after the key)."""
    spec, d = doc.spec, doc.spec.deadlines
    return (doc_cid, doc.shards_root(), spec.num_shards, spec.redundancy, spec.num_checkpoints,
            terms.reward_per_task, terms.stake_per_task, terms.griefing_fee, terms.referee_fee_pool,
            d.key_window, d.submission_window, d.reveal_window, d.challenge_window, starts_root,
            doc.round > 0)


class RoundDriver:
    """Serves keys for every round of one job and posts round ``r + 1`` when round ``r`` is done."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.job_id: int = job.id
        self.services: dict[int, KeyService] = {}
        self.refused: dict[int, str] = {}  # round job -> why its results cannot be aggregated
        self.posted: list[int] = []  # round jobs this driver posted
        self.closed: list[tuple[int, int]] = []  # (round job, escrow returned) this driver closed
        self._ended: set[int] = set()  # round jobs seen closed (by anyone): not read again
        self._trackers: dict[int, Any] = {}  # round job -> its status, kept from events between passes

    # ----------------------------------------------------------------------- passes
    def step(self) -> list[Delivery]:
        out: list[Delivery] = []
        for rj in self.job.rounds:
            if rj.job_id is None:
                continue
            service = self.services.get(rj.job_id)
            if service is None:
                if self.job.requester.market.get_job(rj.job_id).status == JobStatus.CLOSED:
                    continue  # ended: nothing left to serve
                service = self.services[rj.job_id] = KeyService(
                    self.job.requester.market, rj.job_id, self.job.data_key, rj.post_block,
                    self.job.round_doc(rj.round))
            out += service.step()
        if self.job.spec.rounds > 1:
            self.advance()
        for rj in self.job.rounds:
            if rj.job_id is not None and rj.job_id not in self._ended:
                self._close_if_ended(rj.job_id)
        return out

    def _close_if_ended(self, job_id: int) -> None:
        """``closeJob`` a round job whose every slot is paid out or closed and that has no running
        claim: what is left of its escrow (the unused referee fee pool, slashed stakes) returns
        to the requester's balance (``withdraw``), and the job stops needing a key service."""
        market = self.job.requester.market
        j = market.get_job(job_id)
        if j.status == JobStatus.CLOSED:
            self._ended.add(job_id)
        if j.status != JobStatus.OPEN or j.active_claims or j.settled_slots < j.task_count * j.redundancy:
            return
        try:
            receipt = market.market.closeJob(job_id).send()
        except ContractRevert as exc:  # closed by someone else meanwhile (anyone may close)
            log.info("job %d: closing round job %d was refused (%s)", self.job.id, job_id, exc)
            return
        from web3.logs import DISCARD

        ev = market.market.web3_contract.events.JobClosed().process_receipt(receipt, errors=DISCARD)
        refund = int(ev[0]["args"]["refunded"]) if ev else 0
        self.closed.append((job_id, refund))
        self._ended.add(job_id)
        log.info("job %d: round job %d ended and was closed; %d returned to the balance", self.job.id,
                 job_id, refund)

    def finished(self, *, closed_only: bool = False) -> bool:
        """No round left to post and the last round's job is no longer open (``closed_only``:
        closed, so not even a running claim of a cancelled job needs a key)."""
        rounds = self.job.rounds
        last = rounds[-1]
        if last.job_id is None:
            return False
        status = self.job.requester.market.get_job(last.job_id).status
        ended = status == JobStatus.CLOSED if closed_only else status != JobStatus.OPEN
        if not ended:
            return False
        if status == JobStatus.CANCELLED or self.job.record.cancelled:
            return True
        return len(rounds) == self.job.spec.rounds

    # ----------------------------------------------------------------------- rounds
    def advance(self) -> int | None:
        """Post the next round if it is due (or finish posting one); returns its job id."""
        job = self.job
        record = job.record_fresh()
        if record.cancelled:
            return None
        last = job.rounds[-1]
        if last.job_id is None:
            return self._post(record.rounds[-1])
        if last.round + 1 >= job.spec.rounds:
            return None
        market = job.requester.market
        if market.get_job(last.job_id).status == JobStatus.CANCELLED:
            record.cancelled = True  # cancelled on-chain (another tool): post no more
            job.save_record(record)
            return None
        if last.job_id in self.refused:
            raise ResultIntegrityError(self.refused[last.job_id])
        from requester.errors import JobNotReadyError
        from requester.fetch import verify_round
        from requester.status import round_status

        st = round_status(market, last.job_id, last.post_block, job.round_doc(last.round), self._trackers)
        if not st.done:
            return None  # round still under way: every slot of every task must be final
        try:
            outcome = verify_round(job, last)
        except JobNotReadyError:
            return None  # round still under way
        except ResultIntegrityError as exc:
            self.refused[last.job_id] = f"job {job.id}: round {last.round} cannot advance: {exc}"
            raise ResultIntegrityError(self.refused[last.job_id]) from None
        entry = self._upload(last, outcome)
        record = job.record_fresh()
        if record.cancelled:
            return None
        record.rounds.append(entry)
        job.save_record(record)  # journalled: uploaded, not posted
        log.info("job %d: round %d uploaded (%s); posting", job.id, entry.round, entry.doc_cid)
        return self._post(entry)

    def _upload(self, last: RoundJob, outcome: Any) -> RoundRecord:
        job = self.job
        storage, doc = job.requester.storage, job.round_doc(last.round)
        r = last.round + 1
        assert last.job_id is not None
        plain = encode_initial_model(job.spec, doc.binding, r, outcome.aggregate.tensors)
        copies = []
        for s in range(job.spec.num_shards):
            ct = seal_initial_model(plain, crypto.shard_key(job.data_key, doc.binding, s), doc.binding, r, s)
            copies.append(ModelCopyRef(shard=s, cid=storage.put_bytes(ct),
                                       sha256=hashlib.sha256(ct).hexdigest(), size=len(ct)))
        digest = hashlib.sha256(plain).hexdigest()
        nxt = doc.next_round(InitialModelRef(digest=digest, previous_job=last.job_id, copies=tuple(copies)))
        cid = storage.put_bytes(nxt.to_bytes())
        job.remember_doc(r, nxt)
        return RoundRecord(round=r, doc_cid=cid, shards_root="0x" + nxt.shards_root().hex(),
                           initial_model_digest=digest, previous_job=last.job_id,
                           previous_aggregate="0x" + outcome.aggregate_hash.hex())

    def _post(self, entry: RoundRecord) -> int | None:
        job = self.job
        market = job.requester.market
        found = self._posted_already(entry)
        record = job.record_fresh()
        if found is None:
            if record.cancelled:
                return None
            terms = record.terms
            assert terms is not None, "a multi-round record keeps its terms"
            doc = job.round_doc(entry.round)
            spec = doc.spec
            escrow = spec.num_shards * spec.redundancy * terms.reward_per_task + terms.referee_fee_pool
            escrow += job.requester.jackpot_fee(spec, terms.reward_per_task)
            allowance = market.token.allowance(job.requester.address, market.address)
            if allowance < escrow and terms.approve:
                entry.approve_tx = tx_hash(market.token.approve(market.address, escrow).send())
            try:
                starts = BoundStarts.of(doc, fetch_initial_model(doc, job.requester.storage, job.data_key))
                receipt = market.market.postJob(post_params(doc, entry.doc_cid, terms, starts.root)).send()
            except ContractRevert as exc:
                log.warning("job %d: posting round %d was refused (%s); will retry", job.id, entry.round, exc)
                raise
            from web3.logs import DISCARD

            ev = market.market.web3_contract.events.JobPosted().process_receipt(receipt, errors=DISCARD)
            found = (int(ev[0]["args"]["jobId"]), int(receipt["blockNumber"]), tx_hash(receipt))
            self.posted.append(found[0])
        entry.job_id, entry.post_block, entry.post_tx = found
        record = job.record_fresh()
        record.rounds = [entry if r.round == entry.round else r for r in record.rounds]
        job.save_record(record)
        log.info("job %d: round %d posted as on-chain job %d", job.id, entry.round, entry.job_id)
        return entry.job_id

    def _posted_already(self, entry: RoundRecord) -> tuple[int, int, str] | None:
        """This account's ``JobPosted`` with the round's document CID, if a crash hid it."""
        job = self.job
        since = job.rounds[entry.round - 1].post_block
        for ev in job.requester.market.market.events(since, names=["JobPosted"]).poll():
            if (str(ev.args["specCid"]) == entry.doc_cid
                    and str(ev.args["requester"]).lower() == job.requester.address.lower()):
                return int(ev.args["jobId"]), ev.block_number, ev.tx_hash
        return None


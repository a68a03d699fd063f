"""The key service: answer every claim on a job with the data key wrapped to the claimant.

- Workers: each ``TaskClaimed`` (it carries the worker's 64-byte public key) is answered with
  ``deliverKey(taskId, worker, wrap(key, pubKey, worker_key_context(...)))`` while the claim
  is still ``Claimed`` and before its key deadline.
- Referees: for each dispute on one of the job's tasks whose committee is drawn, every referee
  without a ``RefereeKeyDelivered`` gets ``deliverRefereeKey(disputeId, referee, envelope)``,
  wrapped to its registered public key (VerifierRegistry) with ``referee_key_context``.
- Sampling verifiers: each ``VerifierKeyRequested(jobId, verifier, pubKey)`` is answered with
  ``deliverVerifierKey(jobId, verifier, wrap(job key, pubKey, verifier_key_context(...)))``
  when the JobSpec's ``verification.verifiers`` admits it (``open``: any registered verifier
  that asks; a list: only those addresses); any other request is refused silently (logged).
  A sampling verifier gets the job key: it must be able to replay any task of the job.
  The on-chain status (``verifierKeyStatus`` still ``Requested``) is checked before sending.

Catch-up: a new service reads the job's events from its posting block, later passes only
new blocks; the on-chain state decides (claim status, delivery events), so a service that
was down answers what it missed and a second instance (or a restart) never delivers twice;
a race between two instances loses with ``JobMarketWrongStatus`` and is ignored.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from requester.market import Market
from veritrain import crypto, envelope
from veritrain.chain.receipts import tx_hash
from veritrain.chain.states import ClaimStatus, DisputeStatus, VerifierKeyStatus
from veritrain.errors import ContractRevert, VeritrainError
from veritrain.jobdoc import JobDocument, referee_key_context, verifier_key_context, worker_key_context
from veritrain.tasks import split_task_id

log = logging.getLogger("veritrain.requester.keys")
#: A key delivery refused because another instance delivered first or the claim's window passed.
_TOO_LATE = ("JobMarketWrongStatus", "JobMarketDeadlinePassed")


@dataclass
class Delivery:
    kind: str  # "worker" | "referee" | "verifier"
    target: int  # task id, dispute id or (verifier) job id
    party: str
    tx: str


@dataclass
class KeyService:
    market: Market
    job_id: int
    data_key: bytes  # the job key: it stays here; each party gets one shard's key
    from_block: int
    doc: JobDocument
    deliveries: list[Delivery] = field(default_factory=list)
    missed: set[tuple[int, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        # event cursors: the first pass reads from the posting block, later passes only new blocks;
        # one poller per contract (claims and verifier requests share the market's)
        self._market_events = self.market.market.events(self.from_block,
                                                         names=["TaskClaimed", "VerifierKeyRequested"])
        self._disputes = self.market.resolver.events(
            self.from_block, names=["DisputeOpened", "CommitteeDrawn", "RefereeKeyDelivered"])
        self._waiting: dict[tuple[int, str], bytes] = {}  # (task, worker) -> pubKey, not yet answered
        self._ours: dict[int, int] = {}  # disputes on this job's tasks -> the disputed task
        self._seats: dict[int, list[str]] = {}  # dispute -> referees not yet served
        self._served: set[tuple[int, str]] = set()
        self._asking: dict[str, bytes] = {}  # verifier -> pubKey, admitted and not yet answered
        self.refused: set[str] = set()  # verifiers the job's policy does not admit

    def shard_key(self, task_id: int) -> bytes:
        """The key of the shard ``task_id`` trains: all a worker or referee of that task gets."""
        return crypto.shard_key(self.data_key, self.doc.binding, self.doc.task_key(task_id).shard)

    def step(self) -> list[Delivery]:
        """One pass: deliver every key owed now; returns the deliveries of this pass."""
        events = self._market_events.poll()
        done = (self._workers([e for e in events if e.name == "TaskClaimed"]) + self._referees()
                + self._verifiers([e for e in events if e.name == "VerifierKeyRequested"]))
        self.deliveries += done
        return done

    # ------------------------------------------------------------------------- workers
    def _workers(self, claimed: list[Any]) -> list[Delivery]:
        """Every claim still waiting gets its key: the transactions are all sent first (one nonce
        after another), then their receipts awaited, so a pass delivers many keys in one block."""
        for ev in claimed:
            task_id = int(ev.args["taskId"])
            if split_task_id(task_id)[0] == self.job_id:
                self._waiting[(task_id, str(ev.args["worker"]))] = ev.args["pubKey"]
        sent: list[tuple[int, str, Any]] = []
        now = None
        for (task_id, worker), pub in list(self._waiting.items()):
            claim = self.market.get_claim(task_id, worker)
            if claim.status != ClaimStatus.CLAIMED:
                del self._waiting[(task_id, worker)]  # delivered already, or the claim ended
                continue
            now = now if now is not None else self.market.timestamp()
            if now > claim.key_deadline:
                self.missed.add((task_id, worker))
                del self._waiting[(task_id, worker)]
                continue
            ctx = worker_key_context(self.market.chain_id, self.market.address, task_id, worker)
            env = envelope.wrap(self.shard_key(task_id), pub, ctx)
            try:  # estimated (a revert now sends nothing), signed, broadcast; not waited for yet
                sent.append((task_id, worker, self.market.market.deliverKey(task_id, worker, env).transact()))
            except ContractRevert as exc:
                if exc.name in _TOO_LATE:
                    del self._waiting[(task_id, worker)]  # another instance was first, or too late
                    continue
                raise
        out = []
        for task_id, worker, h in sent:
            try:
                receipt = self.market.client.wait(h, what="deliverKey")
            except ContractRevert as exc:
                if exc.name not in _TOO_LATE:
                    raise
                receipt = None
            self._waiting.pop((task_id, worker), None)  # a claim left waiting is checked again next pass
            if receipt is not None:
                out.append(Delivery("worker", task_id, worker, tx_hash(receipt)))
                log.info("delivered the key for task %d to %s", task_id, worker)
        return out

    # ------------------------------------------------------------------------ referees
    def _referees(self) -> list[Delivery]:
        events = self._disputes.poll()
        self._undo_disputes()
        for e in events:
            dispute_id = int(e.args["disputeId"])
            if e.name == "DisputeOpened" and split_task_id(int(e.args["taskId"]))[0] == self.job_id:
                self._ours[dispute_id] = int(e.args["taskId"])
            elif e.name == "CommitteeDrawn":
                self._seats[dispute_id] = [str(r) for r in e.args["referees"]]
            elif e.name == "RefereeKeyDelivered":
                self._served.add((dispute_id, str(e.args["referee"]).lower()))
        out = []
        for dispute_id in sorted(set(self._ours) & set(self._seats)):
            todo = [r for r in self._seats[dispute_id] if (dispute_id, r.lower()) not in self._served]
            if not todo:
                continue
            if self.market.get_dispute(dispute_id).status != DisputeStatus.VOTING:
                self._seats[dispute_id] = []  # settled: nothing more to serve
                continue
            for referee in todo:
                pub = self._referee_pubkey(referee)
                ctx = referee_key_context(self.market.chain_id, self.market.address, dispute_id, referee)
                env = envelope.wrap(self.shard_key(self._ours[dispute_id]), pub, ctx)
                receipt = self.market.resolver.deliverRefereeKey(dispute_id, referee, env).send()
                self._served.add((dispute_id, referee.lower()))
                out.append(Delivery("referee", dispute_id, referee, tx_hash(receipt)))
                log.info("delivered the key for dispute %d to referee %s", dispute_id, referee)
        return out

    def _undo_disputes(self) -> None:
        """Forget what dropped dispute events said (a reorg): a dropped draw's seats, a dropped
        delivery (served again unless the delivery is mined again), a dropped dispute. The
        replacing blocks' events, read in the same poll, say it again if it still holds."""
        retracted, self._disputes.retracted = list(self._disputes.retracted), []
        for e in retracted:
            dispute_id = int(e.args["disputeId"])
            if e.name == "DisputeOpened":
                self._ours.pop(dispute_id, None)
            elif e.name == "CommitteeDrawn":
                self._seats.pop(dispute_id, None)
            elif e.name == "RefereeKeyDelivered":
                self._served.discard((dispute_id, str(e.args["referee"]).lower()))
        if retracted:
            log.warning("job %d: a reorg dropped %d dispute event(s); undone", self.job_id, len(retracted))

    # ------------------------------------------------------------------------ verifiers
    def admits(self, verifier: str) -> bool:
        """The JobSpec's verification policy: ``open``, or a list of addresses."""
        policy = self.doc.spec.verification.verifiers
        if policy == "open":
            return True
        if isinstance(policy, list):
            return verifier.lower() in {a.lower() for a in policy}
        return False

    def _verifiers(self, requests: list[Any]) -> list[Delivery]:
        for e in requests:
            if int(e.args["jobId"]) != self.job_id:
                continue
            verifier = str(e.args["verifier"])
            if self.admits(verifier):
                self._asking[verifier] = _bytes(e.args["pubKey"])
            elif verifier not in self.refused:
                self.refused.add(verifier)
                log.info("job %d: verifier %s asked for the key; the job's verification policy does not "
                         "admit it: not delivered", self.job_id, verifier)
        out = []
        for verifier, pub in list(self._asking.items()):
            if self.market.market.verifierKeyStatus(self.job_id, verifier) != VerifierKeyStatus.REQUESTED:
                del self._asking[verifier]  # delivered already (a restart, another instance)
                continue
            ctx = verifier_key_context(self.market.chain_id, self.market.address, self.job_id, verifier)
            env = envelope.wrap(self.data_key, pub, ctx)
            try:
                receipt = self.market.market.deliverVerifierKey(self.job_id, verifier, env).send()
            except ContractRevert as exc:
                if exc.name == "JobMarketVerifierKeyWrongStatus":
                    del self._asking[verifier]
                    continue
                raise
            del self._asking[verifier]
            out.append(Delivery("verifier", self.job_id, verifier, tx_hash(receipt)))
            log.info("delivered the job key of job %d to sampling verifier %s", self.job_id, verifier)
        return out

    def _referee_pubkey(self, referee: str) -> bytes:
        return self.market.registry.getVerifier(referee).pub_key


def _bytes(value: Any) -> bytes:
    """Event ``bytes`` as bytes (the event poller gives them as 0x-hex strings)."""
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)



class KeyServiceThread:
    """Runs :meth:`KeyService.step` every ``interval`` seconds in a daemon thread."""

    def __init__(self, service: KeyService, interval: float = 1.0) -> None:
        self.service = service
        self.interval = interval
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keys-job-{service.job_id}", daemon=True)

    def start(self) -> KeyServiceThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.service.step()
            except VeritrainError as exc:  # RPC down, a revert: log, keep serving
                self.errors.append(exc)
                log.warning("key service for job %d: %s", self.service.job_id, exc)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> KeyServiceThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The worker's state machine: claim -> key -> fetch -> train -> upload -> commit -> reveal ->
watch -> finalize (-> withdraw), one small method per phase.

Crash safety: every task is a journal item (``task:<taskId>``) whose phase is written
*before* the phase acts, and every transaction is journalled with its hash before it is
sent (:meth:`worker.chain.WorkerChain.send`). Each phase first reads the chain, so a phase
re-entered after SIGKILL sees that its action already happened and moves on: the worker never
claims twice, resumes training after the last whole local checkpoint, and keeps the commit
salt (written before the commit is sent). While a task trains, the progress callback keeps
reveals of other tasks going. SIGINT/SIGTERM set :attr:`Worker.stop`; training stops after the
current step and the loop exits with everything resumable.

Terminal phases: finalized, abandoned, not_claimed (a clean refusal: somebody else won the
slot), timed_out, slashed, failed (the reason is recorded). Phases and the task's journalled
payload are typed (:mod:`worker.task_state`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veritrain import deployments, envelope, forced
from veritrain.chain.receipts import commitment
from veritrain.chain.states import ClaimStatus, JobStatus
from veritrain.checkpoint import checkpoint_hash
from veritrain.errors import (
    ChainError,
    ConfigError,
    ContractRevert,
    DataError,
    IntegrityError,
    ManifestError,
    ReplayProfileError,
    SpecError,
    StorageError,
    VeritrainError,
)
from veritrain.jobdoc import JobDocument, open_initial_model, open_shard, worker_key_context
from veritrain.journal import Item, Journal
from veritrain.manifest import Manifest
from veritrain.training.judges import judge_for
from veritrain.training.sinks import DirectorySink
from veritrain.units import TokenFormat
from worker import tasks
from worker.discovery import TaskBoard
from worker.disputes import DisputeDuty
from worker.policy import Offer, Policy, choose
from worker.settings import WorkerSettings
from worker.task_state import BUSY, REOPENABLE, TERMINAL, TaskPhase, TaskRecord

if TYPE_CHECKING:  # pragma: no cover
    from veritrain.scored.jobs import ScoredJobs

CLAIMING, AWAITING_KEY, ABANDONING = TaskPhase.CLAIMING, TaskPhase.AWAITING_KEY, TaskPhase.ABANDONING
FETCHING, TRAINING, UPLOADING = TaskPhase.FETCHING, TaskPhase.TRAINING, TaskPhase.UPLOADING
COMMITTING, REVEALING = TaskPhase.COMMITTING, TaskPhase.REVEALING
WATCHING, FINALIZING = TaskPhase.WATCHING, TaskPhase.FINALIZING
FINALIZED, ABANDONED, NOT_CLAIMED = TaskPhase.FINALIZED, TaskPhase.ABANDONED, TaskPhase.NOT_CLAIMED
TIMED_OUT, SLASHED, FAILED = TaskPhase.TIMED_OUT, TaskPhase.SLASHED, TaskPhase.FAILED
#: Errors that doom one task (not the worker): the task ends ``failed`` with the message.
TASK_FATAL = (IntegrityError, DataError, ReplayProfileError, SpecError, ManifestError)


class SlotTakenInMempool(ChainError):
    """A claim called off before it left: rivals' pending claims fill the task's free slots."""


#: A job with at most this many free slots is contended: claims for it wait a random moment.
CONTENDED = 8
#: The longest such wait with CONTENDED free slots: about a block on the chains this runs on.
#: With fewer free slots the same workers crowd fewer slots, so the wait widens in proportion
#: (up to MAX_CLAIM_JITTER_SECONDS): two rivals then land further apart than the last look's
#: window (a 32-task bench job still saw one mined revert in 33 claims with a flat 1 s).
CLAIM_JITTER_SECONDS = 1.0
MAX_CLAIM_JITTER_SECONDS = 4.0
LOST_RACE = ("JobMarketTaskFull", "JobMarketJobNotOpen", "JobMarketUnknownJob", "JobMarketWrongStatus")

WAIT, MOVED = False, True

Say = Callable[[str], None]
ProgressFn = Callable[[int, int, int], None]
"""``progress(task_id, step, total)``."""


class StopRequested(VeritrainError):
    """SIGINT/SIGTERM arrived; the current step finished and the worker stops."""


@dataclass
class Summary:
    taken: list[int] = field(default_factory=list)
    phases: dict[int, TaskPhase] = field(default_factory=dict)
    stopped: bool = False
    #: Scored jobs (worker/scored_jobs.py) that ended while this run lasted: job id -> report.
    scored: dict[int, dict[str, Any]] = field(default_factory=dict)


class Worker:
    """One worker key on one deployment. ``chain`` and ``storage`` may be injected (tests)."""

    def __init__(self, settings: WorkerSettings, account: Any, *, chain: Any = None, storage: Any = None,
                 trainer: tasks.Trainer | None = None, say: Say | None = None,
                 progress: ProgressFn | None = None, stop: threading.Event | None = None,
                 lock: bool = True) -> None:
        self.settings = settings
        self.account = account
        self.address: str = account.address
        self.pubkey = envelope.public_key_from_private(bytes(account.key))
        self.say: Say = say or (lambda msg: None)
        self.progress = progress
        self.trainer: tasks.Trainer = trainer or tasks.default_trainer
        self.stop = stop or threading.Event()
        chain_given = chain
        if chain is None:
            from worker.chain import WorkerChain

            dep = deployments.load(settings.deployment, settings.rpc_url)
            home = settings.account_dir(dep.chain_id, self.address)
            chain = WorkerChain(settings.rpc_url, dep, account, home / "nonces",
                                retry_seconds=settings.rpc_retry_seconds)
        self.chain = chain
        self.dir = settings.account_dir(chain.chain_id, self.address) / chain.market.address.lower()[2:10]
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = _exclusive(self.dir / "worker.lock") if lock else None
        if storage is None:
            from veritrain.storage import IpfsStorage

            storage = IpfsStorage(settings.ipfs_api, retry_seconds=settings.ipfs_retry_seconds)
        self.storage = storage
        self.journal = Journal(self.dir / "journal.sqlite")
        self._docs: dict[str, JobDocument] = {}
        self._last_urgent = 0.0
        self._started: set[str] = set()  # the journal keys of the tasks this run has taken or tried
        self._board: TaskBoard | None = None
        self._order = os.urandom(16)  # this worker's own order among equally good offers
        self._jitter = random.Random(self._order)  # the waits before contended claims
        self._joined: set[int] = set()  # jobs this worker has tried to claim in (since it started)
        self._skips: frozenset[tuple[int, str]] = frozenset()  # the skip summary printed last
        self.phases: dict[TaskPhase, Callable[[Item], bool]] = {
            CLAIMING: self._claim, AWAITING_KEY: self._await_key, ABANDONING: self._abandon,
            FETCHING: self._fetch, TRAINING: self._train, UPLOADING: self._upload,
            COMMITTING: self._commit, REVEALING: self._reveal, WATCHING: self._watch,
            FINALIZING: self._finalize,
        }
        #: Scored jobs, taken beside the replay tasks (None: turned off, or no ScoredRounds).
        self.scored: ScoredJobs | None = None
        if settings.scored and chain_given is None:
            from worker.scored_jobs import scored_jobs

            self.scored = scored_jobs(self)

    def close(self) -> None:
        self.journal.close()
        if self._lock is not None:
            self._lock.close()

    # ------------------------------------------------------------------ helpers
    def task_dir(self, task_id: int) -> Path:
        return self.dir / "tasks" / str(task_id)

    def _set(self, it: Item, phase: TaskPhase, **data: Any) -> Item:
        """Move ``it`` to ``phase``, recording ``data`` (names of :class:`TaskRecord` only)."""
        new = self.journal.put(it.key, phase, **TaskRecord.checked(**data))
        if phase != it.phase:
            reason = f" ({data['reason']})" if "reason" in data else ""
            self.say(f"task {TaskRecord.of(it).task_id}: {it.phase} -> {phase}{reason}")
        return new

    def _record(self, it: Item, **data: Any) -> Item:
        """Record ``data`` without moving ``it``'s phase (written before the action it enables)."""
        return self.journal.put(it.key, it.phase, **TaskRecord.checked(**data))

    def doc(self, spec_cid: str) -> JobDocument:
        if spec_cid not in self._docs:
            self._docs[spec_cid] = tasks.load_jobdoc(self.storage, spec_cid, self.dir / "jobs")
        return self._docs[spec_cid]

    def data_key(self, it: Item) -> bytes:
        d = TaskRecord.of(it)
        ctx = worker_key_context(self.chain.chain_id, self.chain.market.address, d.task_id, self.address)
        return envelope.unwrap(d.require("envelope"), bytes(self.account.key), ctx)

    def disputes(self) -> DisputeDuty:
        """This worker's duties in disputes over its results, given what they need."""
        return DisputeDuty(chain=self.chain, storage=self.storage, journal=self.journal, address=self.address,
                           say=self.say, task_dir=self.task_dir, data_key=self.data_key,
                           availability_interval=self.settings.availability_interval)

    def _send(self, it: Item, action: str, fn: Any) -> Any:
        """Wait for a still-pending earlier attempt of ``action``, or send it now."""
        return self.chain.send_once(fn, self.journal, it.key, action)

    # ------------------------------------------------------------------ phases
    def _claim(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        tid = d.task_id
        if self.chain.status_of(tid) == ClaimStatus.NONE:
            if d.forced_secret is None:  # journaled before the claim leaves: only it opens the seed
                it = self._record(it, forced_secret=forced.new_secret().hex())
                d = TaskRecord.of(it)
            seed = forced.seed_hash(bytes.fromhex(d.require("forced_secret")))
            if self.chain.pending_tx(self.journal, it.key, "claim") is None:
                have = self.chain.balance()
                if have < d.stake:
                    self._set(it, NOT_CLAIMED, reason=f"too few tokens to stake: have {have}, "
                              f"the job needs {d.stake}")
                    return MOVED
                if self.chain.allowance() < d.stake:
                    self._send(it, "approve", self.chain.token.approve(
                        self.chain.market.address, d.stake))
            self._spread_out(d.job_id)
            try:
                # estimated first; once signed, a last look (a simulation on the latest state and
                # the mempool) right before it leaves can still call it off
                claim = self.chain.market.claim(tid, bytes(self.pubkey), seed).estimate()
                self._send(it, "claim", claim.checked(lambda: self._last_look(d.job_id, tid, seed)))
            except SlotTakenInMempool:
                return self._lost(it, "another worker's claim of its last free slot is pending")
            except ContractRevert as exc:
                if exc.name not in LOST_RACE:
                    raise
                return self._lost(it, exc.name)
            except ChainError:
                # mined and reverted: the revert is replayed at the block before, where the slot
                # was still free, so it does not decode; the task's state after it tells
                if not self._race_lost(d.job_id, tid):
                    raise
                return self._lost(it, "mined after another claim filled the slot")
        c = self.chain.claim_of(tid)
        self._set(it, AWAITING_KEY, key_deadline=c.key_deadline, commit_deadline=c.commit_deadline)
        return MOVED

    def _spread_out(self, job_id: int) -> None:
        """With few free slots left in the job, or before this worker's first claim in it, wait a
        random moment first: workers woken by the same block (the job's posting, or the one that
        took its last slots but these) would otherwise send claims at the same instant, too close
        for one to see the other's (:meth:`_last_look`). A new job is the birthday problem: 8
        workers picking among 32 tasks collide about half the time, whatever order each keeps."""
        board = self._board
        if board is None or job_id not in board.jobs:
            return
        first = job_id not in self._joined
        self._joined.add(job_id)
        free = len(board.free(job_id))
        if free > CONTENDED:
            if first:
                time.sleep(self._jitter.uniform(0, CLAIM_JITTER_SECONDS))
            return
        longest = min(MAX_CLAIM_JITTER_SECONDS, CLAIM_JITTER_SECONDS * CONTENDED / max(1, free))
        time.sleep(self._jitter.uniform(0, longest))

    def _last_look(self, job_id: int, task_id: int, seed: bytes) -> None:
        """Right before a signed claim leaves: look at the mempool, then simulate it on the latest
        state (a rival's claim mined since the estimate, as on an automining chain or an L2
        sequencer that includes a transaction the moment it arrives, makes it revert here, by
        name, instead of on-chain). The simulation goes last: only its one round trip lies
        between the look and the send, the window in which a rival's claim makes ours a mined
        revert."""
        self._check_mempool(job_id, task_id)
        self.chain.simulate_claim(task_id, bytes(self.pubkey), seed)

    def _check_mempool(self, job_id: int, task_id: int) -> None:
        """Raise SlotTakenInMempool when rivals' pending claims already fill every slot of the
        task still free: sending ours would only be a mined revert (theirs are ahead of it)."""
        rivals = self.chain.pending_claims().get(task_id, 0)
        if rivals == 0:
            return
        job, t = self.chain.job(job_id), self.chain.task(task_id)
        if t.active + t.finalized + t.closed + rivals >= job.redundancy:
            raise SlotTakenInMempool(f"task {task_id}: {rivals} rival claim(s) pending")

    def _race_lost(self, job_id: int, task_id: int) -> bool:
        """After a failed claim: True when this worker holds no claim and the slot is gone."""
        if self.chain.status_of(task_id) != ClaimStatus.NONE:
            return False
        job, t = self.chain.job(job_id), self.chain.task(task_id)
        return job.status != JobStatus.OPEN or t.active + t.finalized + t.closed >= job.redundancy

    def _lost(self, it: Item, why: str) -> bool:
        """A claim that lost its race: a clean refusal, and the board learns the slot is gone."""
        if self._board is not None:
            self._board.mark(TaskRecord.of(it).task_id)
        self._set(it, NOT_CLAIMED, reason=f"somebody else took the slot first ({why})")
        return MOVED

    def _await_key(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        tid = d.task_id
        logs = self.chain.market.logs("KeyDelivered", d.from_block, taskId=tid,
                               worker=self.address)
        if logs:
            env = "0x" + bytes(logs[-1].args.envelope).hex()
            it = self._set(it, FETCHING, envelope=env)
            try:
                self.data_key(it)
            except IntegrityError as exc:
                self._set(it, FAILED, reason=f"the requester's key envelope does not open: {exc}")
            return MOVED
        status = self.chain.status_of(tid)
        if status == ClaimStatus.NONE:  # anyone may abandon a claim whose key is late
            self._set(it, ABANDONED, reason="the claim was abandoned by someone else")
            return MOVED
        if self.chain.now() > d.require("key_deadline"):
            self._set(it, ABANDONING, reason="the requester did not deliver the key in time")
            return MOVED
        return WAIT

    def _abandon(self, it: Item) -> bool:
        tid = TaskRecord.of(it).task_id
        if self.chain.status_of(tid) == ClaimStatus.CLAIMED:
            try:
                self._send(it, "abandon", self.chain.market.abandon(tid, self.address))
            except ContractRevert as exc:
                if exc.name == "JobMarketTooEarly":
                    return WAIT
                raise
        fee = sum(int(e.args.griefingFee) for e in self.chain.market.logs(
            "ClaimAbandoned", TaskRecord.of(it).from_block, taskId=tid,
            worker=self.address))
        self._set(it, ABANDONED, griefing_fee=fee)
        return MOVED

    def _fetch(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        doc = self.doc(d.spec_cid)
        ref = doc.shard(doc.task_key(d.task_index).shard)
        path = tasks.fetch_shard(self.storage, ref, self.task_dir(d.task_id) / "shard.enc")
        tasks.decrypt_shard(path, self.data_key(it), doc, ref.index)  # fails now, not mid-training
        if doc.round > 0:  # the previous round's aggregate, checked now too
            initial = self._initial_model(it, doc, ref.index)
            problem = tasks.start_problem(doc, self.chain.job(d.job_id).starts_root, initial)
            if problem is not None:  # a bogus bound start: refused, stake and costs paid, no slash
                self._send(it, "refuse_start", self.chain.market.refuseStart(d.task_id))
                self._set(it, ABANDONED, reason=f"refused the task: {problem}")
                return MOVED
        self._set(self._forced(it), TRAINING)
        return MOVED

    def _forced(self, it: Item) -> Item:
        """Whether the claim is a forced error (docs/spec/forced.md): the market sealed the
        snapshot when it delivered the key, so the draw is known now, to this worker alone.
        Journaled (the snapshot and j*) before training, so a restart decides the same."""
        d = TaskRecord.of(it)
        if d.forced_secret is None or d.forced_snap is not None:
            return it
        secret = bytes.fromhex(d.forced_secret)
        sealed = self.chain.market.sealOf(d.task_id, self.address)
        claimed_in = self.chain.claim_block_hash(d.task_id, d.from_block)
        snap = forced.snap_of(sealed, forced.seed_hash(secret), claimed_in)
        if snap is None:  # no seal: a redundancy > 1 job, where results are compared instead
            return self._record(it, forced_snap="")
        # a seal exists only in a forced job, whose redundancy is 1 (docs/spec/forced.md §4)
        sel = forced.select(secret, snap, bps=self.chain.resolver_params().forced_error_bps,
                            redundancy=1, checkpoints=self.doc(d.spec_cid).spec.num_checkpoints - 1)
        if sel.selected:
            self.say(f"task {d.task_id}: drawn as a forced error: checkpoint {sel.segment + 1} will be "  # type: ignore[operator]
                     "published one step wrong (docs/spec/forced.md); a verifier that catches it wins "
                     "the jackpot, and this worker is paid as usual")
        return self._record(it, forced_snap=snap.hex(), forced_segment=sel.segment)

    def _initial_model(self, it: Item, doc: JobDocument, shard: int) -> bytes:
        """Round > 0: this task's copy of the previous aggregate, fetched, opened and checked."""
        dest = self.task_dir(TaskRecord.of(it).task_id) / "initial.enc"
        enc = tasks.fetch_initial_model(self.storage, doc, shard, dest)
        return open_initial_model(doc, enc.read_bytes(), self.data_key(it), shard)

    def _train(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        doc = self.doc(d.spec_cid)
        key = doc.task_key(d.task_index)
        shard = self.task_dir(d.task_id) / "shard.enc"
        plain = tasks.decrypt_shard(shard, self.data_key(it), doc, key.shard)
        shard_data = open_shard(doc, plain, f"shard {key.shard}")  # decoded, checked, preprocessed
        del plain
        ckpts = self.task_dir(d.task_id) / "ckpt"
        if ckpts.exists() and any(ckpts.iterdir()):
            self.say(f"task {d.task_id}: resuming training from the local checkpoints")
        start: dict[str, bytes] = {}
        if doc.round > 0:
            start["initial_model"] = self._initial_model(it, doc, key.shard)
        if doc.spec.privacy.dp_sgd is not None:  # DP-SGD's noise is derived from the shard key
            start["dp_key"] = bytes(self.data_key(it))
        hashes = self.trainer(doc.spec, key, shard_data.features, shard_data.labels, ckpts,
                              self._progress_for(d.task_id), **start)
        if len(hashes) != doc.spec.num_checkpoints:
            raise ManifestError(f"training produced {len(hashes)} checkpoints, the job wants "
                                f"{doc.spec.num_checkpoints}")
        if d.forced_segment is not None:
            hashes[d.forced_segment + 1] = self._publish_forced(d, doc.spec, ckpts)
        published = self._published(d, ckpts)
        losses = tasks.checkpoint_losses(doc.spec, shard_data.features, shard_data.labels,
                                         [published(i) for i in range(len(hashes))])
        self._set(it, UPLOADING, hashes=[h.hex() for h in hashes], losses=losses)
        return MOVED

    def _publish_forced(self, d: TaskRecord, spec: Any, ckpts: Path) -> bytes:
        """Write the forced checkpoint j*+1 (built from the real j* and j*+1, which stay as they
        are: training went on from the real one) where upload takes it; its hash h_{j*+1}."""
        j = d.require("forced_segment")
        draw = forced.draw(bytes.fromhex(d.require("forced_secret")), bytes.fromhex(d.require("forced_snap")))
        real = DirectorySink(ckpts)
        wrong = forced.perturb(real.read(j), real.read(j + 1), draw, judge_for(spec).bound)
        tasks.write_atomic(DirectorySink(self.task_dir(d.task_id) / "forced").path(j + 1), wrong)
        return checkpoint_hash(wrong)

    def _published(self, d: TaskRecord, ckpts: Path) -> Callable[[int], Path]:
        """Where checkpoint ``i`` as published lies: the forced one for j*+1, else the real one."""
        forced_next = None if d.forced_segment is None else d.forced_segment + 1
        real, wrong = DirectorySink(ckpts), DirectorySink(self.task_dir(d.task_id) / "forced")
        return lambda i: (wrong if i == forced_next else real).path(i)

    def _upload(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        doc, tid = self.doc(d.spec_cid), d.task_id
        key, cids, hashes = self.data_key(it), dict(d.cids or {}), list(d.require("hashes"))
        for i in range(len(hashes)):
            if str(i) not in cids:
                enc = tasks.encrypted_checkpoint(self._published(d, self.task_dir(tid) / "ckpt")(i),
                                                 self.task_dir(tid) / "enc", i, key, doc, tid, self.address)
                cids[str(i)] = self.storage.put_file(enc)
                it = self._record(it, cids=cids)
        manifest = Manifest.build(spec_cid=d.spec_cid, job_id=d.job_id, task_id=tid,
                                  worker=self.address, k=doc.spec.checkpoint_interval,
                                  hashes=[bytes.fromhex(h) for h in hashes],
                                  checkpoint_cids=[cids[str(i)] for i in range(len(hashes))],
                                  losses=d.losses)
        blob = manifest.canonical_json()
        (self.task_dir(tid) / "manifest.json").write_bytes(blob)
        manifest_cid = self.storage.put_bytes(blob)
        self._set(it, COMMITTING, root=manifest.root, manifest_cid=manifest_cid)
        return MOVED

    def _commit(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        tid = d.task_id
        status = self.chain.status_of(tid)
        if status >= ClaimStatus.COMMITTED:  # committed, revealed, disputed or finalized
            self._set(it, REVEALING)
            return MOVED
        if status != ClaimStatus.KEY_DELIVERED:
            self._set(it, TIMED_OUT,
                      reason=f"the claim is {status.label} on-chain; the commit deadline passed")
            return MOVED
        if d.salt is None:  # recorded before the commit leaves: without it there is no reveal
            it = self._record(it, salt=os.urandom(32).hex())
            d = TaskRecord.of(it)
        if self.chain.now() > d.require("commit_deadline") and self.chain.pending_tx(
                self.journal, it.key, "commit") is None:
            self._set(it, TIMED_OUT, reason="training finished after the commit deadline")
            return MOVED
        c = commitment(bytes.fromhex(d.require("root")[2:]), self.address, bytes.fromhex(d.require("salt")))
        self._send(it, "commit", self.chain.market.commit(tid, c))
        self._set(it, REVEALING)
        return MOVED

    def _reveal(self, it: Item) -> bool:
        d = TaskRecord.of(it)
        tid = d.task_id
        status = self.chain.status_of(tid)
        if status == ClaimStatus.COMMITTED:
            task, job = self.chain.task(tid), self.chain.job(d.job_id)
            now = self.chain.now()
            if task.committed < job.redundancy and now <= task.reveal_from:
                return WAIT
            if now > task.reveal_from + job.reveal_window:
                self._set(it, TIMED_OUT, reason="the reveal window closed")
                return MOVED
            try:
                self._send(it, "reveal", self.chain.market.reveal(
                    tid, bytes.fromhex(d.require("root")[2:]), bytes.fromhex(d.require("salt")),
                    d.require("manifest_cid")))
            except ContractRevert as exc:
                if exc.name == "JobMarketTooEarly":
                    return WAIT
                raise
        elif status not in (ClaimStatus.REVEALED, ClaimStatus.DISPUTED, ClaimStatus.FINALIZED):
            self._set(it, TIMED_OUT,
                      reason=f"the claim is {status.label} on-chain; the reveal deadline passed")
            return MOVED
        c = self.chain.claim_of(tid)
        self._set(it, WATCHING, challenge_deadline=c.challenge_deadline)
        return MOVED

    def _watch(self, it: Item) -> bool:
        tid = TaskRecord.of(it).task_id
        duty = self.disputes()
        duty.keep_available(it)
        status = self.chain.status_of(tid)
        if status == ClaimStatus.DISPUTED:
            return duty.handle(it)
        if status == ClaimStatus.FINALIZED:
            duty.release(it)
            self._set(it, FINALIZED, reward=self.chain.job(TaskRecord.of(it).job_id).reward_per_task)
            return MOVED
        if status == ClaimStatus.NONE:
            duty.release(it)
            self._set(it, SLASHED, reason="a dispute went against this result; the stake was slashed")
            return MOVED
        # the deadline journaled at the reveal spares a claim read per pass while it is ahead
        journaled = TaskRecord.of(it).challenge_deadline
        now = self.chain.now()
        if (journaled is None or now > journaled) and now > self.chain.claim_of(tid).challenge_deadline:
            self._set(it, FINALIZING)
            return MOVED
        return WAIT

    def _finalize(self, it: Item) -> bool:
        tid = TaskRecord.of(it).task_id
        status = self.chain.status_of(tid)
        if status == ClaimStatus.REVEALED:
            if self._open_seed(it):  # drawn: one more window, in which an opt-out could be shown
                self._set(it, WATCHING, challenge_deadline=None)
                return MOVED
            try:
                self._send(it, "finalize", self.chain.market.finalize(tid, self.address))
            except ContractRevert as exc:
                if exc.name == "JobMarketTooEarly":
                    return WAIT
                raise
        elif status != ClaimStatus.FINALIZED:
            self._set(it, WATCHING)
            return MOVED
        self.disputes().release(it)
        self._set(it, FINALIZED, reward=self.chain.job(TaskRecord.of(it).job_id).reward_per_task)
        return MOVED

    def _open_seed(self, it: Item) -> bool:
        """A forced job's claim opens its seed before it can be finalized (docs/spec/forced.md).
        True when it was drawn: then the claim stays open to challenge one more window."""
        d = TaskRecord.of(it)
        if not d.forced_snap:  # "": no seal (not a forced job); None: a journal from before
            return False
        if forced.opened(self.chain.market.sealOf(d.task_id, self.address)):
            return False
        self._send(it, "open_seed", self.chain.resolver.openSeed(
            d.task_id, self.address, bytes.fromhex(d.require("forced_secret")), bytes.fromhex(d.forced_snap)))
        if d.forced_segment is None:
            return False
        self.say(f"task {d.task_id}: seed opened: it was drawn as a forced error at segment "
                 f"{d.forced_segment}; paid after one more challenge window")
        return True

    # ------------------------------------------------------------------ driving
    def _progress_for(self, task_id: int) -> Callable[[int, int], None]:
        def progress(step: int, total: int) -> None:
            if self.progress is not None:
                self.progress(task_id, step, total)
            if time.monotonic() - self._last_urgent > self.settings.poll_interval:
                self._last_urgent = time.monotonic()
                self._urgent()
            if self.stop.is_set():
                raise StopRequested(f"stopped after step {step} of task {task_id}; `run` resumes it")

        return progress

    def _urgent(self) -> None:
        """Reveals that must not wait for the current training to end."""
        for it in self.journal.items("task:", phases=(REVEALING,)):
            try:
                self._reveal(it)
            except (ChainError, StorageError) as exc:
                self.say(f"task {TaskRecord.of(it).task_id}: reveal attempt failed, will retry: {exc}")

    def advance(self, it: Item) -> bool:
        """Run ``it``'s current phase once; True if it moved. Task-fatal errors end the task."""
        try:
            return self.phases[TaskPhase(it.phase)](it)
        except TASK_FATAL as exc:
            self._set(it, FAILED, reason=str(exc))
            return MOVED

    def active(self) -> list[Item]:
        return [i for i in self.journal.items("task:") if i.phase not in TERMINAL]

    def tick(self) -> bool:
        """Advance every active task as far as it goes now; True if anything moved."""
        moved = False
        for it in self.active():
            while not self.stop.is_set() and it.phase not in TERMINAL and self.advance(it):
                moved = True
                got = self.journal.get(it.key)
                assert got is not None
                it = got
        return moved

    # ------------------------------------------------------------------ offers
    def board(self) -> TaskBoard:
        """The open jobs and full tasks, kept from events (journaled; made on first use)."""
        if self._board is None:
            self._board = TaskBoard(self.chain, self.journal)
        return self._board

    def offers(self) -> list[Offer]:
        board = self.board()
        board.refresh()
        return board.offers(self.doc, self.chain.balance())

    def take(self, offer: Offer) -> Item:
        """Record the claim intent (phase ``claiming``) — the claim itself is the next phase."""
        known = self._board.jobs.get(offer.job_id) if self._board is not None else None
        job = known or self.chain.job(offer.job_id)
        fmt = self.tokens()
        self.say(f"claiming task {offer.task_id} (job {offer.job_id}, shard {offer.task_index}, "
                 f"reward {fmt(offer.reward)}, stake {fmt(offer.stake)})")
        key = f"task:{offer.task_id}"
        earlier = self.journal.get(key)
        if earlier is not None:  # a task that reopened after an earlier attempt ended: start afresh
            n = sum(1 for _ in self.journal.items(f"attempt:{offer.task_id}:"))
            self.journal.put(f"attempt:{offer.task_id}:{n}", earlier.phase, **earlier.data)
            with self.journal._tx() as db:  # the new attempt must not inherit salt, root, cids, envelope
                db.execute("DELETE FROM items WHERE key=?", (key,))
        record = TaskRecord(task_id=offer.task_id, job_id=offer.job_id, task_index=offer.task_index,
                            spec_cid=job.spec_cid, stake=offer.stake, reward=offer.reward,
                            from_block=self.chain.block_number())
        return self.journal.put(key, CLAIMING, **record.model_dump(exclude_none=True))

    def pick(self) -> Offer | None:
        # a task this worker works on, finished or was slashed on is not offered again; one it lost
        # a race for, abandoned or timed out on is a fresh offer once it reopens (the contract
        # refuses a claim where it must); a task that failed here would fail the same way again
        known = {int(i.key.split(":")[1]) for i in self.journal.items("task:") if i.phase not in REOPENABLE}
        offers = self.offers()
        machine = tasks.this_machine(with_devices=any(getattr(o, "device", "cpu") == "cuda" for o in offers))
        offer, decisions = choose(offers, self.policy(), machine, exclude=known, rank=self._rank)
        self._summarize_skips(decisions)
        return offer

    def _rank(self, offer: Offer) -> bytes:
        """This worker's own pseudo-random order of a job's tasks (workers spread out instead of
        all racing for the lowest free slot)."""
        return hashlib.blake2b(offer.task_id.to_bytes(32, "big"), key=self._order, digest_size=8).digest()

    def _summarize_skips(self, decisions: list[tuple[Offer, Any]]) -> None:
        """One line per job and reason for the offers the policy declines, printed only when that
        set of (job, reason) changes: an idle worker does not repeat itself every poll."""
        counts: dict[tuple[int, str], int] = {}
        for o, dec in decisions:
            if not dec.take:
                why = "; ".join(dec.reasons)
                counts[(o.job_id, why)] = counts.get((o.job_id, why), 0) + 1
        if frozenset(counts) == self._skips:
            return
        self._skips = frozenset(counts)
        for (job_id, why), n in sorted(counts.items()):
            self.say(f"job {job_id}: skipping {n} task{'s' if n != 1 else ''}: {why}")

    def policy(self) -> Policy:
        s = self.settings
        return Policy(min_reward_per_step=s.min_reward_per_step, allowed_models=tuple(s.allowed_models),
                      max_memory_mb=s.max_memory_mb, max_stake=s.max_stake,
                      allow_multi_round=s.allow_multi_round,
                      bitwise_gpus=None if s.bitwise_gpus is None else tuple(s.bitwise_gpus))

    # ------------------------------------------------------------------ money
    def withdraw(self) -> int:
        owed = self.chain.owed()
        if owed == 0:
            return 0
        self.chain.send(self.chain.market.withdraw(), self.journal, "account", "withdraw")
        self.journal.set("withdrawn", int(self.journal.value("withdrawn", 0)) + owed)
        self.say(f"withdrew {self.tokens()(owed)}")
        return owed

    def tokens(self) -> TokenFormat:
        """How this market's token amounts are shown (decimals and symbol, read once)."""
        if getattr(self, "_tokens", None) is None:
            self._tokens = TokenFormat(self.chain.token.decimals(), self.chain.token.symbol())
        return self._tokens

    def maybe_withdraw(self) -> None:
        threshold = self.settings.withdraw_threshold
        if threshold and self.chain.owed() >= threshold:
            self.withdraw()

    # ------------------------------------------------------------------ main loop
    def run(self, *, once: bool = False, max_tasks: int | None = None) -> Summary:
        """``once``: finish the journal's tasks and at most ``max_tasks`` (default 1) offers
        open now, then return. ``max_tasks`` alone: return after that many tasks ended.
        Neither: run until stopped. An unreachable RPC node or IPFS daemon ends a scripted
        run (``once``/``max_tasks``) with its error; a daemon run logs it and retries."""
        if once and max_tasks is None:
            max_tasks = 1
        summary = Summary()
        self._started = {i.key for i in self.active()}
        delay = self.settings.poll_interval
        try:
            while not self.stop.is_set():
                try:
                    state = self._iteration(summary, once, max_tasks)
                except (ChainError, StorageError) as exc:
                    if once or max_tasks is not None:
                        raise  # scripts get the error line; the journal keeps everything
                    self.say(f"error: {exc}; retrying in {delay:.0f} s (nothing is lost)")
                    self.stop.wait(delay)
                    delay = min(delay * 2, 60.0)
                    continue
                delay = self.settings.poll_interval
                if state == "done":
                    break
                if state == "idle":
                    self.stop.wait(self.settings.poll_interval)
        except StopRequested as exc:
            self.say(str(exc))
        summary.stopped = self.stop.is_set()
        if self.scored is not None:
            summary.scored = dict(self.scored.reports)
        for key in self._started:
            got = self.journal.get(key)
            if got is not None:
                summary.phases[int(key.split(":")[1])] = TaskPhase(got.phase)
        return summary

    def _iteration(self, summary: Summary, once: bool, max_tasks: int | None) -> str:
        """One pass: advance tasks, withdraw, maybe take an offer. "moved", "idle" or "done".
        Its reads of the latest block share one request (:meth:`ChainClient.one_head`)."""
        with self.chain.one_head():
            return self._pass(summary, once, max_tasks)

    def _taken(self) -> int:
        """The tasks this run holds or held a claim on. A claim that lost its race is not one,
        also when the loss shows only after its transaction left (mined as a revert, or dropped by
        a reorg while a rival's claim took the slot): a ``--max-tasks`` worker then still does
        that many tasks."""
        return sum(1 for key in self._started
                   if (it := self.journal.get(key)) is not None and it.phase != NOT_CLAIMED)

    def _pass(self, summary: Summary, once: bool, max_tasks: int | None) -> str:
        moved = self.tick()
        if self.scored is not None and not once:  # a scored job lasts its windows: not in a --once
            self.scored.tick()
        self.maybe_withdraw()
        busy = [i for i in self.active() if i.phase in BUSY]
        taken = self._taken()
        want = max_tasks is None or taken < max_tasks
        offer = self.pick() if want and not busy and not self.stop.is_set() else None
        if offer is not None:
            it = self.take(offer)
            self._started.add(it.key)
            summary.taken.append(offer.task_id)
            self.tick()
            return "moved"
        if not self.active() and ((max_tasks is not None and taken >= max_tasks) or (once and want)):
            if once and want and taken == 0:
                self.say("no open task matches this worker's policy")
            return "done"
        return "moved" if moved else "idle"


def _exclusive(path: Path) -> Any:
    fh = open(path, "a+")  # noqa: SIM115 - held for the worker's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ConfigError(f"another worker process already runs with this key and home ({path.parent}); "
                          "stop it, or give this one another VERITRAIN_WORKER_HOME") from None
    return fh


def run_worker(settings: WorkerSettings, account: Any, *, once: bool = False, max_tasks: int | None = None,
               trainer: tasks.Trainer | None = None, say: Say | None = None,
               progress: ProgressFn | None = None, stop: threading.Event | None = None) -> Summary:
    """Run the worker loop. ``trainer`` is the one hook for non-default training (tests, the
    adversarial demo in ``adversary.worker``); the CLI never passes it."""
    worker = Worker(settings, account, trainer=trainer, say=say, progress=progress, stop=stop)
    try:
        return worker.run(once=once, max_tasks=max_tasks)
    finally:
        worker.close()

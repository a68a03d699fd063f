"""Sampling verification of revealed results, and challenges of wrong ones.

For each ``ResultRevealed`` (recorded in the journal by the service as ``result:<task>:<worker>``)
the watcher decides which segments to replay (:mod:`verifier.sampling`), replays them in
order (:mod:`verifier.replay`), and on the first mismatch builds the challenge with Merkle
proofs (:mod:`verifier.challenge`) and sends it while the challenge window is open. A result
whose manifest does not match its revealed root, or cannot be fetched on ``MANIFEST_TRIES``
ticks in a row, is challenged at segment 0 without proofs: data availability is the worker's
burden, so it must answer on-chain with its leaves or lose (a fabricated root cannot). Every
step is journaled before it is acted on, so a restarted verifier never challenges twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from verifier import sampling
from verifier.challenge import ChallengeError, build_challenge, unproven_challenge
from verifier.keys import KeySource
from verifier.records import ResultPhase as R
from verifier.replay import (
    MATCH,
    MISMATCH,
    WITHHELD,
    SegmentReplayer,
    load_job_document,
    load_manifest,
)
from veritrain import crypto
from veritrain.chain.receipts import tx_hash
from veritrain.chain.states import ClaimStatus, JobStatus
from veritrain.errors import (
    ChainError,
    ContractRevert,
    IntegrityError,
    ManifestError,
    SpecError,
    StorageError,
    VeritrainError,
)
from veritrain.journal import Item, Journal
from veritrain.starts import BoundStarts, fetch_initial_model
from veritrain.tasks import split_task_id

log = logging.getLogger("veritrain.verifier.watcher")

#: The h_{j+1} a challenger names when the worker's checkpoint j cannot be opened: it has no
#: replay of its own to offer, and the committee's "unavailable" votes decide.
WITHHELD_CLAIM = "0x" + hashlib.sha256(b"veritrain/withheld-checkpoint").hexdigest()

#: Ticks on which a result's manifest could not be fetched before it is challenged as withheld.
MANIFEST_TRIES = 3

#: Result phases: waiting, then one final state.
PENDING = (R.SEEN,)
FINAL = (R.VERIFIED, R.CHALLENGED, R.START_SLASHED, R.SKIPPED, R.NO_KEY, R.UNAVAILABLE, R.UNRUNNABLE,
         R.MISSED, R.CHALLENGE_FAILED, R.ERROR)


@dataclass
class WatchConfig:
    p: float
    secret: bytes
    full_jobs: frozenset[int] = frozenset()
    #: Do not start a challenge with less than this many seconds of window left.
    margin: int = 0


class Watcher:
    def __init__(self, chain: Any, journal: Journal, replayer: SegmentReplayer, keys: KeySource,
                 config: WatchConfig) -> None:
        self.chain = chain
        self.journal = journal
        self.replayer = replayer
        self.keys = keys
        self.config = config
        self._starts: dict[int, BoundStarts | None] = {}

    def pending(self) -> list[Item]:
        return self.journal.items("result:", phases=PENDING)

    def process(self, item: Item) -> str:
        """Check one revealed result to a final phase; returns that phase."""
        try:
            return self._process(item)
        except ChainError:
            raise  # transient: retried on the next tick
        except VeritrainError as exc:
            log.warning("result %s: %s", item.key, exc)
            self.journal.put(item.key, R.ERROR, detail=f"{type(exc).__name__}: {exc}")
            return R.ERROR

    def _process(self, item: Item) -> str:
        d = item.data
        key, task_id, worker = item.key, int(d["task_id"]), str(d["worker"])
        job_id = split_task_id(task_id)[0]
        if worker.lower() == self.chain.address.lower():
            return self._final(key, R.SKIPPED, "own result")
        if self.chain.timestamp() + self.config.margin > int(d["challenge_deadline"]):
            return self._final(key, R.MISSED, "challenge window closed before it could be checked")
        doc = load_job_document(self.replayer.storage, d["spec_cid"])
        policy = doc.spec.verification
        if isinstance(policy.verifiers, list) and self.chain.address.lower() not in {
                a.lower() for a in policy.verifiers}:
            return self._final(key, R.SKIPPED, "this verifier is not on the job's verifier list")
        full = policy.full_verification or job_id in self.config.full_jobs
        if self.config.p == 0 and not full:
            return self._final(key, R.SKIPPED, "p = 0: this verifier samples nothing")
        data_key = self.keys.job_key(job_id)
        if data_key is None:
            if self.keys.pending(job_id):
                self.journal.put(key, R.SEEN, detail=f"waiting for the data key of job {job_id}")
                return R.SEEN  # asked on-chain: looked at again next tick, until the window closes
            return self._final(key, R.NO_KEY, f"no data key for job {job_id}")
        try:
            manifest = self._manifest(d, task_id, worker)
        except (ManifestError, StorageError) as exc:
            return self._no_manifest(item, task_id, worker, exc)
        wrong = self._wrong_start(doc, data_key, task_id, manifest)
        if wrong is not None:  # a proof alone slashes it: no replay, no committee
            return self.send_wrong_start(key, task_id, worker, wrong)
        ctx = self._context(doc, manifest, data_key, task_id, worker)
        seed = sampling.task_seed(self.config.secret, self.chain.chain_id, task_id, worker,
                                  manifest.root_bytes())
        segments = sampling.choose_segments(seed, ctx.n_segments, self.config.p, full=full)
        self.journal.put(key, R.SEEN, segments=segments, full=full, n_segments=ctx.n_segments, checks=[])
        checks: list[dict[str, Any]] = []
        for j in segments:
            check = self.replayer.check(ctx, j)
            checks.append(check.as_dict())
            self.journal.put(key, R.SEEN, checks=checks)
            if check.outcome == MISMATCH:
                return self._challenge(key, task_id, manifest, check.j, check.replayed or "")
            if check.outcome == WITHHELD:  # unopenable evidence counts against the worker
                return self._challenge(key, task_id, manifest, check.j, WITHHELD_CLAIM)
            if check.outcome != MATCH:
                return self._final(key, check.outcome, check.detail)
        return self._final(key, R.VERIFIED, f"{len(segments)} of {ctx.n_segments} segments replayed")

    def check_opt_out(self, item: Item) -> str:
        """An opened forced error (``SeedOpened``, drawn at segment j*; docs/spec/forced.md):
        replay segment j* of the worker's result. Reproducing its leaf j*+1 means it published
        the real checkpoint where it had to publish the forced one (the opt-out), which
        ``challengeOptOut`` puts to a committee. Returns the item's final phase."""
        d = item.data
        task_id, worker, j = int(d["task_id"]), str(d["worker"]), int(d["segment"])
        result = self.journal.get(f"result:{task_id}:{worker.lower()}")
        if result is None or worker.lower() == self.chain.address.lower():
            return self._final(item.key, "skipped", "own result" if result else "its reveal was not seen")
        if self.journal.txs(item.key, "challenge_opt_out"):
            return self._final(item.key, "challenged", "already challenged")
        if self.config.p == 0:
            return self._final(item.key, "skipped", "p = 0: this verifier checks nothing")
        job_id = split_task_id(task_id)[0]
        try:
            data_key = self.keys.job_key(job_id)
            if data_key is None:
                return self._final(item.key, "skipped", f"no data key for job {job_id}")
            doc = load_job_document(self.replayer.storage, result.data["spec_cid"])
            manifest = self._manifest(result.data, task_id, worker)
            check = self.replayer.check(self._context(doc, manifest, data_key, task_id, worker), j)
        except ChainError:
            raise
        except VeritrainError as exc:
            return self._final(item.key, "error", f"{type(exc).__name__}: {exc}")
        if check.outcome != MATCH:  # the forced checkpoint as required (or nothing to go on)
            return self._final(item.key, "complied" if check.outcome == MISMATCH else check.outcome,
                               check.detail)
        try:
            tx = self.chain.challenge_opt_out(task_id, worker)
            self.chain.send(self.journal, item.key, "challenge_opt_out", tx, detail=f"segment {j}")
        except VeritrainError as exc:
            if isinstance(exc, ChainError) and not isinstance(exc, ContractRevert):
                raise
            return self._final(item.key, "challenge_failed", str(exc))
        return self._final(item.key, "challenged", f"segment {j} replays to its leaf {j + 1}: the real "
                           "checkpoint, not the forced one")

    def _manifest(self, result: dict[str, Any], task_id: int, worker: str) -> Any:
        """The result's manifest, checked against its revealed root."""
        return load_manifest(self.replayer.storage, result["manifest_cid"],
                             root=bytes.fromhex(result["root"][2:]), task_id=task_id, worker=worker)

    def _context(self, doc: Any, manifest: Any, data_key: bytes, task_id: int, worker: str) -> Any:
        """What a replay of the result needs: its task's shard key from the job's data key."""
        shard_key = crypto.shard_key(data_key, doc.binding, doc.task_key(task_id).shard)
        return self.replayer.context(doc, manifest, shard_key, task_id, worker)

    def bound_starts(self, doc: Any, data_key: bytes, job_id: int) -> BoundStarts | None:
        """The job's bound starts, computed once per job; None (logged) when the root computed
        here is not the one bound on-chain (nothing this verifier could prove then)."""
        if job_id not in self._starts:
            try:
                starts = BoundStarts.of(doc, fetch_initial_model(doc, self.replayer.storage, data_key))
            except (StorageError, IntegrityError, SpecError) as exc:  # segments are still sampled
                log.warning("job %d: cannot compute its bound starts yet: %s", job_id, exc)
                return None
            bound = self.chain.job(job_id).starts_root
            if starts.root != bound:
                log.warning("job %d: its bound starts 0x%s are not the starts of its document (0x%s)",
                            job_id, bound.hex(), starts.root.hex())
                self._starts[job_id] = None
            else:
                self._starts[job_id] = starts
        return self._starts[job_id]

    def _wrong_start(self, doc: Any, data_key: bytes, task_id: int, manifest: Any) -> tuple[Any, ...] | None:
        """``slashWrongStart``'s arguments (after task and worker) when the result's ``h_0`` is
        not its task's bound start; None when it is (or cannot be proven)."""
        starts = self.bound_starts(doc, data_key, split_task_id(task_id)[0])
        if starts is None:
            return None
        index = doc.task_key(task_id).shard
        return starts.wrong_start(index, manifest.hash_bytes(0), manifest.proof(0))

    def send_wrong_start(self, key: str, task_id: int, worker: str, args: tuple[Any, ...]) -> str:
        """Slash a wrong start once (journaled like a challenge)."""
        earlier = [t for t in self.journal.txs(key, "slash_start") if t.status in ("intent", "mined")]
        if earlier and self.chain.claim_status(task_id, worker) == ClaimStatus.ENDED:
            return self._final(key, R.START_SLASHED, "wrong start already slashed")
        self.journal.put(key, R.SEEN,
                         wrong_start={"started": "0x" + args[0].hex(), "bound": "0x" + args[2].hex()})
        tx = self.journal.tx_intent(key, "slash_start", detail="h_0 is not the bound start")
        try:
            receipt = self.chain.slash_wrong_start(task_id, worker, args)
        except VeritrainError as exc:
            self.journal.tx_update(tx, "failed", detail=str(exc))
            if isinstance(exc, ChainError) and not isinstance(exc, ContractRevert):
                raise
            return self._final(key, R.CHALLENGE_FAILED, str(exc))
        self.journal.tx_update(tx, "mined", tx_hash=tx_hash(receipt))
        self.journal.put(key, R.START_SLASHED, detail=f"h_0 0x{args[0].hex()} is not the bound start "
                         f"0x{args[2].hex()}: slashed by proof", slash_tx=tx_hash(receipt))
        return R.START_SLASHED

    def ask_key(self, item: Item) -> None:
        """For a newly posted job (``vkey:<job>`` in phase ``wanted``): ask for its key now if this
        verifier will sample it (p > 0 or full verification, and the job's policy admits it);
        otherwise record ``not_needed``. IPFS or RPC trouble leaves it ``wanted`` for the next tick."""
        job_id = int(item.key.split(":")[1])
        if str(item.data.get("requester", "")).lower() == self.chain.address.lower():
            self.journal.put(item.key, "not_needed", detail="own job")
            return
        over = self._over(job_id)
        if over:  # a fresh verifier meets every job ever posted: asking for theirs would cost a
            self.journal.put(item.key, "not_needed", detail=over)  # transaction and a log search each
            return
        try:
            doc = load_job_document(self.replayer.storage, item.data["spec_cid"])
        except VeritrainError as exc:
            log.info("job %d: cannot read its spec yet: %s", job_id, exc)
            return
        policy = doc.spec.verification
        full = policy.full_verification or job_id in self.config.full_jobs
        listed = not isinstance(policy.verifiers, list) or self.chain.address.lower() in {
            a.lower() for a in policy.verifiers}
        if not listed or (self.config.p == 0 and not full):
            self.journal.put(item.key, "not_needed",
                             detail="not on the job's verifier list" if not listed else "p = 0")
            return
        try:
            self.keys.job_key(job_id)  # asks on-chain (ChainKeySource), or finds the key already there
        except ChainError:
            raise  # transient: retried on the next tick
        except VeritrainError as exc:  # e.g. an envelope that does not open: its results say so too
            log.warning("job %d: %s", job_id, exc)

    def _over(self, job_id: int) -> str | None:
        """Why job ``job_id`` has nothing left to check (None while it may): closed or cancelled,
        or every slot settled (paid after its challenge window, or closed)."""
        job = self.chain.job(job_id)
        if job.status != JobStatus.OPEN:
            return f"the job is {job.status.name.lower()}"
        if job.settled_slots >= job.task_count * job.redundancy:
            return "every slot of the job is settled"
        return None

    def _final(self, key: str, phase: str, detail: str) -> str:
        self.journal.put(key, phase, detail=detail)
        return phase

    def _no_manifest(self, item: Item, task_id: int, worker: str, exc: VeritrainError) -> str:
        """The revealed root cannot be opened from its manifest: challenge segment 0 without
        proofs (the worker must answer with its leaves) once this is not a passing IPFS hiccup."""
        tries = int(item.data.get("manifest_tries", 0)) + 1
        if isinstance(exc, StorageError) and tries < MANIFEST_TRIES:
            self.journal.put(item.key, R.SEEN, manifest_tries=tries,
                             detail=f"manifest not fetched yet: {exc}")
            return R.SEEN
        count = self.chain.job(split_task_id(task_id)[0]).checkpoint_count
        try:
            ch = unproven_challenge(task_id, worker, 0, bytes.fromhex(WITHHELD_CLAIM[2:]),
                                    checkpoint_count=count)
        except ChallengeError as err:
            return self._final(item.key, "challenge_failed", str(err))
        self.journal.put(item.key, R.SEEN, manifest_tries=tries, challenge=ch.as_dict(),
                         detail=f"the result's manifest cannot be opened: {exc}")
        return self.send_challenge(item.key, ch)

    def _challenge(self, key: str, task_id: int, manifest: Any, j: int, replayed: str) -> str:
        try:
            ch = build_challenge(manifest, task_id, j, bytes.fromhex(replayed[2:]))
        except ChallengeError as exc:
            return self._final(key, R.CHALLENGE_FAILED, str(exc))
        self.journal.put(key, R.SEEN, challenge=ch.as_dict())
        return self.send_challenge(key, ch)

    def _opened_by_me(self, ch: Any) -> bool:
        """Whether a dispute of ``ch``'s claim opened by this verifier is on-chain (the claim may
        be Disputed by somebody else's challenge: several run side by side)."""
        return self.chain.has_challenged(ch.task_id, ch.worker)

    def send_challenge(self, key: str, ch: Any) -> str:
        """Send ``ch`` once: a journaled intent from an earlier (crashed) run is never resent
        blindly; the chain says whether it landed."""
        earlier = [t for t in self.journal.txs(key, "challenge") if t.status in ("intent", "sent", "mined")]
        if earlier:
            status = self.chain.claim_status(ch.task_id, ch.worker)
            if status != ClaimStatus.REVEALED and self._opened_by_me(ch):
                return self._final(key, R.CHALLENGED, f"challenge already sent (claim is {status.label})")
        try:
            receipt = self.chain.send(self.journal, key, "challenge", self.chain.challenge(ch),
                                      detail=f"segment {ch.j}")
        except VeritrainError as exc:  # journaled as failed by the send
            if isinstance(exc, ChainError) and not isinstance(exc, ContractRevert):
                raise  # RPC trouble: retry next tick (the intent makes the retry check the chain)
            return self._final(key, R.CHALLENGE_FAILED, str(exc))
        dispute_id = self.chain.dispute_id_from(receipt)
        self.journal.put(key, R.CHALLENGED, detail=f"segment {ch.j} challenged", dispute_id=dispute_id,
                         challenge_tx=tx_hash(receipt))
        return R.CHALLENGED

"""What the worker owes a dispute over its result, done on its own.

- **Availability** (protocol.md, disputes 4): until its task is final the worker keeps the
  manifest and every encrypted checkpoint pinned on its IPFS node, re-adding any block the
  node lost from the ciphertext kept on disk (same bytes, same CID). A referee that cannot
  fetch checkpoint ``j`` votes UNAVAILABLE, which counts against the worker.
- **Release**: once the task is final (or slashed) no challenge can open, so the evidence,
  checkpoints ``0..n-1``, is unpinned (the node may collect it). The manifest and the final
  checkpoint stay pinned: they are the result the requester fetches.
- **Referee keys**: the worker holds the data key, so it delivers the key envelope to each
  drawn referee (``deliverRefereeKey``, context :func:`veritrain.jobdoc.referee_key_context`)
  rather than depend on the requester; a referee that already has one on-chain
  (``RefereeKeyDelivered``, e.g. from the requester's key service) is not served again.
- **Answers**: a challenge may prove nothing about the worker's root (data availability is
  the worker's burden). While such a dispute is Answering the worker sends ``answer`` with its
  leaves ``(j, h_j)``, ``(j+1, h_{j+1})`` and their Merkle proofs, built from the manifest it
  kept (:mod:`veritrain.chain.segments`); an unanswered challenge is lost at its deadline.
- **Liveness**: it draws the committee once the draw block is mined and settles the dispute
  after its deadlines, so its claim never waits on somebody else. Several disputes of one
  claim may be open at once; each is served.
Each dispute is a journal item ``dispute:<id>`` recording the referees served.

:class:`DisputeDuty` gets what it needs explicitly (the chain, storage, journal, the worker's
address, a ``say`` callable, its task folders and data-key access), not the whole Worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veritrain import envelope, forced
from veritrain import manifest as manifest_mod
from veritrain.chain import segments
from veritrain.chain.states import DisputeStatus
from veritrain.errors import ContractRevert, StorageError, VeritrainError
from veritrain.jobdoc import referee_key_context
from veritrain.journal import Item, Journal
from veritrain.storage import Storage

if TYPE_CHECKING:
    from veritrain.chain.facades import Tx


@dataclass(frozen=True)
class DisputeDuty:
    """One worker's duties in the disputes over its results.

    ``chain`` is the worker's :class:`worker.chain.WorkerChain` (typed reads and the journaled
    send); ``task_dir(task_id)`` is where a task's manifest and ciphertexts are kept;
    ``data_key(item)`` opens the task's data key; ``availability_interval`` is how often (s)
    the pins are checked.
    """

    chain: Any
    storage: Storage
    journal: Journal
    address: str
    say: Callable[[str], None]
    task_dir: Callable[[int], Path]
    data_key: Callable[[Item], bytes]
    availability_interval: float

    def keep_available(self, it: Item, *, force: bool = False) -> list[str]:
        """Pin the task's manifest and checkpoints; re-add what the node lost. Returns re-added CIDs."""
        last = float(it.data.get("available_at", 0))
        if not force and time.time() - last < self.availability_interval:
            return []
        tid = it.data["task_id"]
        tdir = self.task_dir(tid)
        files = {it.data["manifest_cid"]: tdir / "manifest.json"}
        files.update({cid: tdir / "enc" / f"ckpt-{int(i):06d}.enc"
                      for i, cid in it.data.get("cids", {}).items()})
        readded = []
        for cid, path in files.items():
            try:
                if not self.storage.has(cid):
                    if not path.exists():
                        self.say(f"task {tid}: {cid} is gone from IPFS and {path}; referees cannot fetch it")
                        continue
                    self.storage.put_file(path)
                    readded.append(cid)
                self.storage.pin(cid)
            except StorageError as exc:
                self.say(f"task {tid}: cannot keep {cid} available right now: {exc}")
                return readded
        self.journal.put(it.key, it.phase, available_at=time.time())
        return readded

    def release(self, it: Item) -> list[str]:
        """Unpin the task's evidence (every checkpoint but the last) now that no dispute can open;
        returns the CIDs unpinned. Unpinning what is not pinned is no error, so a repeat after a
        crash is harmless; a node that cannot be reached now is said, and the pins stay."""
        cids = {int(i): cid for i, cid in it.data.get("cids", {}).items()}
        if not cids:
            return []
        last = max(cids)
        evidence = [cids[i] for i in sorted(cids) if i != last]
        tid = it.data["task_id"]
        try:
            for cid in evidence:
                self.storage.unpin(cid)
        except StorageError as exc:
            self.say(f"task {tid}: could not unpin its checkpoints (they stay pinned): {exc}")
            return []
        self.journal.put(it.key, it.phase, released_at=time.time())
        self.say(f"task {tid}: final; unpinned {len(evidence)} checkpoints of evidence, "
                 f"kept the manifest and the final checkpoint {cids[last]} pinned")
        return evidence

    def disputes_of(self, it: Item) -> list[int]:
        """Ids of disputes over this worker's claim on the task (as accused or worker-accuser)."""
        ids = []
        opened = self.chain.resolver.logs("DisputeOpened", it.data["from_block"], taskId=it.data["task_id"])
        for log in opened:
            a = log.args
            if a.accused == self.address or (a.accuserIsWorker and a.accuser == self.address):
                ids.append(int(a.disputeId))
        return ids

    def handle(self, it: Item) -> bool:
        """Serve every open dispute over the claim; True if a transaction was sent."""
        self.keep_available(it, force=not it.data.get("dispute_seen"))
        if not it.data.get("dispute_seen"):
            self.journal.put(it.key, it.phase, dispute_seen=True)
            self.say(f"task {it.data['task_id']}: result disputed; keeping checkpoints available")
        acted = False
        for dispute_id in self.disputes_of(it):
            acted |= self.serve(it, dispute_id)
        return acted

    def serve(self, it: Item, dispute_id: int) -> bool:
        """Do what dispute ``dispute_id`` needs of this worker now; True if a transaction was sent."""
        chain, resolver = self.chain, self.chain.resolver
        d = chain.dispute(dispute_id)
        key = f"dispute:{dispute_id}"
        rec = self.journal.get(key) or self.journal.put(key, "open", task=it.data["task_id"], served=[])
        status, now = d.status, chain.now()
        try:
            if (status in (DisputeStatus.ANSWERING, DisputeStatus.DRAWING) and d.accused == self.address
                    and now <= d.deadline):
                # an opt-out challenge asks whether j*+1 is the real checkpoint: answered with
                # the leaves, like any challenge, never as forced
                opened = None if d.accuser_next == forced.OPT_OUT else self.forced_answer(it, d.segment)
                if opened is not None:
                    self.say(f"dispute {dispute_id}: segment {d.segment} holds this claim's forced error; "
                             "answering so (the challenger wins the jackpot, the claim is released)")
                    return self._tx(key, "answer_forced", resolver.answerForced(dispute_id, *opened))
            if status == DisputeStatus.ANSWERING:
                if now > d.deadline:
                    return self._tx(key, "settle", resolver.settle(dispute_id))
                if d.accused == self.address:
                    try:
                        seg = self.answer_segment(it, d.segment)
                    except (OSError, VeritrainError, ValueError) as exc:
                        self.say(f"dispute {dispute_id}: cannot answer (the result will be lost at the "
                                 f"deadline): {exc}")
                        return False
                    return self._tx(key, "answer", resolver.answer(dispute_id, seg))
            elif status == DisputeStatus.DRAWING:
                if now > d.deadline:
                    return self._tx(key, "settle", resolver.settle(dispute_id))
                if chain.block_number() > d.draw_block:
                    return self._tx(key, "draw", resolver.drawCommittee(dispute_id))
            elif status == DisputeStatus.VOTING:
                acted = self.deliver_keys(it, dispute_id, rec)
                reveal_deadline = d.deadline + chain.resolver_params().reveal_window
                if now > reveal_deadline:
                    acted |= self._tx(key, "settle", resolver.settle(dispute_id))
                return acted
            elif status == DisputeStatus.SETTLED and rec.phase != "settled":
                self.journal.put(key, "settled", outcome=int(d.outcome))
        except ContractRevert as exc:  # somebody else acted first, or too early: look again next tick
            self.say(f"dispute {dispute_id}: {exc}")
        return False

    def forced_answer(self, it: Item, j: int) -> tuple[bytes, bytes] | None:
        """``(secret, snap)`` for ``answerForced`` when segment ``j`` shows this claim's forced
        error (j* or j*+1, docs/spec/forced.md); None for any other segment or claim."""
        data = it.data
        if data.get("forced_segment") is None:
            return None
        secret, snap = bytes.fromhex(data["forced_secret"]), bytes.fromhex(data["forced_snap"])
        sel = forced.select(secret, snap, bps=self.chain.resolver_params().forced_error_bps, redundancy=1,
                            checkpoints=len(data["hashes"]) - 1)
        return (secret, snap) if j in sel.segments else None

    def answer_segment(self, it: Item, j: int) -> segments.Segment:
        """Segment ``j`` of this worker's result, with proofs, from the manifest it kept on disk."""
        tdir = self.task_dir(it.data["task_id"])
        m = manifest_mod.load((tdir / "manifest.json").read_bytes(), source=str(tdir / "manifest.json"))
        return segments.segment([m.hash_bytes(i) for i in range(m.n_checkpoints)], j)

    def deliver_keys(self, it: Item, dispute_id: int, rec: Item) -> bool:
        """Send the data key, wrapped for each drawn referee not yet served; True if one was sent."""
        chain = self.chain
        referees = [seat.referee for seat in chain.resolver.getBallots(dispute_id)]
        served = list(rec.data.get("served", []))
        # the requester's key service (or an earlier run of ours) may have served some already:
        # the chain's RefereeKeyDelivered events decide, so no referee gets a second envelope
        delivered = {str(log.args.referee).lower() for log in chain.resolver.logs(
            "RefereeKeyDelivered", it.data["from_block"], disputeId=dispute_id)}
        acted = False
        data_key = self.data_key(it)
        for referee in referees:
            if referee in served:
                continue
            if str(referee).lower() in delivered:
                served.append(referee)
                self.journal.put(f"dispute:{dispute_id}", "open", served=served)
                continue
            pub = chain.registry.getVerifier(referee).pub_key
            ctx = referee_key_context(chain.chain_id, chain.market.address, dispute_id, referee)
            env = envelope.wrap(data_key, pub, ctx)
            self._tx(f"dispute:{dispute_id}", f"key:{referee}",
                     chain.resolver.deliverRefereeKey(dispute_id, referee, env))
            served.append(referee)
            self.journal.put(f"dispute:{dispute_id}", "open", served=served)
            acted = True
        return acted

    def _tx(self, item: str, action: str, fn: Tx) -> bool:
        self.chain.send_once(fn, self.journal, item, action)
        return True

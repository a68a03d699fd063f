"""Forced errors end to end on the real stack (Anvil + IPFS; docs/spec/forced.md), with the real
worker loop and the real verifier services:

1. a drawn worker publishes a checkpoint one ulp wrong; a sampling verifier replays, catches it
   and challenges; the worker answers `answerForced`; the verifier gets its bond and the
   jackpot; the worker opens its seed after the window, the verifier replays j* once more and
   finds the forced checkpoint (it complied), and the worker is paid after one more window;
2. a drawn worker that opts out (publishes the real checkpoint) passes every replay, but once
   its seed is open the verifier reproduces its leaf j*+1 and sends `challengeOptOut`; the
   worker answers with its leaves, a one-seat committee replays and votes, and the worker is
   slashed.
The contract-level attacks are in tests/contracts/test_forced_errors.py."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from verifier_helpers import REWARD, STAKE, Requester, contracts, small_spec, time_travel

from verifier.chain import VerifierChain
from verifier.keys import ChainKeySource
from verifier.service import VerifierService
from veritrain import forced
from veritrain.chain.states import ClaimStatus, Outcome
from veritrain.checkpoint import checkpoint_hash
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import RESOLVER_PARAMS, deploy_local
from veritrain.journal import Journal
from veritrain.manifest import load as load_manifest
from veritrain.storage import IpfsStorage
from veritrain.training.sinks import DirectorySink
from worker.loop import Worker
from worker.settings import WorkerSettings

pytestmark = pytest.mark.timeout(360)
FEE_BPS = 200  # 2 % of the rewards into the pool; every claim drawn (rate 100 %)
CHALLENGE_WINDOW = 120
BOND = RESOLVER_PARAMS["challengeBond"]


class OptingOut(Worker):
    """A drawn worker that publishes the real checkpoint j*+1 instead of the forced one."""

    def _publish_forced(self, d: Any, spec: Any, ckpts: Path) -> bytes:
        return checkpoint_hash(DirectorySink(ckpts).read(d.forced_segment + 1))

    def _published(self, d: Any, ckpts: Path) -> Any:
        return DirectorySink(ckpts).path


class Stack:
    """A deployment with forced errors on (every claim drawn), a requester, verifier services
    and one worker loop in a thread."""

    def __init__(self, w3: Any, ipfs: Any, anvil: Any, tmp: Path, **resolver: int) -> None:
        self.w3, self.tmp, self.anvil = w3, tmp, anvil
        self.dep = deploy_local(w3, dev_account(0), resolver_params={
            "forcedErrorBps": 10_000, "jackpotFeeBps": FEE_BPS, **resolver})
        self.storage = IpfsStorage(ipfs.url)
        self.requester = Requester(w3, self.dep, self.storage)
        self.job = self.requester.post_job(small_spec(num_shards=1), challenge_window=CHALLENGE_WINDOW)
        self.c = contracts(w3, self.dep)
        self.settings = WorkerSettings(rpc_url=anvil.url, deployment=save(self.dep, tmp / "deployment.json"),
                                       ipfs_api=ipfs.url, home=tmp / "worker", poll_interval=0.1)
        self.services: list[VerifierService] = []

    def verifier(self, index: int, p: float) -> VerifierService:
        acct = dev_account(index)
        chain = VerifierChain(self.anvil.url, acct, self.dep, nonce_dir=self.tmp / "nonces")
        journal = Journal(self.tmp / f"verifier-{index}" / "journal.sqlite")
        svc = VerifierService(chain, self.storage, journal, ChainKeySource(chain, journal), p=p,
                              secret=bytes([index]) * 32)
        assert svc.ensure_registered() == f"registered with stake {BOND}"
        self.services.append(svc)
        return svc

    def run(self, worker: Worker, until: Any, seconds: float = 240) -> None:
        """Drive the world (keys, ticks, blocks, time) while the worker loop runs, until ``until()``."""
        t = self.job.task_id(0)
        served: set[str] = set()
        thread = threading.Thread(target=lambda: worker.run(max_tasks=1), daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + seconds
            while thread.is_alive() and time.monotonic() < deadline and not until():
                for log in self.c["JobMarket"].events.TaskClaimed().get_logs(from_block=0):
                    if log.args.worker not in served:
                        self.requester.deliver_key(self.job, log.args.taskId, worker.account)
                        served.add(log.args.worker)
                self.requester.deliver_verifier_keys(self.job)
                for d in self.c["DisputeResolver"].events.CommitteeDrawn().get_logs(from_block=0):
                    key = f"referee-keys:{d.args.disputeId}"
                    if key not in served:
                        self.requester.deliver_referee_keys(self.job, d.args.disputeId)
                        served.add(key)
                for svc in self.services:
                    svc.tick()
                it = worker.journal.get(f"task:{t}")
                if it is not None and it.phase == "watching" and not self._disputed(t, worker.address):
                    time_travel(self.w3, 5)  # the challenge windows run out while nothing is disputed
                self.w3.provider.make_request("evm_mine", [])
                time.sleep(0.2)
        finally:
            worker.stop.set()
            thread.join(30)

    def _disputed(self, t: int, who: str) -> bool:
        return self.c["JobMarket"].functions.getClaim(t, who).call()[0] == ClaimStatus.DISPUTED

    def events(self, name: str) -> list[Any]:
        return list(getattr(self.c["DisputeResolver"].events, name)().get_logs(from_block=0))

    def gained(self, acct: Any, before: int) -> int:
        token, market = self.c["DevToken"], self.c["JobMarket"]
        return (token.functions.balanceOf(acct.address).call() + market.functions.owed(acct.address).call()
                - before)

    def solvent(self) -> bool:
        market = self.c["JobMarket"]
        held = self.c["DevToken"].functions.balanceOf(market.address).call()
        return bool(held == market.functions.liabilities().call())


def test_a_drawn_worker_publishes_a_forced_error_a_sampling_verifier_catches_it_and_wins_the_jackpot(
        fresh_chain: Any, ipfs: Any, anvil: Any, tmp_path: Path) -> None:
    s = Stack(fresh_chain, ipfs, anvil, tmp_path)
    assert s.c["DisputeResolver"].functions.jackpot().call() == REWARD * FEE_BPS // 10_000
    acct = dev_account(4)
    before = s.c["DevToken"].functions.balanceOf(acct.address).call()
    verifier = s.verifier(4, p=1.0)
    said: list[str] = []
    worker = Worker(s.settings, dev_account(2), say=said.append)
    t = s.job.task_id(0)
    s.run(worker, until=lambda: getattr(worker.journal.get(f"task:{t}"), "phase", None) == "finalized")
    task = worker.journal.get(f"task:{t}")
    assert task is not None and task.phase == "finalized", (task, said[-10:])
    j = task.data["forced_segment"]
    assert j is not None and any("drawn as a forced error" in line for line in said)
    # what the worker published at j*+1 is the forced checkpoint, built from its real ones
    m = load_manifest((worker.task_dir(t) / "manifest.json").read_bytes())
    ckpts = worker.task_dir(t) / "ckpt"
    real = [DirectorySink(ckpts).read(i) for i in range(m.n_checkpoints)]
    draw = forced.draw(bytes.fromhex(task.data["forced_secret"]), bytes.fromhex(task.data["forced_snap"]))
    wrong = forced.perturb(real[j], real[j + 1], draw, None)
    assert m.hash_bytes(j + 1) == hashlib.sha256(wrong).digest() != hashlib.sha256(real[j + 1]).digest()
    assert [m.hash_bytes(i) for i in range(m.n_checkpoints) if i != j + 1] == \
           [hashlib.sha256(real[i]).digest() for i in range(m.n_checkpoints) if i != j + 1]  # the rest real
    # the verifier caught it at j*, the worker answered it as forced: the jackpot went to the verifier
    [opened] = s.events("DisputeOpened")
    assert opened.args.accused == worker.address and opened.args.segment == j
    [settled] = s.events("DisputeSettled")
    assert settled.args.outcome == Outcome.FORCED
    [paid] = s.events("JackpotPaid")
    prize = REWARD * FEE_BPS // 10_000
    assert paid.args.catcher == acct.address and paid.args.amount == prize
    assert verifier.journal.get(f"dispute:{opened.args.disputeId}").data["jackpot"] == prize
    # then the seed was opened; the verifier replayed j* again and found the forced checkpoint
    [seed] = s.events("SeedOpened")
    assert seed.args.selected and seed.args.segment == j
    assert verifier.journal.get(f"optout:{t}:{worker.address.lower()}").phase == "complied"
    market = s.c["JobMarket"]
    assert market.functions.getClaim(t, worker.address).call()[0] == ClaimStatus.FINALIZED
    paid = market.functions.owed(worker.address).call() + worker.journal.value("withdrawn", 0)
    assert paid >= REWARD + STAKE
    # the verifier: its registration stake locked, its bond back, the jackpot won (owed or withdrawn)
    assert s.gained(acct, before) == prize - BOND
    assert s.solvent()


def test_a_drawn_worker_that_publishes_the_real_checkpoint_is_slashed_once_its_seed_opens(
        fresh_chain: Any, ipfs: Any, anvil: Any, tmp_path: Path) -> None:
    s = Stack(fresh_chain, ipfs, anvil, tmp_path, committeeSize=1)
    checker, referee = dev_account(4), dev_account(5)
    before = s.c["DevToken"].functions.balanceOf(checker.address).call()
    s.verifier(4, p=1.0)
    s.verifier(5, p=0.0)  # the committee's one seat
    worker = OptingOut(s.settings, dev_account(3))
    t = s.job.task_id(0)
    s.run(worker, until=lambda: any(e.args.outcome for e in s.events("DisputeSettled")))
    task = worker.journal.get(f"task:{t}")
    assert task is not None and task.data["forced_segment"] is not None
    j = task.data["forced_segment"]
    [seed] = s.events("SeedOpened")
    assert seed.args.selected and seed.args.segment == j
    [opened] = s.events("DisputeOpened")  # every replay matched: no challenge until the opening
    assert opened.args.segment == j and opened.args.accuser == checker.address
    assert s.c["DisputeResolver"].functions.getDispute(opened.args.disputeId).call()[-1] == forced.OPT_OUT
    [drawn] = s.events("CommitteeDrawn")
    assert list(drawn.args.referees) == [referee.address]
    [settled] = s.events("DisputeSettled")
    assert settled.args.outcome == Outcome.ACCUSED_LOST
    assert s.c["JobMarket"].functions.getClaim(t, worker.address).call()[0] == ClaimStatus.ENDED
    assert s.gained(checker, before) == STAKE * RESOLVER_PARAMS["bountyBps"] // 10_000 - BOND  # the bounty
    assert s.solvent()

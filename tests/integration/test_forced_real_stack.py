"""A forced error end to end on the real stack (Anvil + IPFS; docs/spec/forced.md): the real
worker loop is drawn, publishes a checkpoint one ulp wrong, the real sampling verifier service
replays, finds it and challenges, the worker answers `answerForced`, the verifier is paid its
bond and the jackpot, and the worker is paid as usual. The contract-level attacks are in
tests/contracts/test_forced_errors.py."""

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
from veritrain.deployments import save
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import RESOLVER_PARAMS, deploy_local
from veritrain.journal import Journal
from veritrain.manifest import load as load_manifest
from veritrain.storage import IpfsStorage
from worker.loop import Worker
from worker.settings import WorkerSettings

pytestmark = pytest.mark.timeout(300)
FEE_BPS = 200  # 2 % of the rewards into the pool; every claim drawn (rate 100 %)
CHALLENGE_WINDOW = 120


def test_a_drawn_worker_publishes_a_forced_error_a_sampling_verifier_catches_it_and_wins_the_jackpot(
        fresh_chain: Any, ipfs: Any, anvil: Any, tmp_path: Path) -> None:
    w3 = fresh_chain
    dep = deploy_local(w3, dev_account(0),
                       resolver_params={"forcedErrorBps": 10_000, "jackpotFeeBps": FEE_BPS})
    storage = IpfsStorage(ipfs.url)
    requester = Requester(w3, dep, storage)
    job = requester.post_job(small_spec(num_shards=1), challenge_window=CHALLENGE_WINDOW)
    c = contracts(w3, dep)
    market, resolver = c["JobMarket"], c["DisputeResolver"]
    assert resolver.functions.jackpot().call() == REWARD * FEE_BPS // 10_000
    acct = dev_account(4)
    vchain = VerifierChain(anvil.url, acct, dep, nonce_dir=tmp_path / "nonces")
    vjournal = Journal(tmp_path / "verifier" / "journal.sqlite")
    verifier = VerifierService(vchain, storage, vjournal, ChainKeySource(vchain, vjournal), p=1.0,
                               secret=b"\x04" * 32)
    token = c["DevToken"]
    before = token.functions.balanceOf(acct.address).call()
    assert verifier.ensure_registered() == f"registered with stake {RESOLVER_PARAMS['challengeBond']}"
    settings = WorkerSettings(rpc_url=anvil.url, deployment=save(dep, tmp_path / "deployment.json"),
                              ipfs_api=ipfs.url, home=tmp_path / "worker", poll_interval=0.1)
    said: list[str] = []
    worker = Worker(settings, dev_account(2), say=said.append)
    t = job.task_id(0)
    thread = threading.Thread(target=lambda: worker.run(max_tasks=1), daemon=True)
    thread.start()
    served: set[str] = set()
    try:
        deadline = time.monotonic() + 240
        while thread.is_alive() and time.monotonic() < deadline:
            for log in market.events.TaskClaimed().get_logs(from_block=0):
                if log.args.worker not in served:
                    requester.deliver_key(job, log.args.taskId, dev_account(2))
                    served.add(log.args.worker)
            requester.deliver_verifier_keys(job)
            verifier.tick()
            it = worker.journal.get(f"task:{t}")
            if it is not None and it.phase == "watching":
                time_travel(w3, 5)  # let the challenge window run out once the dispute is over
            w3.provider.make_request("evm_mine", [])
            time.sleep(0.2)
    finally:
        worker.stop.set()
        thread.join(30)
    task = worker.journal.get(f"task:{t}")
    assert task is not None and task.phase == "finalized", (task, said[-10:])
    j = task.data["forced_segment"]
    assert j is not None and any("drawn as a forced error" in line for line in said)
    # what the worker published at j*+1 is the forced checkpoint, built from its real ones
    m = load_manifest((worker.task_dir(t) / "manifest.json").read_bytes())
    real = [(worker.task_dir(t) / "ckpt" / f"ckpt-{i:06d}.vtck").read_bytes() for i in range(m.n_checkpoints)]
    draw = forced.draw(bytes.fromhex(task.data["forced_secret"]), bytes.fromhex(task.data["forced_snap"]))
    wrong = forced.perturb(real[j], real[j + 1], draw, None)
    assert m.hash_bytes(j + 1) == hashlib.sha256(wrong).digest() != hashlib.sha256(real[j + 1]).digest()
    assert [m.hash_bytes(i) for i in range(m.n_checkpoints) if i != j + 1] == \
           [hashlib.sha256(real[i]).digest() for i in range(m.n_checkpoints) if i != j + 1]  # the rest real
    # the verifier caught it at j*, the worker answered it as forced: the jackpot went to the verifier
    [opened] = resolver.events.DisputeOpened().get_logs(from_block=0)
    assert opened.args.accused == worker.address and opened.args.segment == j
    [settled] = resolver.events.DisputeSettled().get_logs(from_block=0)
    assert settled.args.outcome == Outcome.FORCED
    [paid] = resolver.events.JackpotPaid().get_logs(from_block=0)
    prize = REWARD * FEE_BPS // 10_000
    assert paid.args.catcher == acct.address and paid.args.amount == prize
    assert market.functions.getClaim(t, worker.address).call()[0] == ClaimStatus.FINALIZED
    paid = market.functions.owed(worker.address).call() + worker.journal.value("withdrawn", 0)
    assert paid >= REWARD + STAKE
    stats_item = vjournal.get(f"dispute:{opened.args.disputeId}")
    assert stats_item is not None and stats_item.data["jackpot"] == prize
    # the verifier: its registration stake locked, its bond back, the jackpot won (owed or withdrawn)
    gained = (token.functions.balanceOf(acct.address).call() + market.functions.owed(acct.address).call()
              - before)
    assert gained == prize - RESOLVER_PARAMS["challengeBond"]
    assert token.functions.balanceOf(market.address).call() == market.functions.liabilities().call()

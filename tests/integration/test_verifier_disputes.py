"""The verifier service on the real stack (Anvil + js-ipfs): catch a cheater, lose a false
challenge, survive a lying referee; the HTTP API reports each."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from verifier_helpers import STAKE, Job, Requester, Worker, balance, contracts, small_spec, time_travel

from adversary.cheats import SkipStep
from verifier.api import create_app
from verifier.chain import VerifierChain
from verifier.keys import ChainKeySource
from verifier.referee import RefereeCase
from verifier.replay import engine_replay
from verifier.service import VerifierService
from veritrain.chain.states import BallotState
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import RESOLVER_PARAMS, deploy_local
from veritrain.journal import Journal
from veritrain.storage import IpfsStorage

pytestmark = pytest.mark.timeout(300)
VERIFIERS = (4, 5, 6, 7)  # dev accounts; 4 is the sampling verifier, 5..7 the only eligible referees
BOND = RESOLVER_PARAMS["challengeBond"]


@dataclass
class World:
    w3: Any
    dep: Any
    storage: IpfsStorage
    requester: Requester
    honest: Worker
    cheater: Worker
    job: Job
    tmp: Path
    services: dict[int, VerifierService]

    def service(self, index: int, *, p: float, replay: Any = engine_replay, vote_policy: Any = None,
                journal: Journal | None = None) -> VerifierService:
        acct = dev_account(index)
        home = self.tmp / f"verifier-{index}"
        chain = VerifierChain(self.w3.provider.endpoint_uri, acct, self.dep, nonce_dir=self.tmp / "nonces")
        journal = journal or Journal(home / "journal.sqlite")
        keys = ChainKeySource(chain, journal)  # sampling keys are asked for and delivered on-chain
        extra = {"vote_policy": vote_policy} if vote_policy else {}
        svc = VerifierService(chain, self.storage, journal, keys, p=p,
                              secret=bytes([index]) * 32, replay=replay, **extra)
        self.services[index] = svc
        return svc

    def tick_all(self, rounds: int = 1) -> None:
        for _ in range(rounds):
            for svc in self.services.values():
                svc.tick()


@pytest.fixture
def world(fresh_chain, ipfs, tmp_path) -> World:
    w3 = fresh_chain
    dep = deploy_local(w3, dev_account(0))
    storage = IpfsStorage(ipfs.url)
    requester = Requester(w3, dep, storage)
    spec = small_spec(num_shards=2)
    job = requester.post_job(spec)
    honest, cheater = Worker(w3, dep, storage, dev_account(2)), Worker(w3, dep, storage, dev_account(3))
    for worker, index in ((honest, 0), (cheater, 1)):
        worker.claim(job.task_id(index))
        requester.deliver_key(job, job.task_id(index), worker.acct)
    return World(w3, dep, storage, requester, honest, cheater, job, tmp_path, {})


def _register(world: World, svc: VerifierService, sampling_key: bool) -> None:
    assert svc.ensure_registered() == f"registered with stake {RESOLVER_PARAMS['challengeBond']}"
    assert svc.ensure_registered() == "already registered"


def _sample(world: World, svc: VerifierService) -> None:
    """The sampling verifier's first tick asks for the job key on-chain (its results wait);
    the requester answers; the next tick replays."""
    svc.tick()
    market = contracts(world.w3, world.dep)["JobMarket"]
    assert market.functions.verifierKeyStatus(world.job.job_id, svc.chain.address).call() == 1  # Requested
    assert all(i.phase == "seen" for i in svc.journal.items("result:"))
    assert world.requester.deliver_verifier_keys(world.job) == [svc.chain.address]
    svc.tick()
    assert svc.journal.get(f"vkey:{world.job.job_id}").phase == "delivered"
    assert len(svc.journal.txs(f"vkey:{world.job.job_id}", "requestVerifierKey")) == 1  # asked once


def _run_dispute(world: World, dispute_id: int) -> None:
    """Draw (by the challenger's housekeeping), hand referees their keys, let everyone vote."""
    world.tick_all()  # draws the committee (the draw block is already mined)
    referees = world.requester.deliver_referee_keys(world.job, dispute_id)
    assert {r.lower() for r in referees} == {dev_account(i).address.lower() for i in VERIFIERS[1:]}
    world.tick_all(3)  # ingest keys, replay, commit; reveal; settle; withdraw


def _settled(world: World, dispute_id: int) -> dict[str, Any]:
    resolver = contracts(world.w3, world.dep)["DisputeResolver"]
    logs = resolver.events.DisputeSettled().get_logs(from_block=0)
    [ev] = [e for e in logs if e["args"]["disputeId"] == dispute_id]
    return dict(ev["args"])


def test_cheater_is_challenged_slashed_and_challenger_paid(world: World):
    challenger = world.service(VERIFIERS[0], p=1.0)
    referees = [world.service(i, p=0.0) for i in VERIFIERS[1:]]
    for svc in (challenger, *referees):
        _register(world, svc, sampling_key=svc is challenger)
    world.honest.train_and_submit(world.job, 0)
    world.cheater.train_and_submit(world.job, 1, cheat=SkipStep(segment=2, offset=3))
    before = balance(world.w3, world.dep, challenger.chain.address)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _sample(world, challenger)
    # the challenge receipt also holds the token's Transfer logs: only the resolver's are decoded
    assert not [w for w in caught if "MismatchedABI" in str(w.message)], [str(w.message) for w in caught]
    cheat_key = f"result:{world.job.task_id(1)}:{world.cheater.acct.address.lower()}"
    honest_key = f"result:{world.job.task_id(0)}:{world.honest.acct.address.lower()}"
    assert challenger.journal.get(honest_key).phase == "verified"
    cheat = challenger.journal.get(cheat_key)
    assert cheat.phase == "challenged"
    assert [c["outcome"] for c in cheat.data["checks"]] == ["match", "match", "mismatch"]
    assert cheat.data["challenge"]["segment"] == 2
    dispute_id = cheat.data["dispute_id"]

    # restart: a new service over the same journal never challenges again
    restarted = world.service(VERIFIERS[0], p=1.0, journal=challenger.journal)
    restarted.tick()
    assert len(restarted.journal.txs(cheat_key, "challenge")) == 1
    assert contracts(world.w3, world.dep)["DisputeResolver"].functions.disputeCount().call() == 1

    _run_dispute(world, dispute_id)
    settled = _settled(world, dispute_id)
    assert settled["outcome"] == 1  # AccusedLost
    market = contracts(world.w3, world.dep)["JobMarket"]
    claim = market.functions.getClaim(world.job.task_id(1), world.cheater.acct.address).call()
    assert claim[0] == 7  # Ended: the slot reopened, and the claim reads as slashed, not as never made
    bounty = STAKE * RESOLVER_PARAMS["bountyBps"] // 10_000
    assert balance(world.w3, world.dep, challenger.chain.address) - before == bounty  # bond back + bounty
    for ref in referees:
        d = ref.journal.get(f"dispute:{dispute_id}").data
        assert d["duty"] == "revealed" and d["vote"] == d["honest_vote"] != str(d["accused_next"]).lower()
        assert d["my_vote"] == d["verdict"] == "Against" == BallotState(settled["verdict"]).label
        assert ref.journal.value("withdrawn_total", 0) > 0  # referee fees withdrawn

    api = TestClient(create_app(restarted.journal))
    body = api.get(f"/tasks/{world.job.task_id(1)}").json()
    assert body["results"][0]["state"] == "challenged" and body["disputes"][0]["outcome"] == "AccusedLost"
    assert api.get("/stats").json()["challenges"]["won"] == 1
    assert 'veritrain_verifier_challenges_total{outcome="won"} 1' in api.get("/metrics").text
    ref_api = TestClient(create_app(referees[0].journal))
    assert ref_api.get("/disputes").json()[0]["duty"] == "revealed"




def test_false_challenge_loses_the_bond(world: World):
    def lying_replay(spec, task, j, ck, x, y):  # claims every segment's result is something else
        data, h = engine_replay(spec, task, j, ck, x, y)
        return data, bytes(b ^ 0xFF for b in h)

    liar = world.service(VERIFIERS[0], p=1.0, replay=lying_replay)
    referees = [world.service(i, p=0.0) for i in VERIFIERS[1:]]
    for svc in (liar, *referees):
        _register(world, svc, sampling_key=svc is liar)
    liar.tick()  # the posted job is seen: its key is asked for before any result is revealed
    market = contracts(world.w3, world.dep)["JobMarket"]
    assert market.functions.verifierKeyStatus(world.job.job_id, liar.chain.address).call() == 1
    for ref in referees:  # p = 0: they sample nothing and ask for nothing
        ref.tick()
        assert market.functions.verifierKeyStatus(world.job.job_id, ref.chain.address).call() == 0
        assert ref.journal.get(f"vkey:{world.job.job_id}").phase == "not_needed"
    world.honest.train_and_submit(world.job, 0)
    worker_owed = market.functions.owed(world.honest.acct.address).call()
    before = balance(world.w3, world.dep, liar.chain.address)

    _sample(world, liar)
    item = liar.journal.get(f"result:{world.job.task_id(0)}:{world.honest.acct.address.lower()}")
    assert item.phase == "challenged" and item.data["checks"][0]["outcome"] == "mismatch"
    _run_dispute(world, item.data["dispute_id"])

    settled = _settled(world, item.data["dispute_id"])
    assert settled["outcome"] == 2  # AccuserLost
    assert balance(world.w3, world.dep, liar.chain.address) == before - BOND
    fee = BOND * RESOLVER_PARAMS["refereeFeeBps"] // 10_000
    assert market.functions.owed(world.honest.acct.address).call() - worker_owed == BOND - fee
    claim = market.functions.getClaim(world.job.task_id(0), world.honest.acct.address).call()
    assert claim[0] == 4  # Revealed again: released
    stats = TestClient(create_app(liar.journal)).get("/stats").json()
    assert stats["challenges"] == {"sent": 1, "won": 0, "lost": 1, "forced": 0, "jackpots": 0, "open": 0}


def test_one_lying_referee_is_outvoted_and_slashed(world: World):
    def lie(case: RefereeCase, vote: bytes) -> bytes:  # sides with the cheater
        return case.accused_next

    challenger = world.service(VERIFIERS[0], p=1.0)
    honest_refs = [world.service(i, p=0.0) for i in VERIFIERS[1:3]]
    liar = world.service(VERIFIERS[3], p=0.0, vote_policy=lie)
    for svc in (challenger, *honest_refs, liar):
        _register(world, svc, sampling_key=svc is challenger)
    world.cheater.train_and_submit(world.job, 1, cheat=SkipStep(segment=0))
    liar_stake = liar.chain.stake()

    _sample(world, challenger)
    item = challenger.journal.get(f"result:{world.job.task_id(1)}:{world.cheater.acct.address.lower()}")
    assert item.phase == "challenged" and item.data["challenge"]["segment"] == 0
    dispute_id = item.data["dispute_id"]
    _run_dispute(world, dispute_id)

    settled = _settled(world, dispute_id)
    assert settled["outcome"] == 1  # the cheater still loses
    assert BallotState(settled["verdict"]) == BallotState.AGAINST  # against the accused worker
    slash = liar_stake * RESOLVER_PARAMS["refereeSlashBps"] // 10_000
    assert liar.chain.stake() == liar_stake - slash
    liar_item = liar.journal.get(f"dispute:{dispute_id}").data
    assert liar_item["vote"] == str(liar_item["accused_next"]).lower()
    assert liar_item["my_vote"] == "ForAccused" != liar_item["verdict"]
    assert liar.journal.value("withdrawn_total", 0) == 0  # the minority earns nothing
    assert all(r.journal.value("withdrawn_total", 0) > 0 for r in honest_refs)
    body = TestClient(create_app(liar.journal)).get("/disputes").json()
    assert body[0]["outcome"] == "AccusedLost" and body[0]["verdict"] == "Against"
    assert TestClient(create_app(liar.journal)).get("/stats").json()["referee"]["with_majority"] == 0


def test_referees_vote_unavailable_when_no_key_comes_in_time(world: World):
    challenger = world.service(VERIFIERS[0], p=1.0)
    referees = [world.service(i, p=0.0) for i in VERIFIERS[1:]]
    for svc in (challenger, *referees):
        _register(world, svc, sampling_key=svc is challenger)
    world.cheater.train_and_submit(world.job, 1, cheat=SkipStep(segment=1))
    _sample(world, challenger)
    dispute_id = challenger.journal.get(
        f"result:{world.job.task_id(1)}:{world.cheater.acct.address.lower()}").data["dispute_id"]
    world.tick_all()  # committee drawn; nobody delivers referee keys
    assert all(r.journal.get(f"dispute:{dispute_id}").data["duty"] == "pending" for r in referees)
    time_travel(world.w3, RESOLVER_PARAMS["commitWindow"] - 300)  # inside the referees' vote margin
    world.tick_all(3)
    settled = _settled(world, dispute_id)
    assert BallotState(settled["verdict"]) == BallotState.AGAINST  # every vote UNAVAILABLE
    assert settled["outcome"] == 1  # "unavailable" counts against the worker
    for ref in referees:
        d = ref.journal.get(f"dispute:{dispute_id}").data
        assert d["duty"] == "revealed" and d["vote"] == "0x" + "00" * 32 and "no key" in d["duty_detail"]


def test_wrong_start_is_slashed_by_a_proof_alone_on_the_real_stack(world: World):
    """A worker that trains from another model replays fine segment by segment; the sampling
    verifier (a low ``p``: the start check is not sampled) proves its leaf 0 is not the start
    ``postJob`` bound and the market slashes it at once: no dispute, no committee."""
    from adversary.cheats import WrongStart

    sampler = world.service(VERIFIERS[0], p=0.05)
    _register(world, sampler, sampling_key=True)
    world.honest.train_and_submit(world.job, 0)
    world.cheater.train_and_submit(world.job, 1, cheat=WrongStart(delta=1e-2))
    market = contracts(world.w3, world.dep)["JobMarket"]
    escrow = market.functions.getJob(world.job.job_id).call()[12]
    _sample(world, sampler)
    cheat_key = f"result:{world.job.task_id(1)}:{world.cheater.acct.address.lower()}"
    honest_key = f"result:{world.job.task_id(0)}:{world.honest.acct.address.lower()}"
    assert sampler.journal.get(honest_key).phase == "verified"
    cheat = sampler.journal.get(cheat_key)
    assert cheat.phase == "start_slashed", cheat.data
    assert cheat.data["wrong_start"]["bound"] != cheat.data["wrong_start"]["started"]
    assert market.functions.getClaim(world.job.task_id(1), world.cheater.acct.address).call()[0] == 7  # Ended
    bounty = STAKE // 2  # WRONG_START_BOUNTY_BPS
    [proven] = market.events.WrongStartProven().get_logs(from_block=0)
    assert (proven["args"]["prover"], proven["args"]["bounty"]) == (sampler.chain.address, bounty)
    # the rest to the protocol (the owner), none to the requester who bound the start
    assert market.functions.getJob(world.job.job_id).call()[12] == escrow
    assert market.functions.owed(market.functions.owner().call()).call() == STAKE - bounty
    resolver = contracts(world.w3, world.dep)["DisputeResolver"]
    assert resolver.functions.disputeCount().call() == 0  # no dispute was needed
    assert market.functions.liabilities().call() == balance(world.w3, world.dep, market.address)

"""Issue 14's two escapes played against the real roles on the real stack (Anvil + IPFS).

1. A worker reveals a fabricated root with a manifest that opens to nothing usable: the
   sampling verifier service challenges segment 0 without any proof; nobody can answer; a
   verifier that is no party to the dispute settles it; the worker is slashed.
2. The cheater's own second account challenges a segment where the cheat is right, at once
   after the reveal (a decoy): the sampling verifier's real challenge still goes through,
   every service draws and settles both disputes, and the cheater is slashed.
3. The real worker loop answers a challenge that proves nothing, with its leaves and proofs.
The contract-level versions (lapsed decoys, slow committees, worker disputes) are in
tests/contracts/test_dispute_attacks.py; docs/security.md maps each attack to its test.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from eth_abi import encode
from test_verifier_disputes import VERIFIERS, World, _register, _sample, _settled, world  # noqa: F401
from test_worker_flow import stack  # noqa: F401
from verifier_helpers import STAKE, balance, contracts, send, time_travel
from web3 import Web3

from adversary.cheats import SkipStep
from veritrain.chain import segments
from veritrain.chain.states import ClaimStatus, DisputeStatus, Outcome
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import REGISTRY_MIN_STAKE, RESOLVER_PARAMS

BOND = RESOLVER_PARAMS["challengeBond"]
BOUNTY = STAKE * RESOLVER_PARAMS["bountyBps"] // 10_000


def _commit_reveal(env: World, acct: Any, task_id: int, root: bytes, manifest_cid: str) -> None:
    market = contracts(env.w3, env.dep)["JobMarket"]
    salt = os.urandom(32)
    c = Web3.keccak(encode(["bytes32", "address", "bytes32"], [root, acct.address, salt]))
    send(env.w3, acct, market.functions.commit(task_id, c))
    send(env.w3, acct, market.functions.reveal(task_id, root, salt, manifest_cid))


def test_fabricated_root_is_slashed_end_to_end_without_proofs_from_the_challenger(world: World) -> None:  # noqa: F811 (pytest fixture)
    challenger = world.service(VERIFIERS[0], p=1.0)
    bystander = world.service(VERIFIERS[1], p=0.0)  # no party to the dispute
    for svc in (challenger, bystander):
        _register(world, svc, sampling_key=svc is challenger)
    world.honest.train_and_submit(world.job, 0)
    t = world.job.task_id(1)
    junk_cid = world.storage.put_bytes(b"not a manifest: the root below commits to nothing anyone holds")
    _commit_reveal(world, world.cheater.acct, t, os.urandom(32), junk_cid)
    before = balance(world.w3, world.dep, challenger.chain.address)
    _sample(world, challenger)
    item = challenger.journal.get(f"result:{t}:{world.cheater.acct.address.lower()}")
    assert item.phase == "challenged", item.data
    assert item.data["challenge"]["proven"] is False and item.data["challenge"]["segment"] == 0
    dispute_id = int(item.data["dispute_id"])
    resolver = contracts(world.w3, world.dep)["DisputeResolver"]
    assert resolver.functions.getDispute(dispute_id).call()[8] == DisputeStatus.ANSWERING
    time_travel(world.w3, RESOLVER_PARAMS["responseWindow"] + 1)
    bystander.tick()  # any party settles: the accused never answered
    settled = _settled(world, dispute_id)
    assert settled["outcome"] == Outcome.ACCUSED_LOST
    settle_tx = [t_ for t_ in bystander.journal.txs(f"dispute:{dispute_id}") if t_.action == "settle"]
    assert len(settle_tx) == 1 and settle_tx[0].status == "mined"
    market = contracts(world.w3, world.dep)["JobMarket"]
    assert market.functions.getClaim(t, world.cheater.acct.address).call()[0] == ClaimStatus.ENDED
    challenger.tick()  # withdraws bond + bounty
    assert balance(world.w3, world.dep, challenger.chain.address) - before == BOUNTY
    assert balance(world.w3, world.dep, market.address) == market.functions.liabilities().call()


def test_decoy_challenge_cannot_shield_a_cheat_on_the_real_stack(world: World) -> None:  # noqa: F811 (pytest fixture)
    challenger = world.service(VERIFIERS[0], p=1.0)
    referees = [world.service(i, p=0.0) for i in VERIFIERS[1:]]
    for svc in (challenger, *referees):
        _register(world, svc, sampling_key=svc is challenger)
    world.honest.train_and_submit(world.job, 0)
    t = world.job.task_id(1)
    m = world.cheater.train_and_submit(world.job, 1, cheat=SkipStep(segment=2, offset=3))
    # the cheater's second account, a registered verifier, challenges segment 0 (where the cheat
    # is right) at once, answers it itself, and leaves the pool so it is never drawn
    decoy = dev_account(8)
    c = contracts(world.w3, world.dep)
    send(world.w3, decoy, c["DevToken"].functions.approve(c["JobMarket"].address, 2**255))
    from veritrain import envelope

    send(
        world.w3,
        decoy,
        c["VerifierRegistry"].functions.register(
            envelope.public_key_from_private(bytes(decoy.key)), REGISTRY_MIN_STAKE
        ),
    )
    r = send(
        world.w3,
        decoy,
        c["DisputeResolver"].functions.challenge(t, world.cheater.acct.address, 0, b"\x66" * 32),
    )
    decoy_id = c["DisputeResolver"].events.DisputeOpened().process_receipt(r)[0]["args"]["disputeId"]
    hashes = [m.hash_bytes(i) for i in range(m.n_checkpoints)]
    send(
        world.w3,
        world.cheater.acct,
        c["DisputeResolver"].functions.answer(decoy_id, segments.segment(hashes, 0)),
    )
    send(world.w3, decoy, c["VerifierRegistry"].functions.deregister())

    _sample(world, challenger)  # the real challenge is not refused although the claim is Disputed
    item = challenger.journal.get(f"result:{t}:{world.cheater.acct.address.lower()}")
    assert item.phase == "challenged" and item.data["challenge"]["segment"] == 2, item.data
    dispute_id = int(item.data["dispute_id"])
    assert c["JobMarket"].functions.getClaim(t, world.cheater.acct.address).call()[6] == 2  # both open

    world.tick_all()  # the services draw both committees, the decoy's included
    for did in (decoy_id, dispute_id):
        world.requester.deliver_referee_keys(world.job, did)
    world.tick_all(4)  # replay, commit, reveal, settle, withdraw
    assert _settled(world, dispute_id)["outcome"] == Outcome.ACCUSED_LOST
    assert _settled(world, decoy_id)["outcome"] == Outcome.ACCUSER_LOST  # segment 0 was right
    market = c["JobMarket"]
    assert market.functions.getClaim(t, world.cheater.acct.address).call()[0] == ClaimStatus.ENDED
    assert balance(world.w3, world.dep, market.address) == market.functions.liabilities().call()


def test_real_worker_loop_answers_a_challenge_that_proves_nothing(stack: dict[str, Any]) -> None:  # noqa: F811 (pytest fixture)
    """A griefer challenges an honest worker's result without proofs; the worker loop answers
    on-chain with its leaves and proofs (from the manifest it kept) before the deadline."""
    from test_worker_flow import Requester, make_spec, settings_for

    from veritrain import envelope
    from veritrain.manifest import load as load_manifest
    from worker.loop import Worker

    w3 = stack["w3"]
    req = Requester(w3, stack["dep"], stack["storage"], make_spec(), challenge_window=3600)
    worker = Worker(settings_for(stack, "answerer"), dev_account(2))
    griefer = dev_account(5)
    c = contracts(w3, stack["dep"])
    send(w3, griefer, c["DevToken"].functions.approve(c["JobMarket"].address, 2**255))
    send(
        w3,
        griefer,
        c["VerifierRegistry"].functions.register(
            envelope.public_key_from_private(bytes(griefer.key)), REGISTRY_MIN_STAKE
        ),
    )
    t = (req.job_id << 32) | 0
    market, resolver = c["JobMarket"], c["DisputeResolver"]
    thread = threading.Thread(target=lambda: worker.run(max_tasks=1), daemon=True)
    thread.start()
    dispute_id, answered = None, None
    try:
        deadline = time.monotonic() + 150
        settled = False
        while time.monotonic() < deadline and not settled:
            req.answer_claims()
            w3.provider.make_request("evm_mine", [])
            status = market.functions.getClaim(t, worker.address).call()[0]
            if dispute_id is None and status == ClaimStatus.REVEALED:
                r = send(w3, griefer, resolver.functions.challenge(t, worker.address, 1, b"\x13" * 32))
                dispute_id = resolver.events.DisputeOpened().process_receipt(r)[0]["args"]["disputeId"]
            if dispute_id is not None:
                logs = resolver.events.DisputeAnswered().get_logs(
                    from_block=0, argument_filters={"disputeId": dispute_id}
                )
                answered = logs[0]["args"] if logs else None
                # then the worker draws the committee (once the answer's block is mined)
                settled = resolver.functions.getDispute(dispute_id).call()[8] == DisputeStatus.SETTLED
            time.sleep(0.2)
        assert dispute_id is not None and answered is not None, "the worker never answered the challenge"
        worker.stop.set()
        thread.join(30)
        item = worker.journal.get(f"task:{t}")
        m = load_manifest(stack["storage"].get_bytes(item.data["manifest_cid"]))
        assert (answered["h"], answered["hNext"]) == (m.hash_bytes(1), m.hash_bytes(2))
        d = resolver.functions.getDispute(dispute_id).call()
        assert d[11] == m.hash_bytes(2)  # the accused's h_{j+1}, from its answer
        # the worker also drew the committee; with the griefer the only registered verifier no
        # committee can be drawn, so the dispute is dismissed without fault and the result stands
        assert (d[8], d[9]) == (DisputeStatus.SETTLED, Outcome.DISMISSED)
        assert market.functions.getClaim(t, worker.address).call()[0] == ClaimStatus.REVEALED
        actions = [x.action for x in worker.journal.txs(f"dispute:{dispute_id}")]
        assert actions[:2] == ["answer", "draw"]
    finally:
        worker.stop.set()
        thread.join(30)
        worker.close()

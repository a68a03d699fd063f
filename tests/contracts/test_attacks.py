"""Attack contracts: a re-entering token, a re-entering receiver, a requester that never sends
keys; and the EOA attacks (copied roots, forged proofs) live in test_market / test_disputes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contracts.conftest import DEFAULT_JOB, E18, Env, job_tuple
from contracts.helpers import pubkey
from veritrain.artifacts import artifact
from veritrain.dev.deploy import deploy_contract, deploy_protocol

ARTS = Path(__file__).resolve().parents[1] / "artifacts"
REENTRANCY = "ReentrancyGuardReentrantCall"


def _selector_name(env: Env, data: bytes) -> str:
    return env.chain.decoder.decode(data)[0]


def _market_on_reentrant_token(env: Env) -> tuple[Any, Any]:
    token = deploy_contract(env.w3, env.owner, "ReentrantToken", folder=ARTS)
    protocol = deploy_protocol(env.w3, env.owner, token.address)
    return token, protocol["JobMarket"]


def test_reentrant_token_cannot_reenter_the_market(env: Env) -> None:
    token, market = _market_on_reentrant_token(env)
    r, w = env.requester, env.workers[0]
    for acct in (r, w):
        env.send(env.owner, token.functions.mint(acct.address, 10_000 * E18))
        env.send(acct, token.functions.approve(market.address, 2**256 - 1))
    # during postJob's transferFrom the token calls back into the market's postJob and withdraw
    env.send(
        env.owner, token.functions.arm(market.address, market.functions.withdraw()._encode_transaction_data())
    )
    env.send(r, market.functions.postJob(job_tuple()))
    assert _selector_name(env, token.functions.lastHookRevert().call()) == REENTRANCY
    again = market.functions.postJob(job_tuple())._encode_transaction_data()
    env.send(env.owner, token.functions.arm(market.address, again))
    env.send(w, market.functions.claim((1 << 32) | 0, pubkey(w), bytes(32)))
    assert _selector_name(env, token.functions.lastHookRevert().call()) == REENTRANCY
    assert market.functions.jobCount().call() == 1
    env.send(r, market.functions.cancelJob(1))
    env.send(r, market.functions.withdraw())  # the hook's re-entry fails, the withdraw succeeds
    assert _selector_name(env, token.functions.lastHookRevert().call()) == REENTRANCY
    assert token.functions.balanceOf(market.address).call() == market.functions.liabilities().call()
    assert market.functions.owed(r.address).call() == 0


def test_reentrant_receiver_withdraws_once(env: Env) -> None:
    token, market = _market_on_reentrant_token(env)
    attacker = deploy_contract(env.w3, env.owner, "ReentrantReceiver", market.address, folder=ARTS)
    env.send(env.owner, token.functions.mint(attacker.address, 1_000 * E18))
    env.send(env.owner, attacker.functions.postAndCancel(job_tuple()))
    refund = market.functions.owed(attacker.address).call()
    assert refund == 2 * DEFAULT_JOB["rewardPerTask"] + DEFAULT_JOB["refereeFeePool"]
    env.send(env.owner, attacker.functions.withdraw())
    assert attacker.functions.reentries().call() == 1
    assert _selector_name(env, attacker.functions.lastReentryRevert().call()) == REENTRANCY
    assert token.functions.balanceOf(attacker.address).call() == 1_000 * E18
    assert token.functions.balanceOf(market.address).call() == market.functions.liabilities().call() == 0


def test_requester_that_never_sends_keys_cannot_lock_stakes(env: Env) -> None:
    silent = deploy_contract(env.w3, env.owner, "SilentRequester", env.market.address, folder=ARTS)
    env.send(env.owner, env.token.functions.transfer(silent.address, 1_000 * E18))
    env.send(env.owner, silent.functions.post(job_tuple()))
    job = env.market.functions.jobCount().call()
    t, w = env.task_id(job), env.workers[0]
    before = env.balance(w)
    env.claim(w, t)
    env.chain.warp(DEFAULT_JOB["keyWindow"] + 1)
    env.send(w, env.market.functions.abandon(t, w.address))
    env.send(w, env.market.functions.withdraw())
    assert env.balance(w) == before + DEFAULT_JOB["griefingFee"]
    assert artifact("SilentRequester", ARTS)["abi"]  # shipped with the test artifacts
    env.assert_solvent()

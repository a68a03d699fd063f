"""WorkerChain.pending_claims: rivals' claims read from the pending block (issue 25), and nothing
from a node whose "pending" block is really its latest (those claims are already counted in the
task's state: counting them again would give up slots that are free)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from web3 import Web3

from veritrain.artifacts import artifact
from worker.chain import WorkerChain

MARKET = Web3.to_checksum_address("0x" + "ab" * 20)
ME, RIVAL = "0x" + "01" * 20, "0x" + "02" * 20


def _chain(number: int, head: int, txs: list[dict[str, Any]]) -> Any:
    contract = Web3().eth.contract(address=MARKET, abi=artifact("JobMarket")["abi"])
    block = {"number": number, "transactions": txs}
    eth = SimpleNamespace(get_block=lambda which, full_transactions: block)
    return SimpleNamespace(w3=SimpleNamespace(eth=eth), client=SimpleNamespace(block_number=lambda: head),
                           market=SimpleNamespace(address=MARKET, web3_contract=contract), address=ME)


def _claim(sender: str, task_id: int, to: str = MARKET) -> dict[str, Any]:
    contract = Web3().eth.contract(address=MARKET, abi=artifact("JobMarket")["abi"])
    data = contract.encode_abi("claim", args=[task_id, b"\x00" * 64, bytes(32)])
    return {"from": sender, "to": to, "input": data}


def test_rivals_pending_claims_are_counted_per_task_and_mine_and_other_calls_are_not() -> None:
    contract = Web3().eth.contract(address=MARKET, abi=artifact("JobMarket")["abi"])
    other_call = {"from": RIVAL, "to": MARKET, "input": contract.encode_abi("withdraw", args=[])}
    txs = [_claim(RIVAL, 7), _claim(RIVAL, 7), _claim(RIVAL, 9), _claim(ME, 11),
           _claim(RIVAL, 13, to="0x" + "cd" * 20), other_call, {"from": RIVAL, "to": None, "input": "0x60"}]
    assert WorkerChain.pending_claims(_chain(101, 100, txs)) == {7: 2, 9: 1}


def test_a_pending_block_that_is_the_latest_shows_nothing() -> None:
    assert WorkerChain.pending_claims(_chain(100, 100, [_claim(RIVAL, 7)])) == {}

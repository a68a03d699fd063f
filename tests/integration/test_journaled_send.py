"""The one journaled send (veritrain.chain.journaled) and the typed facades against the real Anvil.

The attack it stops is a double send after a crash: a process killed after broadcasting but
before the receipt must, on restart, find the hash it recorded and wait for it rather than send
the same action again (a second claim, a second transfer of funds)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from veritrain.chain import ChainClient
from veritrain.chain.errors import ERC20InsufficientBalance
from veritrain.chain.facades import ERC20, DevToken
from veritrain.chain.journaled import JournaledSender
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_contract
from veritrain.journal import Journal

OWNER, BOB = dev_account(0), dev_account(2)


@pytest.fixture
def token(fresh_chain: Any, anvil: Any, tmp_path: Path) -> DevToken:
    raw = deploy_contract(fresh_chain, OWNER, "DevToken", OWNER.address)
    t = DevToken(ChainClient(anvil.url, OWNER, nonce_dir=tmp_path / "nonces"), raw.address)
    t.mint(OWNER.address, 10**24).send()
    return t


def _sender(anvil: Any, tmp_path: Path) -> JournaledSender:
    """A fresh process's sender for OWNER (same nonce folder: same worker home)."""
    return JournaledSender(ChainClient(anvil.url, OWNER, nonce_dir=tmp_path / "nonces", receipt_timeout=30))


def test_facades_read_typed_values_through_the_standard_erc20_interface(token: DevToken, anvil: Any,
                                                                       tmp_path: Path) -> None:
    erc20 = ERC20(token.client, token.address)  # any ERC-20: no DevToken ABI involved
    assert erc20.web3_contract.abi != token.web3_contract.abi
    assert (erc20.decimals(), erc20.symbol()) == (18, token.symbol())
    erc20.transfer(BOB.address, 7).send()
    assert erc20.balanceOf(BOB.address) == 7 and isinstance(erc20.balanceOf(BOB.address), int)
    erc20.approve(BOB.address, 11).send()
    assert erc20.allowance(OWNER.address, BOB.address) == 11


def test_a_restarted_sender_waits_for_the_recorded_hash_instead_of_sending_again(
        token: DevToken, anvil: Any, w3: Any, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    before = token.balanceOf(BOB.address)
    receipts: list[Any] = []
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        first = threading.Thread(target=lambda: receipts.append(_sender(anvil, tmp_path).send(
            journal, "task:1", "pay", token.transfer(BOB.address, 5).transact)))
        first.start()
        for _ in range(200):  # broadcast, not mined: the hash is already journalled as sent
            recs = journal.txs("task:1", "pay")
            if recs and recs[0].status == "sent" and w3.eth.get_block("pending")["transactions"]:
                break
            threading.Event().wait(0.05)
        [rec] = journal.txs("task:1", "pay")
        assert rec.status == "sent" and rec.tx_hash
        # "the process died here": a new one finds the pending hash and waits for it
        restarted = _sender(anvil, tmp_path)
        assert restarted.pending(journal, "task:1", "pay") == rec.tx_hash
        second = threading.Thread(target=lambda: receipts.append(restarted.send_once(
            journal, "task:1", "pay", token.transfer(BOB.address, 5).transact)))
        second.start()
        threading.Event().wait(0.5)
        w3.provider.make_request("evm_mine", [])
        first.join(30)
        second.join(30)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    hashes = {"0x" + bytes(r["transactionHash"]).hex() for r in receipts}
    assert len(receipts) == 2 and hashes == {rec.tx_hash}
    assert token.balanceOf(BOB.address) == before + 5  # paid once, not twice
    assert [(t.status, t.tx_hash) for t in journal.txs("task:1", "pay")] == [("mined", rec.tx_hash)]


def test_a_hash_the_node_forgot_is_marked_dropped_and_the_action_is_sent_anew(
        token: DevToken, anvil: Any, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    lost = journal.tx_intent("task:2", "pay")
    journal.tx_update(lost, "sent", "0x" + "ab" * 32)  # broadcast before a crash, then evicted
    sender = _sender(anvil, tmp_path)
    assert sender.pending(journal, "task:2", "pay") is None
    sender.send_once(journal, "task:2", "pay", token.transfer(BOB.address, 3).transact)
    assert [t.status for t in journal.txs("task:2", "pay")] == ["dropped", "mined"]


def test_a_revert_at_estimation_is_journalled_failed_by_name_and_nothing_leaves(
        token: DevToken, anvil: Any, w3: Any, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    nonce = w3.eth.get_transaction_count(OWNER.address, "pending")
    with pytest.raises(ERC20InsufficientBalance):
        _sender(anvil, tmp_path).send(journal, "task:3", "pay", token.transfer(BOB.address, 10**30).transact)
    [rec] = journal.txs("task:3", "pay")
    assert (rec.status, rec.detail, rec.tx_hash) == ("failed", "ERC20InsufficientBalance", None)
    assert w3.eth.get_transaction_count(OWNER.address, "pending") == nonce

"""ChainClient against the real Anvil: typed reverts, nonces across threads and processes,
retries, events with confirmations, ABI-generated wrappers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from veritrain import merkle
from veritrain.chain import ChainClient, bind
from veritrain.chain.errors import ERC20InsufficientBalance, OwnableUnauthorizedAccount
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_contract
from veritrain.errors import ChainError, ContractRevert

ROOT = Path(__file__).resolve().parents[2]
OWNER, ALICE, BOB = dev_account(0), dev_account(1), dev_account(2)


@pytest.fixture
def token(fresh_chain):  # type: ignore[no-untyped-def]
    token = deploy_contract(fresh_chain, OWNER, "DevToken", OWNER.address)
    tx = token.functions.mint(OWNER.address, 10**24).build_transaction(
        {"from": OWNER.address, "nonce": fresh_chain.eth.get_transaction_count(OWNER.address, "pending")})
    fresh_chain.eth.wait_for_transaction_receipt(
        fresh_chain.eth.send_raw_transaction(OWNER.sign_transaction(tx).raw_transaction))
    return token


def client(anvil, account, tmp_path: Path, **kw) -> ChainClient:  # type: ignore[no-untyped-def]
    return ChainClient(anvil.url, account, nonce_dir=tmp_path / "nonces", **kw)


def test_transact_call_and_typed_wrappers(anvil, token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = client(anvil, OWNER, tmp_path)
    t = bind(c, "DevToken", token.address)
    assert "transfer" in t.function_names and "mint" in t.function_names
    before = t.balanceOf(ALICE.address)
    receipt = t.transfer(ALICE.address, 123)
    assert receipt["status"] == 1 and receipt["gasUsed"] < receipt.get("gas", 10**9)
    assert t.balanceOf(ALICE.address) == before + 123
    with pytest.raises(AttributeError, match="has no function nope"):
        t.nope  # noqa: B018


def test_custom_error_raised_with_its_name_and_args_from_estimate(anvil, token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t = bind(client(anvil, ALICE, tmp_path), "DevToken", token.address)
    with pytest.raises(ERC20InsufficientBalance) as info:
        t.transfer(BOB.address, 5)
    assert info.value.args_ == {"sender": ALICE.address, "balance": 0, "needed": 5}
    assert isinstance(info.value, ContractRevert) and info.value.name == "ERC20InsufficientBalance"
    with pytest.raises(OwnableUnauthorizedAccount) as info2:
        t.mint(ALICE.address, 1)
    assert info2.value.args_ == {"account": ALICE.address}


def test_custom_error_decoded_from_a_mined_failed_transaction(anvil, token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = client(anvil, ALICE, tmp_path)
    t = bind(c, "DevToken", token.address)
    with pytest.raises(ERC20InsufficientBalance) as info:
        t.transfer(BOB.address, 7, gas=100_000)  # explicit gas: no estimate, the tx is mined
    assert info.value.args_["needed"] == 7 and info.value.tx and info.value.tx.startswith("0x")
    # the failed tx consumed its nonce; the next one still goes through
    assert c.w3.eth.get_transaction_count(ALICE.address) >= 1
    t.approve(BOB.address, 1)


def test_threads_share_one_account_without_nonce_collisions(anvil, token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = client(anvil, OWNER, tmp_path)
    t = bind(c, "DevToken", token.address)
    start = t.balanceOf(BOB.address)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(8):
                t.transfer(BOB.address, 1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert t.balanceOf(BOB.address) == start + 32


def test_processes_share_one_account_without_nonce_collisions(anvil, token, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    script = textwrap.dedent(f"""
        from pathlib import Path
        from veritrain.chain import ChainClient, bind
        from veritrain.dev.accounts import dev_account
        c = ChainClient({anvil.url!r}, dev_account(0), nonce_dir=Path({str(tmp_path / 'nonces')!r}))
        t = bind(c, "DevToken", {token.address!r})
        for _ in range(10):
            t.transfer({BOB.address!r}, 1)
    """)
    c = client(anvil, OWNER, tmp_path)
    t = bind(c, "DevToken", token.address)
    start = t.balanceOf(BOB.address)
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE)
             for _ in range(2)]
    for _ in range(10):
        t.transfer(BOB.address, 1)
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    assert t.balanceOf(BOB.address) == start + 30


def test_nonce_resync_after_someone_else_used_the_account(anvil, token, w3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = client(anvil, OWNER, tmp_path)
    t = bind(c, "DevToken", token.address)
    t.transfer(BOB.address, 1)  # the nonce file now holds the next nonce
    deploy_contract(w3, OWNER, "DevToken", OWNER.address)  # sent behind the client's back
    t.transfer(BOB.address, 1)  # nonce too low -> resync from pending -> retried
    assert t.balanceOf(BOB.address) >= 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_rpc_raises_chain_error_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    c = ChainClient(url, OWNER, nonce_dir=tmp_path, retry_seconds=0.5, backoff=0.05)
    t0 = time.monotonic()
    with pytest.raises(ChainError, match=url) as info:
        c.block_number()
    assert "did not answer after" in str(info.value) and time.monotonic() - t0 >= 0.3


def test_events_are_polled_once_and_only_when_confirmed(anvil, token, w3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = client(anvil, OWNER, tmp_path)
    t = bind(c, "DevToken", token.address)
    poller = t.events(from_block=c.block_number() + 1, names=["Transfer"], confirmations=2)
    t.transfer(ALICE.address, 11)
    assert poller.poll() == []  # mined, but not yet 2 blocks deep
    w3.provider.make_request("evm_mine", [])
    w3.provider.make_request("evm_mine", [])
    events = poller.poll()
    assert [(e.name, e.args["to"], e.args["value"]) for e in events] == [("Transfer", ALICE.address, 11)]
    assert poller.poll() == []  # each event once
    with pytest.raises(ValueError, match="no event"):
        t.events(0, names=["Nope"])


def test_bound_test_contract_from_test_artifacts(anvil, fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = ROOT / "tests" / "artifacts"
    harness = deploy_contract(fresh_chain, OWNER, "MerkleHarness", folder=folder)
    h = bind(client(anvil, OWNER, tmp_path), "MerkleHarness", harness.address, folder=folder)
    hashes = [os.urandom(32) for _ in range(6)]
    tree = merkle.MerkleTree(hashes)
    assert h.verify(tree.proof(4), tree.root, 4, hashes[4]) is True
    assert h.verify(tree.proof(4), tree.root, 5, hashes[4]) is False


def test_nonce_file_from_a_reverted_chain_resyncs_without_waiting(anvil, token, w3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The nonce file outlives an evm_revert: the next transaction goes out with the node's
    count at once, not with the stale higher nonce (which would sit unmined until the timeout)."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    c = client(anvil, OWNER, tmp_path, receipt_timeout=5.0)
    t = bind(c, "DevToken", token.address)
    start = w3.eth.get_transaction_count(OWNER.address)
    for _ in range(3):
        t.transfer(ALICE.address, 1)
    assert c.nonces.path.read_text() == str(start + 3)
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True
    assert w3.eth.get_transaction_count(OWNER.address, "pending") == start

    fresh = client(anvil, OWNER, tmp_path, receipt_timeout=30.0)  # same folder: the stale file
    receipt = bind(fresh, "DevToken", token.address).transfer(ALICE.address, 1)
    assert receipt["status"] == 1
    assert w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == start
    # Nothing was ever sent with the stale nonce: it would wait in anvil's queued pool.
    queued = w3.provider.make_request("txpool_content", [])["result"]["queued"]
    assert not any(addr.lower() == OWNER.address.lower() for addr in queued)
    assert fresh.nonces.path.read_text() == str(start + 1)

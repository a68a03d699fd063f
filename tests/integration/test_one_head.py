"""One read of the latest block per pass of a role's loop (``ChainClient.one_head``, issue 25).

A verifier's pass read the latest block five times (each event poller, chain time twice, the
block number); with one shared read a pass costs what its reads of new logs cost, and a new
block whose logs bloom rules the contract out is not read at all. Counted by the bench's proxy
on the real Anvil. The shared read must never hide the role's own transaction: after it sends,
the next read is fresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.rpcproxy import CountingProxy
from veritrain.chain import ChainClient
from veritrain.chain.events import EventPoller
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_contract

OWNER = dev_account(0)


@pytest.fixture
def proxy(anvil: Any) -> Any:
    with CountingProxy(anvil.url) as p:
        yield p


def _pass(client: ChainClient, pollers: list[EventPoller]) -> None:
    """What a verifier's pass reads of the head: its pollers, chain time twice, the block number."""
    for p in pollers:
        p.poll()
    client.timestamp()
    client.block_number()
    client.timestamp()


def _cost(proxy: CountingProxy, role: str, fn: Any) -> dict[str, int]:
    before = proxy.counts().get(role, {})
    fn()
    after = proxy.counts().get(role, {})
    return {m: n - before.get(m, 0) for m, n in after.items() if n - before.get(m, 0)}


def test_a_pass_reads_the_latest_block_once(fresh_chain: Any, proxy: CountingProxy, tmp_path: Path) -> None:
    token = deploy_contract(fresh_chain, OWNER, "DevToken", OWNER.address)
    client = ChainClient(proxy.url("role"), OWNER, nonce_dir=tmp_path / "nonces")
    contract = client.contract("DevToken", token.address)
    head = client.block_number()
    pollers = [EventPoller(client, contract, head, names=[n]) for n in ("Transfer", "Approval")]
    _pass(client, pollers)  # both pollers have a tip now

    fresh_chain.provider.make_request("evm_mine", [])
    plain = _cost(proxy, "role", lambda: _pass(client, pollers))
    fresh_chain.provider.make_request("evm_mine", [])

    def pinned() -> None:
        with client.one_head():
            _pass(client, pollers)

    shared = _cost(proxy, "role", pinned)
    assert plain["eth_getBlockByNumber"] == 4 and plain["eth_blockNumber"] == 1  # what a pass cost
    assert shared["eth_getBlockByNumber"] == 1 and "eth_blockNumber" not in shared
    assert "eth_getLogs" not in plain and "eth_getLogs" not in shared  # an empty block (its bloom)


def test_a_new_block_whose_bloom_rules_the_contract_out_costs_no_log_read(
        fresh_chain: Any, proxy: CountingProxy, tmp_path: Path) -> None:
    watched = deploy_contract(fresh_chain, OWNER, "DevToken", OWNER.address)
    other = deploy_contract(fresh_chain, OWNER, "DevToken", OWNER.address)
    client = ChainClient(proxy.url("role"), OWNER, nonce_dir=tmp_path / "nonces")
    poller = EventPoller(client, client.contract("DevToken", watched.address), client.block_number() + 1,
                         names=["Transfer"])
    poller.poll()
    for token, logs_read, events in ((other, 0, 0), (watched, 1, 1)):
        mint = client.contract("DevToken", token.address).functions.mint(OWNER.address, 5)
        client.send({"to": token.address, "data": mint._encode_transaction_data()})
        cost = _cost(proxy, "role", lambda: setattr(poller, "got", poller.poll()))
        assert cost.get("eth_getLogs", 0) == logs_read  # another contract's block: not read
        assert len(poller.got) == events  # type: ignore[attr-defined]
    fresh_chain.provider.make_request("evm_mine", [])
    assert "eth_getLogs" not in _cost(proxy, "role", poller.poll)  # an empty block


def test_the_shared_read_is_dropped_when_the_role_transacts_or_it_ages(
        fresh_chain: Any, proxy: CountingProxy, tmp_path: Path) -> None:
    client = ChainClient(proxy.url("role"), OWNER, nonce_dir=tmp_path / "nonces")
    with client.one_head():
        before = client.block_number()
        client.send({"to": dev_account(1).address, "value": 1})  # automined: a new block
        assert client.block_number() == before + 1  # not the pinned head of before the transaction
        fresh_chain.provider.make_request("evm_mine", [])
        assert client.block_number() == before + 1  # someone else's block: the pass keeps its read
    assert client.block_number() == before + 2  # outside a pass every read is fresh
    with client.one_head(max_age=0.0):
        fresh_chain.provider.make_request("evm_mine", [])
        assert client.block_number() == before + 3
        fresh_chain.provider.make_request("evm_mine", [])
        assert client.block_number() == before + 4  # aged out at once: read again

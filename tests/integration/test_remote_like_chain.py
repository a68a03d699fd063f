"""A remote-like chain (issue 18): Anvil mining a block a second under chain id 11155111, behind
the project's own provider proxy (tests/integration/rpc_proxy.py) that caps eth_getLogs ranges,
rate-limits with HTTP 429 and drops connections. Everything here is real: the chain, the proxy
processes, the ChainClient and EventPoller the roles use. Each test checks its outcome against
the chain itself (balances, logs read straight from Anvil), so nothing lost and nothing done twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from veritrain import netprofile
from veritrain.chain.client import ChainClient
from veritrain.chain.events import EventPoller
from veritrain.dev import procs
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_contract
from veritrain.errors import ChainError, ConfigError
from veritrain.netprofile import FeePolicy

ROOT = Path(__file__).resolve().parents[2]
PROXY = Path(__file__).with_name("rpc_proxy.py")
CHAIN_ID = 11155111
#: Every process here ends by itself after this long, whatever happens to the test run.
LIFETIME = 900


def _wait(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _proxy(upstream: str, **opts: int) -> tuple[subprocess.Popen[bytes], str]:
    port = procs.free_port()
    args = [sys.executable, str(PROXY), "--upstream", upstream, "--port", str(port),
            "--lifetime", str(LIFETIME)]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.Popen(args)
    url = f"http://127.0.0.1:{port}"
    _wait(lambda: _stats_or_none(url), f"proxy on {port}")
    return proc, url


def _stats_or_none(url: str) -> dict[str, int] | None:
    try:
        with urllib.request.urlopen(url + "/stats", timeout=2) as r:
            return dict(json.loads(r.read()))
    except OSError:
        return None


def _stats(url: str) -> dict[str, int]:
    stats = _stats_or_none(url)
    assert stats is not None
    return stats


def _control(url: str, **change: int) -> None:
    req = urllib.request.Request(url + "/control", data=json.dumps(change).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Anvil (block time 1 s, chain 11155111) with a DevToken, behind a provider proxy
    (100-block log ranges)."""
    port = procs.free_port()
    from veritrain.dev.stack import ANVIL_REL
    from veritrain.settings import StackSettings

    binary = str(StackSettings().node_modules / ANVIL_REL)
    cache = tmp_path_factory.mktemp("anvil-cache")
    anvil = subprocess.Popen([binary, "--port", str(port), "--block-time", "1", "--chain-id", str(CHAIN_ID),
                              "--host", "127.0.0.1", "--silent", *procs.anvil_cache_args(cache)])
    procs_started: list[subprocess.Popen[bytes]] = [anvil]
    try:
        _wait(lambda: anvil.poll() is not None or procs.anvil_chain_id(port) == CHAIN_ID, "anvil")
        assert anvil.poll() is None, "anvil exited"
        url = f"http://127.0.0.1:{port}"
        w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 120}))
        token = deploy_contract(w3, dev_account(0), "DevToken", dev_account(0).address)
        proxy, proxy_url = _proxy(url, log_range=100)
        procs_started.append(proxy)
        yield SimpleNamespace(url=url, w3=w3, token=token, proxy_url=proxy_url)
    finally:
        for p in reversed(procs_started):
            _stop(p)
        procs.remove_anvil_cache(cache)


def _mine(remote: SimpleNamespace, blocks: int) -> None:
    """Mine ``blocks`` empty blocks at once, in chunks of 100: Anvil takes seconds per thousand,
    and on a loaded machine one call of 500 outlasted the 120 s request timeout."""
    for _ in range(blocks // 100):
        reply = remote.w3.provider.make_request("anvil_mine", [hex(100)])
        assert reply.get("error") is None, reply


def _client(url: str, **kw: Any) -> ChainClient:
    return ChainClient(url, dev_account(0), retry_seconds=20, backoff=0.05, receipt_timeout=60, **kw)


def _mint(client: ChainClient, token: Any, to: str, amount: int) -> Any:
    return client.transact(client.contract("DevToken", token.address), "mint", to, amount)


def _truth(remote: SimpleNamespace, names: tuple[str, ...] = ("Transfer",)) -> list[tuple[int, str, int]]:
    """The token's Transfer logs read straight from Anvil: (block, to, value)."""
    logs = remote.token.events.Transfer().get_logs(from_block=0, to_block="latest")
    return [(lg["blockNumber"], lg["args"]["to"], lg["args"]["value"]) for lg in logs]


def test_a_node_of_another_chain_is_refused_with_one_line(remote, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VERITRAIN_HOME", str(tmp_path))
    (tmp_path / "networks.toml").write_text(
        f'[networks.sim]\nchain_id = {CHAIN_ID}\nrpc_urls = ["http://127.0.0.1:9", "{remote.proxy_url}"]\n'
        f'[networks.wrong]\nchain_id = 5\nrpc_urls = ["{remote.proxy_url}"]\n')
    profile = netprofile.load_profile("sim")
    assert profile.connect() == [remote.proxy_url, "http://127.0.0.1:9"]  # the healthy one first
    with pytest.raises(ConfigError, match=f"is chain {CHAIN_ID}, not 5"):
        netprofile.load_profile("wrong").connect()
    env = {**os.environ, "VERITRAIN_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("VERITRAIN_NETWORK", None)
    bad = subprocess.run([sys.executable, "-m", "veritrain.cli", "--network", "wrong", "network", "list"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and f"is chain {CHAIN_ID}, not 5" in bad.stderr
    good = subprocess.run([sys.executable, "-m", "veritrain.cli", "--network", "sim", "network", "list"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert good.returncode == 0, good.stderr
    assert f"sim: chain {CHAIN_ID}, 2 RPC URL(s)" in good.stdout
    unknown = subprocess.run([sys.executable, "-m", "veritrain.cli", "--network", "nope", "network", "list"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert unknown.returncode == 1 and "no network 'nope' (known: local, sim, wrong)" in unknown.stderr
    # a client on a network whose node answers with another chain id refuses to act
    monkeypatch.setenv("VERITRAIN_NETWORK", "wrong")
    with pytest.raises(ChainError, match=f"is chain {CHAIN_ID}, but network wrong is chain 5"):
        _ = _client(remote.proxy_url).chain_id


def test_5000_blocks_of_history_are_read_in_pages_within_a_100_block_limit(remote) -> None:  # type: ignore[no-untyped-def]
    client = _client(remote.proxy_url, log_range=100)
    a, b, c = (dev_account(i).address for i in (1, 2, 3))
    start = client.block_number()
    _mint(client, remote.token, a, 1)
    _mine(remote, 2500)
    _mint(client, remote.token, b, 2)
    _mine(remote, 2500)
    _mint(client, remote.token, c, 3)
    assert client.block_number() - start >= 5000
    # the limit is real: one call over the whole history is refused by the provider
    with pytest.raises(Exception, match="block range exceeds 100"):
        client.w3.eth.get_logs({"address": remote.token.address, "fromBlock": 0, "toBlock": "latest"})

    before = _stats(remote.proxy_url)
    poller = EventPoller(client, remote.token, 0, names=["Transfer"])
    seen = [(e.block_number, e.args["to"], e.args["value"]) for e in poller.poll()]
    assert seen == _truth(remote)[-3:] and [v for _, _, v in seen] == [1, 2, 3]
    after = _stats(remote.proxy_url)
    assert poller.stats["pages"] >= 50
    assert after["range_refused"] == before["range_refused"]  # no page was too wide
    assert after["max_log_range"] <= 100
    assert poller.poll() == []  # nothing twice

    # a poller configured wider than the provider allows narrows its pages and loses nothing
    wide = EventPoller(client, remote.token, 0, names=["Transfer"], step=1000)
    again = [(e.block_number, e.args["to"], e.args["value"]) for e in wide.poll()]
    assert again == seen
    assert wide.stats["narrowed"] >= 4 and wide.step <= 100
    assert _stats(remote.proxy_url)["range_refused"] > after["range_refused"]

    # the roles' filtered look-ups (worker and verifier: "this event for me since deployment")
    # page the same way, even when the client believes the provider allows more
    event = client.contract("DevToken", remote.token.address).events.Transfer
    assert [lg["args"]["value"] for lg in client.logs(event, 0, to=b)] == [2]
    client.log_range = 1000
    assert [lg["args"]["value"] for lg in client.logs(event, 0)][-3:] == [1, 2, 3]


def test_rate_limits_are_waited_out_without_losing_a_request(remote) -> None:  # type: ignore[no-untyped-def]
    proc, url = _proxy(remote.url, rate=5)
    try:
        client = _client(url)
        numbers = [client.block_number() for _ in range(30)]
        assert numbers == sorted(numbers) and len(numbers) == 30
        assert client.provider.stats["rate_limited"] > 0
        assert _stats(url)["rate_limited"] == client.provider.stats["rate_limited"]
    finally:
        _stop(proc)


def test_the_primary_rpc_dies_mid_job_and_the_secondary_takes_over(remote) -> None:  # type: ignore[no-untyped-def]
    p1, url1 = _proxy(remote.url, drop_every=4)
    p2, url2 = _proxy(remote.url)
    holder = dev_account(4).address
    base = remote.token.functions.balanceOf(holder).call()
    try:
        client = _client(f"{url1},{url2}")
        nonce0 = remote.w3.eth.get_transaction_count(client.address)
        for amount in (10, 20):
            assert _mint(client, remote.token, holder, amount)["status"] == 1
        _stop(p1)  # the primary provider is gone for good
        assert _mint(client, remote.token, holder, 30)["status"] == 1
        assert client.provider.stats["failovers"] >= 1 and client.provider.url == url2
        assert _stats(url2)["requests"] > 0
        # exactly three mints happened: nothing lost, nothing sent twice
        assert remote.token.functions.balanceOf(holder).call() == base + 60
        assert remote.w3.eth.get_transaction_count(client.address) == nonce0 + 3
    finally:
        _stop(p1)
        _stop(p2)


def test_a_reorg_retracts_the_events_of_dropped_blocks(remote) -> None:  # type: ignore[no-untyped-def]
    client = _client(remote.proxy_url)
    holder = dev_account(5).address
    remote.w3.provider.make_request("anvil_mine", [hex(10)])  # history below the reorg
    poller = EventPoller(client, remote.token, client.block_number() + 1, names=["Transfer"])
    assert poller.poll() == []
    receipt = _mint(client, remote.token, holder, 7)
    seen = _wait(poller.poll, "the mint's event")
    assert [(e.block_number, e.args["value"]) for e in seen] == [(receipt["blockNumber"], 7)]
    assert receipt["blockNumber"] < poller.cursor  # read past it: a later reorg must be noticed
    depth = client.block_number() - receipt["blockNumber"] + 2
    assert remote.w3.provider.make_request("anvil_reorg", [depth, []]).get("error") is None
    poller.poll()
    assert poller.stats["reorgs"] == 1
    assert [(e.block_number, e.args["value"]) for e in poller.retracted] == [(receipt["blockNumber"], 7)]
    # the poller's live view equals the chain's: whatever the reorg left, it yields once
    time.sleep(2)
    live = [(e.block_number, e.args["to"], e.args["value"]) for e in poller.poll()]
    truth = [t for t in _truth(remote) if t[1] == holder]
    assert live == truth
    assert remote.token.functions.balanceOf(holder).call() == sum(v for _, _, v in truth)


def test_a_reorg_while_the_reader_was_down_is_noticed_after_its_restart(remote) -> None:  # type: ignore[no-untyped-def]
    """A role that stopped after reading an event, then restarted from its journaled cursor alone,
    would never learn that a reorg dropped the event meanwhile (the hashes it checks were in
    memory). Resumed from the poller's journaled state, the first poll retracts it."""
    client = _client(remote.proxy_url)
    holder = dev_account(6).address
    poller = EventPoller(client, remote.token, client.block_number() + 1, names=["Transfer"])
    receipt = _mint(client, remote.token, holder, 11)
    _wait(poller.poll, "the mint's event")
    saved = json.loads(json.dumps(poller.state()))  # as the journal keeps it
    del poller  # the role stops

    depth = client.block_number() - receipt["blockNumber"] + 2
    assert remote.w3.provider.make_request("anvil_reorg", [depth, []]).get("error") is None
    restarted = EventPoller(client, remote.token, 0, names=["Transfer"]).resume(saved)
    cursor_only = EventPoller(client, remote.token, saved["cursor"], names=["Transfer"])
    restarted.poll()
    cursor_only.poll()
    assert [(e.block_number, e.args["value"]) for e in restarted.retracted] == [(receipt["blockNumber"], 11)]
    assert restarted.stats["reorgs"] == 1
    assert cursor_only.retracted == [] and cursor_only.stats["reorgs"] == 0  # what journals held before
    assert remote.token.functions.balanceOf(holder).call() == 0  # the chain indeed forgot the mint


def test_fees_follow_the_fee_history_under_a_cap(remote) -> None:  # type: ignore[no-untyped-def]
    client = _client(remote.proxy_url)
    fees = client.price()
    base = int(remote.w3.eth.get_block("latest")["baseFeePerGas"])
    assert fees["maxPriorityFeePerGas"] >= 10**9  # the policy's minimum tip
    assert fees["maxFeePerGas"] >= base + fees["maxPriorityFeePerGas"]
    assert _client(remote.proxy_url, fees=FeePolicy(mode="legacy")).price().keys() == {"gasPrice"}
    capped = _client(remote.proxy_url, fees=FeePolicy(max_fee_gwei=Decimal("0.5")))
    with pytest.raises(ChainError, match=r"exceeds the cap of 0.5 gwei"):
        _mint(capped, remote.token, dev_account(6).address, 1)
    assert remote.token.functions.balanceOf(dev_account(6).address).call() == 0


def test_the_sdk_takes_a_network_object(remote, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from requester.sdk import Requester
    from veritrain.deployments import save
    from veritrain.dev.deploy import deploy_local
    from veritrain.netprofile import NetworkProfile
    from veritrain.storage.base import MemoryStorage

    dep = deploy_local(remote.w3, dev_account(0), "sim", mint_to=[dev_account(7).address])
    record = save(dep, tmp_path / "deployments" / "sim.json")
    profile = NetworkProfile(name="sim", chain_id=CHAIN_ID, rpc_urls=["http://127.0.0.1:9", remote.proxy_url],
                             deployment=record, log_range=100, fees=FeePolicy(max_fee_gwei=Decimal(7)))
    req = Requester(profile, dev_account(7), MemoryStorage(), home=tmp_path)
    assert req.deployment == dep
    assert req.client.provider.urls == [remote.proxy_url, "http://127.0.0.1:9"]  # healthy first
    assert req.client.fees.max_fee_gwei == 7 and req.client.log_range == 100
    assert req.client.chain_id == CHAIN_ID
    assert req.market.token.balanceOf(dev_account(7).address) > 0  # it reads the real deployment
    wrong = profile.model_copy(update={"chain_id": 1})
    with pytest.raises(ConfigError, match=f"is chain {CHAIN_ID}, not 1"):
        Requester(wrong, dev_account(7), MemoryStorage(), home=tmp_path)


def test_a_stuck_transaction_is_replaced_with_the_same_nonce_and_a_bumped_fee(remote) -> None:  # type: ignore[no-untyped-def]
    """The network includes nothing for a while (mining paused): after ``replace_after`` the
    client re-sends its transaction with the same nonce and a higher fee; when blocks come
    again exactly one version is mined, and it is the replacement."""
    import threading

    client = _client(remote.proxy_url, fees=FeePolicy(replace_after=1.0))
    holder = dev_account(8).address
    token = client.contract("DevToken", remote.token.address)
    nonce0 = remote.w3.eth.get_transaction_count(client.address)
    sent: list[str] = []
    result: dict[str, Any] = {}
    rpc = remote.w3.provider.make_request
    assert rpc("evm_setIntervalMining", [0]).get("error") is None
    try:
        worker = threading.Thread(target=lambda: result.update(
            receipt=client.transact(token, "mint", holder, 5, on_signed=sent.append)))
        worker.start()
        _wait(lambda: client.stats["replaced"] >= 2, "two replacements", timeout=20)
    finally:
        assert rpc("evm_setIntervalMining", [1]).get("error") is None
    worker.join(60)
    receipt = result["receipt"]
    assert receipt["status"] == 1
    assert "0x" + bytes(receipt["transactionHash"]).hex() != sent[0]  # a replacement was mined
    mined = remote.w3.eth.get_transaction(receipt["transactionHash"])
    assert mined["nonce"] == nonce0
    assert mined["maxPriorityFeePerGas"] >= 10**9 * 5 // 4  # bumped at least once by 25 %
    assert remote.token.functions.balanceOf(holder).call() == 5  # minted once
    assert remote.w3.eth.get_transaction_count(client.address) == nonce0 + 1


def _journaled_mint(client: ChainClient, token: Any, to: str, amount: int, journal: Any,
                    sent: list[str]) -> Any:
    from veritrain.chain.journaled import JournaledSender

    contract = client.contract("DevToken", token.address)

    def transact(on_signed: Any) -> Any:
        def record(h: str) -> None:
            sent.append(h)
            on_signed(h)

        return client.transact(contract, "mint", to, amount, wait=False, on_signed=record)

    return JournaledSender(client).send(journal, f"mint-{to}", "mint", transact)


def test_a_transaction_a_reorg_drops_is_sent_again_once(remote, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The attack on a careless wallet: a reorg takes the block of a mined transaction and the
    chain forgets it (Anvil does not put it back in the pool); a sender that returned at the
    first receipt believes it done. With confirmations, the journaled send sees its receipt
    vanish, signs the same call again, journals the new hash, and it is mined exactly once."""
    import threading

    from veritrain.journal import Journal, TxStatus

    client = _client(remote.proxy_url, confirmations=6)  # room for the reorg thread on a loaded machine
    holder = dev_account(9).address
    journal = Journal(tmp_path / "journal.sqlite")
    sent: list[str] = []
    reorged: list[int] = []

    def reorg_once_mined() -> None:
        _wait(lambda: sent, "the first signing")
        receipt = _wait(lambda: _receipt_or_none(remote, sent[0]), "the first version mined")
        depth = remote.w3.eth.block_number - receipt["blockNumber"] + 1
        assert remote.w3.provider.make_request("anvil_reorg", [depth, []]).get("error") is None
        reorged.append(depth)

    thread = threading.Thread(target=reorg_once_mined)
    thread.start()
    receipt = _journaled_mint(client, remote.token, holder, 11, journal, sent)
    thread.join(30)
    assert reorged, "the reorg did not happen"
    assert client.stats["resent"] == 1
    again = "0x" + bytes(receipt["transactionHash"]).hex()
    records = [(r.tx_hash, r.status) for r in journal.txs(f"mint-{holder}", "mint")]
    if again == sent[0]:  # signed again at the same nonce and price: the very same bytes, re-mined
        assert records == [(sent[0], TxStatus.MINED)]
    else:
        assert _receipt_or_none(remote, sent[0]) is None  # the chain forgot the first version
        assert records == [(sent[0], TxStatus.DROPPED), (again, TxStatus.MINED)]
    # the receipt returned has its confirmations and the mint happened exactly once
    assert remote.w3.eth.block_number >= receipt["blockNumber"] + 6
    assert remote.token.functions.balanceOf(holder).call() == 11


def _receipt_or_none(remote: SimpleNamespace, tx_hash: str) -> Any:
    from web3.exceptions import TransactionNotFound

    try:
        return remote.w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None


def test_the_journal_knows_every_replacement_of_a_stuck_transaction(remote, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each replacement's hash is journaled before it leaves, so a role restarted while its
    transaction is stuck (here: a second sender with a fresh client on the same journal) finds
    the version the node still has, instead of sending the action a second time."""
    import threading

    from veritrain.chain.journaled import JournaledSender
    from veritrain.journal import Journal, TxStatus

    client = _client(remote.proxy_url, fees=FeePolicy(replace_after=1.0))
    holder = dev_account(10).address
    journal = Journal(tmp_path / "journal.sqlite")
    sent: list[str] = []
    result: dict[str, Any] = {}
    rpc = remote.w3.provider.make_request
    assert rpc("evm_setIntervalMining", [0]).get("error") is None
    try:
        worker = threading.Thread(target=lambda: result.update(
            receipt=_journaled_mint(client, remote.token, holder, 4, journal, sent)))
        worker.start()
        _wait(lambda: client.stats["replaced"] >= 2, "two replacements", timeout=20)
        item = f"mint-{holder}"
        hashes = [r.tx_hash for r in journal.txs(item, "mint")]
        assert len(hashes) >= 3 and len(set(hashes)) == len(hashes)
        assert hashes[:1] == sent[:1]
        # "restarted": another client finds the newest version the node has, not the first one
        restarted = JournaledSender(_client(remote.proxy_url))
        found = restarted.pending(journal, item, "mint")
        assert found is not None and found != sent[0]
        assert restarted.client.find_transaction(found) is not None
    finally:
        assert rpc("evm_setIntervalMining", [1]).get("error") is None
    worker.join(60)
    receipt = result["receipt"]
    mined = "0x" + bytes(receipt["transactionHash"]).hex()
    records = journal.txs(f"mint-{holder}", "mint")
    assert [r.tx_hash for r in records if r.status == TxStatus.MINED] == [mined]
    assert all(r.status == TxStatus.DROPPED for r in records if r.tx_hash != mined)
    assert remote.token.functions.balanceOf(holder).call() == 4  # minted once


def _reorg_when_mined(remote: SimpleNamespace, sent: list[str], done: list[tuple[str, int]]) -> Any:
    """A thread that, once the next hash appended to ``sent`` is mined, replaces its block (and
    any after it) with empty ones: the chain forgets the transaction ((hash, block) go to ``done``)."""
    import threading

    count = len(sent)

    def run() -> None:
        _wait(lambda: len(sent) > count, "the signing")
        h = sent[count]
        receipt = _wait(lambda: _receipt_or_none(remote, h), "the transaction mined")
        depth = remote.w3.eth.block_number - receipt["blockNumber"] + 1
        assert remote.w3.provider.make_request("anvil_reorg", [depth, []]).get("error") is None
        done.append((h, receipt["blockNumber"]))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_reorg_drops_a_claim_a_key_delivery_and_a_reveal_and_each_is_sent_again(  # type: ignore[no-untyped-def]
        remote, tmp_path: Path) -> None:
    """The protocol's own transactions on the real JobMarket, each taken by a reorg right after
    it was mined: the worker's claim (journaled), the requester's key delivery (a plain facade
    send) and the worker's reveal (journaled). Each sender notices before its confirmations,
    sends again, and the chain ends exactly as if no reorg had happened: one claim, one key,
    one reveal, the stake taken once, the market's balance covering what it owes."""
    from eth_abi import encode

    from veritrain import envelope
    from veritrain.chain.facades import Contracts
    from veritrain.chain.journaled import JournaledSender
    from veritrain.chain.states import ClaimStatus
    from veritrain.dev.deploy import deploy_local
    from veritrain.jobdoc import worker_key_context
    from veritrain.journal import Journal
    from veritrain.tasks import task_id_of

    requester, worker = dev_account(3), dev_account(9)  # funded by Anvil (its first ten)
    dep = deploy_local(remote.w3, dev_account(0), "sim", mint_to=[requester.address, worker.address])
    quick = {"deployment": dep, "retry_seconds": 30, "receipt_timeout": 90}
    req = Contracts.of(ChainClient(remote.proxy_url, requester, **quick))
    wrk = Contracts.of(ChainClient(remote.proxy_url, worker, confirmations=4, **quick))
    reward, stake = 5 * 10**18, 20 * 10**18
    pool = 10 * 10**18
    req.token.approve(req.market.address, reward + pool).send()
    req.market.postJob(("bafy-spec", b"\x01" * 32, 1, 1, 6, reward, stake, reward // 10, pool,
                        600, 3600, 600, 3600, b"\x02" * 32, False)).send()
    job_id = req.market.jobCount()
    task = task_id_of(job_id, 0)
    wrk.token.approve(wrk.market.address, stake).send()
    worker_before = wrk.token.balanceOf(worker.address)
    journal = Journal(tmp_path / "worker.sqlite")
    sender = JournaledSender(wrk.market.client)
    sent: list[str] = []
    reorged: list[tuple[str, int]] = []

    def journaled(tx: Any) -> Any:
        return lambda on_signed: tx.transact(lambda h: (sent.append(h), on_signed(h)))

    # 1. the claim
    thread = _reorg_when_mined(remote, sent, reorged)
    pub = envelope.public_key_from_private(bytes(worker.key))
    sender.send(journal, f"task:{task}", "claim", journaled(wrk.market.claim(task, pub, bytes(32))))
    thread.join(30)
    # 2. the key delivery: the requester's client waits for confirmations too
    req.market.client.confirmations = 4
    thread = _reorg_when_mined(remote, sent, reorged)
    ctx = worker_key_context(CHAIN_ID, req.market.address, task, worker.address)
    req.market.client.transact(req.market.web3_contract, "deliverKey", task, worker.address,
                               envelope.wrap(os.urandom(32), pub, ctx), on_signed=sent.append)
    thread.join(30)
    # 3. commit (left alone), then the reveal
    root, salt = b"\x07" * 32, b"\x08" * 32
    commitment = Web3.keccak(encode(["bytes32", "address", "bytes32"], [root, worker.address, salt]))
    sender.send(journal, f"task:{task}", "commit", wrk.market.commit(task, commitment).transact)
    thread = _reorg_when_mined(remote, sent, reorged)
    reveal = wrk.market.reveal(task, root, salt, "bafy-m")
    sender.send(journal, f"task:{task}", "reveal", journaled(reveal))
    thread.join(30)

    assert len(reorged) == 3
    assert wrk.market.client.stats["resent"] == 2 and req.market.client.stats["resent"] == 1
    for h, block in reorged:  # forgotten, or (the same bytes signed again) mined after the reorg
        again = _receipt_or_none(remote, h)
        assert again is None or again["blockNumber"] > block
    # the chain holds each step exactly once, and the claim is revealed with the committed root
    # (read straight from Anvil: the provider proxy refuses a log range from block 0)
    market = remote.w3.eth.contract(address=req.market.address, abi=req.market.web3_contract.abi)

    def count(name: str) -> int:
        return len(getattr(market.events, name)().get_logs(from_block=0, to_block="latest",
                                                           argument_filters={"taskId": task}))

    steps = ("TaskClaimed", "KeyDelivered", "ResultCommitted", "ResultRevealed")
    assert [count(n) for n in steps] == [1, 1, 1, 1]
    assert wrk.market.getClaim(task, worker.address).status == ClaimStatus.REVEALED
    assert wrk.token.balanceOf(worker.address) == worker_before - stake  # staked once
    assert wrk.token.balanceOf(wrk.market.address) >= wrk.market.liabilities()
    statuses = {r.action: r.status for r in journal.txs(f"task:{task}") if r.status == "mined"}
    assert statuses == {"claim": "mined", "commit": "mined", "reveal": "mined"}
    assert sorted(r.status for r in journal.txs(f"task:{task}", "claim")) == ["dropped", "mined"]


def test_one_dropped_health_probe_is_not_an_outage(remote) -> None:  # type: ignore[no-untyped-def]
    """`veritrain --network` checks the URLs before a command runs; a provider that drops one
    connection (here every 2nd) must not make the command refuse with "no RPC URL answers"
    (it did, in a run of `make demo-remote`, once the primary was gone)."""
    from veritrain.netprofile import NetworkProfile, _chain_id

    proc, url = _proxy(remote.url, drop_every=2)
    try:
        profile = NetworkProfile(name="sim", chain_id=CHAIN_ID, rpc_urls=["http://127.0.0.1:9", url])
        assert _chain_id(url, 5) == CHAIN_ID  # request 1: answered
        assert profile.healthy_urls(rounds=1) == []  # request 2 dropped: one round alone says none
        assert _chain_id(url, 5) == CHAIN_ID  # request 3
        assert profile.connect() == [url, "http://127.0.0.1:9"]  # 4 dropped, probed again: 5 answered
        assert _stats(url)["dropped"] == 2
    finally:
        _stop(proc)


def test_a_verifier_sets_aside_a_result_whose_reveal_a_reorg_dropped(remote, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The attack on a verifier that trusts what it once read: a reveal it saw is dropped by a
    reorg. Kept as it was, the result would be checked (and could be challenged) although the
    chain holds no such reveal, and when the worker reveals again its later challenge deadline
    would never be read. The verifier sets the result aside, does nothing on it, and takes the
    reveal mined again (its block, transaction and challenge deadline) as a fresh result. Here
    the verifier is even down during the reorg: it notices from its journaled poller state."""
    from eth_abi import encode

    from verifier.chain import VerifierChain
    from verifier.keys import ChainKeySource
    from verifier.service import VerifierService
    from veritrain import envelope
    from veritrain.chain.facades import Contracts
    from veritrain.chain.states import ClaimStatus
    from veritrain.dev.deploy import deploy_local
    from veritrain.jobdoc import worker_key_context
    from veritrain.journal import Journal
    from veritrain.storage import MemoryStorage
    from veritrain.tasks import task_id_of

    requester, worker, verifier = dev_account(4), dev_account(8), dev_account(7)
    dep = deploy_local(remote.w3, dev_account(0), "sim", mint_to=[requester.address, worker.address])
    quick = {"deployment": dep, "retry_seconds": 30, "receipt_timeout": 90}
    req = Contracts.of(ChainClient(remote.proxy_url, requester, **quick))
    wrk = Contracts.of(ChainClient(remote.proxy_url, worker, **quick))
    reward, stake = 5 * 10**18, 20 * 10**18
    req.token.approve(req.market.address, reward).send()
    req.market.postJob(("bafy-spec", b"\x01" * 32, 1, 1, 6, reward, stake, reward // 10, 0,
                        600, 3600, 600, 3600, b"\x02" * 32, False)).send()
    task = task_id_of(req.market.jobCount(), 0)
    wrk.token.approve(wrk.market.address, stake).send()
    pub = envelope.public_key_from_private(bytes(worker.key))
    wrk.market.claim(task, pub, bytes(32)).send()
    ctx = worker_key_context(CHAIN_ID, req.market.address, task, worker.address)
    req.market.deliverKey(task, worker.address, envelope.wrap(os.urandom(32), pub, ctx)).send()
    root, salt = b"\x07" * 32, b"\x08" * 32
    wrk.market.commit(task, Web3.keccak(encode(["bytes32", "address", "bytes32"],
                                               [root, worker.address, salt]))).send()
    first = wrk.market.reveal(task, root, salt, "bafy-m").send()

    chain = VerifierChain(remote.proxy_url, verifier, dep, nonce_dir=tmp_path / "nonces")
    journal = Journal(tmp_path / "verifier.sqlite")
    service = VerifierService(chain, MemoryStorage(), journal, ChainKeySource(chain, journal), p=1.0,
                              secret=b"s" * 32, confirmations=0, start_block=dep.deploy_block)
    key = f"result:{task}:{worker.address.lower()}"
    _wait(lambda: service.ingest() is not None and journal.get(key), "the verifier reading the reveal")
    seen = journal.get(key)
    assert seen is not None and seen.phase == "seen" and seen.data["block"] == first["blockNumber"]

    depth = remote.w3.eth.block_number - first["blockNumber"] + 1
    # the verifier is down while the reorg happens, and restarts from its journal
    del service
    assert remote.w3.provider.make_request("anvil_reorg", [depth, []]).get("error") is None
    assert wrk.market.getClaim(task, worker.address).status == ClaimStatus.COMMITTED  # the chain forgot it
    service = VerifierService(chain, MemoryStorage(), journal, ChainKeySource(chain, journal), p=1.0,
                              secret=b"s" * 32, confirmations=0, start_block=dep.deploy_block)
    _wait(lambda: (service.ingest() is not None and (journal.get(key) or seen).phase == "retracted"),
          "the verifier undoing the dropped reveal")
    assert [i.key for i in service.watcher.pending()] == []  # nothing to check, nothing to challenge

    again = wrk.market.reveal(task, root, salt, "bafy-m").send()  # the worker reveals again
    assert again["blockNumber"] > first["blockNumber"] - 1
    _wait(lambda: service.ingest() is not None and (journal.get(key) or seen).phase == "seen",
          "the verifier reading the reveal mined again")
    now = journal.get(key)
    assert now is not None and now.data["tx"] == "0x" + bytes(again["transactionHash"]).hex()
    assert now.data["block"] == again["blockNumber"]
    assert now.data["challenge_deadline"] == wrk.market.getClaim(task, worker.address).challenge_deadline
    assert [i.key for i in service.watcher.pending()] == [key]

"""The remote-like network of ``make demo-remote`` (demo/remote.py), reduced to what CI can
afford (issue 18): the whole demo there takes ~6 minutes on the CI machine, so this runs its
network — Anvil mining a block a second under chain 11155111, two real provider proxy processes
— with the ChainClient every role uses on the profile the demo writes, and makes each thing the
demo counts happen once: a rate limit, paged log reads, a stuck transaction replaced, a reorg
that drops a transaction (sent again), the primary provider killed. The counters come from the
providers and the chain (never from the client), and the money is checked against the chain:
nothing lost, nothing done twice.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3

from demo.remote import NETWORK, remote_chain, tx_census
from veritrain import netprofile
from veritrain.chain.client import ChainClient
from veritrain.dev import procs
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_contract

ROOT = Path(__file__).resolve().parents[2]


def _until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_remote_like_network_counts_what_a_hosted_provider_does(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with remote_chain(tmp_path / "net", rate=8, drop_every=7, lifetime=300) as net:
        w3 = Web3(HTTPProvider(net.anvil_url, request_kwargs={"timeout": 60}))
        assert w3.eth.chain_id == 11155111
        token = deploy_contract(w3, dev_account(0), "DevToken", dev_account(0).address)
        # the profile the demo gives its children, as they load it
        net.write_profile(tmp_path / "vt", confirmations=2, replace_after=2.0)
        monkeypatch.setenv("VERITRAIN_HOME", str(tmp_path / "vt"))
        monkeypatch.setenv("VERITRAIN_NETWORK", NETWORK)
        profile = netprofile.load_profile(NETWORK)
        assert profile.rpc_urls == net.urls and profile.log_range == 100
        client = ChainClient(profile.rpc_urls, dev_account(0), retry_seconds=30, receipt_timeout=90)
        assert client.confirmations == 2 and client.fees.replace_after == 2.0
        contract = client.contract("DevToken", token.address)
        holder = dev_account(11).address

        # 1. paged log reads over more history than the provider serves in one call
        w3.provider.make_request("anvil_mine", [hex(250)])  # type: ignore[arg-type]
        client.transact(contract, "mint", holder, 1)
        assert [lg["args"]["value"] for lg in client.logs(contract.events.Transfer, 0, to=holder)] == [1]

        # 2. a stuck transaction (no blocks for a while) is replaced with the same nonce
        net.stop_mining()
        result: dict[str, Any] = {}
        sender = threading.Thread(target=lambda: result.update(
            r=client.transact(contract, "mint", holder, 2)))
        try:
            sender.start()
            _until(lambda: client.stats["replaced"] >= 1, "a replacement")
        finally:
            net.start_mining()
        sender.join(60)
        assert result["r"]["status"] == 1

        # 3. a reorg drops a mined transaction before its confirmations: it is sent again
        sent: list[str] = []
        reorged: list[Any] = []

        def reorg_when_mined() -> None:
            _until(lambda: sent, "the signing")
            receipt = _until(lambda: _receipt(w3, sent[0]), "the first version mined")
            reorged.append(net.reorg(w3.eth.block_number - receipt["blockNumber"] + 1))

        thread = threading.Thread(target=reorg_when_mined)
        thread.start()
        client.confirmations = 6  # room for the reorg thread on a loaded machine
        replaced = client.stats["replaced"]
        client.transact(contract, "mint", holder, 4, on_signed=sent.append)
        client.confirmations = 2
        thread.join(30)
        assert reorged and sent[0] in reorged[0].dropped
        # sent again: after its receipt vanished (resent), or, when the client had not yet read
        # the receipt before the reorg took it, as a replacement of a transaction still unmined
        assert client.stats["resent"] + client.stats["replaced"] - replaced == 1

        # 4. the primary provider dies: the next sends go through the secondary
        before = net.counters()["failover_requests"]
        net.kill_primary()
        client.transact(contract, "mint", holder, 8)

        counters = {**net.counters(), **tx_census(net, w3)}
        assert counters["rate_limited"] > 0 and client.provider.stats["rate_limited"] > 0
        assert counters["log_pages"] >= 3 and counters["max_log_range"] <= 100
        assert counters["log_ranges_refused"] == 0  # the client paged within the limit
        assert counters["replaced"] >= 1
        assert counters["reorgs"] == 1 and counters["dropped_by_reorg"] >= 1
        assert counters["resent_after_reorg"] == 1
        assert counters["failover_requests"] > before and counters["primary_killed"] == 1
        assert counters["dropped_connections"] > 0
        # nothing lost, nothing twice: four mints of 1, 2, 4 and 8, in four nonces
        assert token.functions.balanceOf(holder).call() == 15
        logs = token.events.Transfer().get_logs(from_block=0, to_block="latest")
        mints = [lg["args"]["value"] for lg in logs if lg["args"]["to"] == holder]
        assert mints == [1, 2, 4, 8]
    # every process of the network is gone
    assert _stats_gone(net.secondary) and _stats_gone(net.primary)
    assert procs.anvil_chain_id(int(net.anvil_url.rsplit(":", 1)[1])) is None


def _receipt(w3: Any, tx_hash: str) -> Any:
    from web3.exceptions import TransactionNotFound

    try:
        return w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None


def _stats_gone(url: str) -> bool:
    from demo.remote import _get_stats

    return _get_stats(url) is None


def test_the_demo_refuses_an_unknown_network_with_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "demo", "--network", "mainnet", "--home", "/nonexistent/x"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --network must be one of local, remote-sim, not 'mainnet'"

"""Deploy the shipped artifacts with web3 (tests, the demo, `veritrain dev deploy`).

``scripts/deploy.py`` is the Ape way to do the same on any network.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from veritrain.artifacts import artifact
from veritrain.deployments import Deployment


def deploy_contract(w3: Web3, sender: Any, name: str, *args: Any, folder: Any = None) -> Any:
    """Deploy contract ``name`` from the shipped artifacts; returns a web3 contract object.

    ``sender`` is a LocalAccount (signed locally) — the dev stack has no unlocked keys
    policy to rely on.
    """
    art = artifact(name) if folder is None else artifact(name, folder)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor(*args).build_transaction(
        {"from": sender.address, "nonce": w3.eth.get_transaction_count(sender.address, "pending")}
    )
    signed = sender.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    if receipt["status"] != 1:
        raise RuntimeError(f"deploying {name} reverted (tx {tx_hash.hex()})")
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def deploy_local(w3: Web3, deployer: Any, network: str = "local") -> Deployment:
    """Everything a local network needs, starting with the dev token."""
    start = w3.eth.block_number
    token = deploy_contract(w3, deployer, "DevToken", deployer.address)
    return Deployment(
        network=network,
        chain_id=w3.eth.chain_id,
        deploy_block=start,
        contracts={"DevToken": token.address},
    )

"""``veritrain dev fund``: give an address gas and the dev token on a local network.

Local networks only: the ETH comes from Anvil's ``anvil_setBalance`` (a real network refuses
it) and the tokens are minted by the DevToken's owner, dev account 0 (the deployer of
``ape run deploy --account TEST::0``). Amounts are in whole tokens / ether.
"""

from __future__ import annotations

from dataclasses import dataclass

from veritrain.errors import ConfigError
from veritrain.settings import LOCAL_CHAIN_IDS
from veritrain.units import TokenFormat


@dataclass(frozen=True)
class Funded:
    address: str
    eth_balance: int
    token_balance: int
    token: TokenFormat


def fund(rpc_url: str, address: str, *, eth: str = "10", tokens: str = "1000",
         deployment_path: object = None) -> Funded:
    """Top ``address`` up to ``eth`` ether more and mint it ``tokens`` dev tokens."""
    from web3 import Web3

    from veritrain import deployments
    from veritrain.chain import ChainClient
    from veritrain.dev.accounts import dev_account

    if not Web3.is_address(address):
        raise ConfigError(f"{address!r} is not an Ethereum address (0x followed by 40 hex digits)")
    address = Web3.to_checksum_address(address)
    dep = deployments.load(deployment_path, rpc_url)  # type: ignore[arg-type]
    if dep.chain_id not in LOCAL_CHAIN_IDS:
        raise ConfigError(f"`dev fund` works on local networks only (chain {dep.chain_id} is not one)")
    if "DevToken" not in dep.contracts:
        raise ConfigError(f"the deployment on chain {dep.chain_id} has no DevToken to mint")
    client = ChainClient(rpc_url, dev_account(0), dep)
    token = client.contract("DevToken")
    fmt = TokenFormat.of(token)
    wei = TokenFormat(18, "ETH").parse(eth, "--eth", allow_zero=True)
    units = fmt.parse(tokens, "--tokens", allow_zero=True)
    if wei:
        balance = client.w3.eth.get_balance(address)
        reply = client.w3.provider.make_request("anvil_setBalance", [address, hex(balance + wei)])  # type: ignore[arg-type]
        if "error" in reply:
            raise ConfigError(f"this node refused anvil_setBalance ({reply['error']}): not a local Anvil")
    if units:
        owner = client.call(token, "owner")
        if owner.lower() != client.address.lower():
            raise ConfigError(f"the DevToken's owner is {owner}, not dev account 0: mint with that account")
        client.transact(token, "mint", address, units)
    tokens_held = int(client.call(token, "balanceOf", address))
    return Funded(address, client.w3.eth.get_balance(address), tokens_held, fmt)

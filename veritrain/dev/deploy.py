"""Deploy the shipped artifacts with web3 (tests, the demo, the benchmarks, examples/).

``scripts/deploy.py`` is the Ape way to do the same on any network. Both deploy, in order:
the ERC-20 (``DevToken`` on local networks), ``JobMarket(token, owner)``,
``VerifierRegistry(market, minStake, unbondingDelay)``,
``DisputeResolver(market, registry, params)``, then ``market.setModules(registry, resolver)``
and ``registry.bindResolver()``, and ``ScoredRounds(token, registry)`` (scored mode). The
parameters come from the network's file (:mod:`veritrain.params`; local: ``LOCAL``).
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from veritrain.artifacts import artifact
from veritrain.deployments import Deployment
from veritrain.params import NetworkParams, network_params

#: The local network's parameters (veritrain/networks/local.toml), read once; the names below
#: are kept for the tests and tools that read them.
LOCAL: NetworkParams = network_params("local")

#: Tokens minted to each dev account on a local deployment, and how many accounts.
DEV_MINT = LOCAL.wei(LOCAL.dev_token.mint_per_account) if LOCAL.dev_token else 0
DEV_FUNDED_ACCOUNTS = LOCAL.dev_token.funded_accounts if LOCAL.dev_token else 0

#: Verifier registry: least stake, and the unbonding delay (must exceed a dispute's windows).
REGISTRY_MIN_STAKE = LOCAL.min_stake
REGISTRY_UNBONDING_DELAY = LOCAL.unbonding_delay

#: DisputeResolver.Params by the contract's field names, in ABI order.
RESOLVER_PARAMS: dict[str, int] = LOCAL.resolver_params()


def resolver_params_tuple(params: dict[str, int] | None = None, *,
                          network: NetworkParams = LOCAL) -> tuple[int, ...]:
    """``network``'s resolver parameters with ``params`` (contract field names) replacing some."""
    base = network.resolver_params()
    unknown = set(params or {}) - set(base)
    if unknown:
        raise ValueError(f"unknown resolver parameter(s) {sorted(unknown)}; known: {list(base)}")
    p = {**base, **(params or {})}
    return tuple(p[k] for k in base)


def _send(w3: Web3, sender: Any, call: Any) -> Any:
    tx = call.build_transaction(
        {"from": sender.address, "nonce": w3.eth.get_transaction_count(sender.address, "pending")}
    )
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction reverted (tx {tx_hash.hex()})")
    return receipt


def deploy_contract(w3: Web3, sender: Any, name: str, *args: Any, folder: Any = None) -> Any:
    """Deploy contract ``name`` from the shipped artifacts; returns a web3 contract object.

    ``sender`` is a LocalAccount (signed locally) — the dev stack has no unlocked keys
    policy to rely on.
    """
    art = artifact(name) if folder is None else artifact(name, folder)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = _send(w3, sender, factory.constructor(*args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def deploy_protocol(
    w3: Web3,
    deployer: Any,
    token: str,
    *,
    network: NetworkParams = LOCAL,
    resolver_params: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Market, registry and resolver over ``token``, wired together, with ``network``'s
    parameters (``resolver_params`` replaces some of the resolver's), and ScoredRounds (scored
    mode) over the same token and registry; name -> contract."""
    market = deploy_contract(w3, deployer, "JobMarket", token, deployer.address)
    registry = deploy_contract(w3, deployer, "VerifierRegistry", market.address, network.min_stake,
                               network.unbonding_delay)
    resolver = deploy_contract(
        w3,
        deployer,
        "DisputeResolver",
        market.address,
        registry.address,
        resolver_params_tuple(resolver_params, network=network),
    )
    _send(w3, deployer, market.functions.setModules(registry.address, resolver.address))
    _send(w3, deployer, registry.functions.bindResolver())
    scored = deploy_contract(w3, deployer, "ScoredRounds", token, registry.address)
    return {"JobMarket": market, "VerifierRegistry": registry, "DisputeResolver": resolver,
            "ScoredRounds": scored}


def deploy_local(
    w3: Web3, deployer: Any, network: str = "local", *, mint_to: list[str] | None = None,
    resolver_params: dict[str, int] | None = None,
) -> Deployment:
    """Everything a local network needs: the dev token (minted to the dev accounts) and the
    protocol's three contracts (``resolver_params`` replaces some of the resolver's)."""
    from veritrain.dev.accounts import dev_account

    start = w3.eth.block_number
    token = deploy_contract(w3, deployer, "DevToken", deployer.address)
    contracts = deploy_protocol(w3, deployer, token.address, resolver_params=resolver_params)
    holders = mint_to if mint_to is not None else [dev_account(i).address for i in range(DEV_FUNDED_ACCOUNTS)]
    for holder in holders:
        _send(w3, deployer, token.functions.mint(holder, DEV_MINT))
    return Deployment(
        network=network,
        chain_id=w3.eth.chain_id,
        deploy_block=start,
        contracts={"DevToken": token.address, **{k: c.address for k, c in contracts.items()}},
    )

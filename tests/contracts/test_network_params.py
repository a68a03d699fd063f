"""A network's parameter file is what the contracts are deployed with (real Anvil)."""

from __future__ import annotations

from pathlib import Path

from contracts.conftest import Env
from veritrain.dev.deploy import deploy_protocol
from veritrain.params import load_params, network_params

EDITED = (Path(__file__).resolve().parents[2] / "veritrain" / "networks" / "local.toml").read_text() \
    .replace("committee_size = 3 ", "committee_size = 5 ") \
    .replace("challenge_bond = 100 ", "challenge_bond = 42.5 ") \
    .replace("min_stake = 100 ", "min_stake = 7 ") \
    .replace("reveal_window = 86400 ", "reveal_window = 7200 ")


def test_deploy_uses_the_network_file(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "edited.toml"
    path.write_text(EDITED)
    params = load_params(path)
    assert params != network_params("local")
    protocol = deploy_protocol(env.w3, env.owner, env.token.address, network=params)
    registry, resolver = protocol["VerifierRegistry"], protocol["DisputeResolver"]
    assert registry.functions.minStake().call() == 7 * 10**18
    assert registry.functions.unbondingDelay().call() == params.unbonding_delay
    assert tuple(resolver.functions.params().call()) == (5, 42_500_000_000_000_000_000, 3600, 86400, 7200,
                                                         5000, 2000, 1000, 3600, 0, 0)
    # the session's protocol, deployed from the shipped local file, is untouched
    assert tuple(env.resolver.functions.params().call())[0] == network_params("local").resolver.committee_size

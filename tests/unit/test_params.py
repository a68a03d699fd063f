"""Protocol parameters per network: the shipped local file, and what a bad file is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritrain.dev.deploy import RESOLVER_PARAMS, resolver_params_tuple
from veritrain.errors import ConfigError
from veritrain.params import NETWORKS_DIR, load_params, network_params

GOOD = """
token_decimals = 6
[registry]
min_stake = 2.5
unbonding_delay = 1000
[resolver]
committee_size = 5
challenge_bond = 40
draw_window = 10
commit_window = 20
reveal_window = 30
bounty_bps = 4000
referee_fee_bps = 1000
referee_slash_bps = 500
response_window = 40
forced_error_bps = 100
jackpot_fee_bps = 200
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def test_the_local_file_holds_the_protocol_defaults() -> None:
    local = network_params("local")
    assert local.min_stake == 100 * 10**18 and local.unbonding_delay == 7 * 24 * 3600
    assert resolver_params_tuple() == (3, 100 * 10**18, 3600, 24 * 3600, 24 * 3600, 5_000, 2_000, 1_000, 3600,
                                       0, 0)  # forced errors off on the local network
    assert list(RESOLVER_PARAMS) == ["committeeSize", "challengeBond", "drawWindow", "commitWindow",
                                     "revealWindow", "bountyBps", "refereeFeeBps", "refereeSlashBps",
                                     "responseWindow", "forcedErrorBps", "jackpotFeeBps"]
    assert local.dev_token is not None and local.wei(local.dev_token.mint_per_account) == 10**6 * 10**18


def test_a_deployers_file_sets_every_parameter_in_the_contracts_units(tmp_path: Path) -> None:
    params = load_params(_write(tmp_path, GOOD))
    assert params.min_stake == 2_500_000 and params.unbonding_delay == 1000  # 6 decimals
    assert resolver_params_tuple(network=params) == (5, 40_000_000, 10, 20, 30, 4000, 1000, 500, 40, 100, 200)
    assert resolver_params_tuple({"committeeSize": 7}, network=params)[0] == 7
    with pytest.raises(ValueError, match="unknown resolver parameter"):
        resolver_params_tuple({"committee": 7}, network=params)
    assert params.dev_token is None  # no dev token outside a local network


def test_a_bad_file_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    bad = (GOOD.replace("committee_size = 5", "committee_size = 4")
               .replace("referee_fee_bps = 1000", "referee_fee_bps = 7000\nreferee_fees = 3")
               .replace("draw_window = 10\n", ""))
    with pytest.raises(ConfigError) as err:
        load_params(_write(tmp_path, bad))
    text = str(err.value)
    assert str(tmp_path / "net.toml") in text
    assert "resolver.draw_window: required" in text and "resolver.referee_fees: unknown field" in text

    with pytest.raises(ConfigError, match="committee_size: must be odd"):
        load_params(_write(tmp_path, GOOD.replace("committee_size = 5", "committee_size = 4")))
    with pytest.raises(ConfigError, match="bounty_bps \\+ referee_fee_bps must be <= 10000"):
        load_params(_write(tmp_path, GOOD.replace("referee_fee_bps = 1000", "referee_fee_bps = 7000")))
    with pytest.raises(ConfigError, match="registry.unbonding_delay: must exceed .* \\(100 s\\)"):
        load_params(_write(tmp_path, GOOD.replace("unbonding_delay = 1000", "unbonding_delay = 60")))
    with pytest.raises(ConfigError, match="registry.min_stake: 2.0000005 tokens is not a whole number"):
        load_params(_write(tmp_path, GOOD.replace("min_stake = 2.5", "min_stake = 2.0000005")))
    with pytest.raises(ConfigError, match="jackpot_fee_bps: must be 0 when forced_error_bps is 0"):
        load_params(_write(tmp_path, GOOD.replace("forced_error_bps = 100", "forced_error_bps = 0")))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_params(_write(tmp_path, "[registry\n"))


def test_an_unknown_network_names_the_known_ones_and_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no protocol parameters for network 'sepolia' \(known: local\)"):
        network_params("sepolia")
    with pytest.raises(ConfigError, match="not a plain name"):
        network_params("../etc/passwd")
    with pytest.raises(ConfigError, match="copy .*local.toml"):
        load_params(tmp_path / "missing.toml")
    assert (NETWORKS_DIR / "local.toml").is_file()

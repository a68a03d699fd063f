"""Network profiles (issue 18): the user file is validated whole, `local` is built in, names are
checked, and the environment a profile selects is what every role's settings read."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritrain import netprofile
from veritrain.errors import ConfigError
from veritrain.netprofile import split_urls


def test_local_is_built_in_and_user_profiles_are_read(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    assert set(netprofile.load_profiles(path)) == {"local"}
    path.write_text('[networks.sepolia]\nchain_id = 11155111\nrpc_urls = ["https://a.example", '
                    '"https://b.example"]\nconfirmations = 3\nlog_range = 500\n'
                    '[networks.sepolia.fees]\nmode = "eip1559"\nmax_fee_gwei = 40\n')
    p = netprofile.load_profile("sepolia", path)
    assert (p.chain_id, p.confirmations, p.log_range, p.fees.mode) == (11155111, 3, 500, "eip1559")
    assert p.fees.max_fee_wei == 40 * 10**9
    assert p.params_name == "sepolia"
    env = p.env()
    assert split_urls(env["VERITRAIN_RPC_URL"]) == ["https://a.example", "https://b.example"]
    assert env["VERITRAIN_CONFIRMATIONS"] == "3" and "VERITRAIN_DEPLOYMENT" not in env


def test_every_problem_of_the_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.a]\nchain_id = 0\nrpc_urls = ["ws://x"]\n'
                    '[networks.b]\nchain_id = 1\nrpc_urls = ["http://x"]\ncolour = "red"\n')
    with pytest.raises(ConfigError) as exc:
        netprofile.load_profiles(path)
    text = str(exc.value)
    assert "networks.a.chain_id" in text and "networks.a.rpc_urls" in text and "networks.b.colour" in text


def test_an_unknown_network_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no network 'mainnet' \(known: local\)"):
        netprofile.load_profile("mainnet", tmp_path / "networks.toml")


def test_a_profile_points_at_the_protocol_parameter_file_not_a_copy(tmp_path: Path) -> None:
    local = netprofile.load_profile("local", tmp_path / "none.toml")
    assert local.protocol_params().resolver.committee_size >= 1  # veritrain/networks/local.toml
    path = tmp_path / "networks.toml"
    path.write_text('[networks.x]\nchain_id = 5\nrpc_urls = ["http://127.0.0.1:9"]\n')
    with pytest.raises(ConfigError, match="no protocol parameters for network 'x'"):
        netprofile.load_profile("x", path).protocol_params()


def test_no_answering_url_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text('[networks.x]\nchain_id = 5\nrpc_urls = ["http://127.0.0.1:9"]\nhealth_timeout = 0.5\n')
    with pytest.raises(ConfigError, match=r"network x: no RPC URL answers \(http://127.0.0.1:9\)"):
        netprofile.activate("x", path)


def test_split_urls() -> None:
    assert split_urls("http://a, http://b,") == ["http://a", "http://b"]
    with pytest.raises(ValueError):
        split_urls(" , ")

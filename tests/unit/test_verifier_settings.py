"""Verifier settings: env prefixes, fallbacks, key loading errors, the sampling secret."""

from __future__ import annotations

import pytest

from verifier.settings import VerifierSettings, load_secret
from veritrain.errors import ConfigError


def test_env_prefix_and_fallback(monkeypatch):
    monkeypatch.setenv("VERITRAIN_RPC_URL", "http://shared:1")
    monkeypatch.setenv("VERITRAIN_VERIFIER_P", "0.3")
    monkeypatch.setenv("VERITRAIN_VERIFIER_FULL_VERIFICATION_JOBS", "4, 7")
    s = VerifierSettings()
    assert (s.rpc_url, s.p, s.full_verification_jobs) == ("http://shared:1", 0.3, [4, 7])
    monkeypatch.setenv("VERITRAIN_VERIFIER_RPC_URL", "http://mine:2")
    assert VerifierSettings().rpc_url == "http://mine:2"
    assert VerifierSettings(rpc_url="http://arg:3").rpc_url == "http://arg:3"


def test_bad_p_refused(monkeypatch):
    monkeypatch.setenv("VERITRAIN_VERIFIER_P", "1.5")
    with pytest.raises(ValueError):
        VerifierSettings()


def test_key_configuration_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no verifier key"):
        VerifierSettings().load_account()
    monkeypatch.delenv("VERITRAIN_VERIFIER_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="needs its password"):
        VerifierSettings(keystore=tmp_path / "k.json").load_account()
    acct = VerifierSettings(dev_account=3).load_account()
    assert acct.address.startswith("0x") and len(acct.address) == 42


def test_secret_created_once_private(tmp_path):
    path = tmp_path / "v" / "sampling.secret"
    a = load_secret(path)
    assert len(a) == 32 and load_secret(path) == a
    assert path.stat().st_mode & 0o077 == 0
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match="delete it"):
        load_secret(path)


def test_scored_max_stake_keeps_the_verifier_out_of_jobs_that_ask_more(monkeypatch):
    """`verifier run` stakes in scored jobs by default; an operator caps what one job may take."""
    from verifier.scored_jobs import refusal

    class Chain:
        def job(self, job):
            return {"validators": 1}

    params = {"validatorStake": 5 * 10**18, "maxValidators": 3}
    monkeypatch.setenv("VERITRAIN_VERIFIER_SCORED_MAX_STAKE", str(4 * 10**18))
    capped = VerifierSettings()
    assert capped.scored_max_stake == 4 * 10**18
    assert "above VERITRAIN_VERIFIER_SCORED_MAX_STAKE" in refusal(capped, 7, params, Chain())
    monkeypatch.delenv("VERITRAIN_VERIFIER_SCORED_MAX_STAKE")
    assert refusal(VerifierSettings(), 7, params, Chain()) is None
    full = {**params, "maxValidators": 1}
    assert refusal(VerifierSettings(), 7, full, Chain()) == "all 1 validator seats are taken"

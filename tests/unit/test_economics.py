"""The verification-economics model (docs/economics.md), `veritrain job quote` and the SDK's
stake warning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from veritrain.economics import Terms, detection, quote, stake_warning

ROOT = Path(__file__).resolve().parents[2]
R = 10**19


def _cheat_pays(t: Terms, f: int) -> bool:
    """Does a cheat of ``f`` segments earn more than honest work? (the model's definition)"""
    pf = detection(t.p, t.verifiers, f)
    honest = t.reward - t.cost_share * t.reward
    cheat = (1 - pf) * t.reward - pf * t.stake - t.cost_share * t.reward * (1 - f / t.segments)
    return cheat > honest + 1e-9 * t.reward  # beyond float noise (amounts are ~1e19 base units)


def test_detection_is_one_minus_escape_over_every_verifier() -> None:
    assert detection(0.1, 1, 1) == pytest.approx(0.1)
    assert detection(0.1, 3, 2) == pytest.approx(1 - 0.9**6)
    assert detection(0.0, 5, 100) == 0.0 and detection(1.0, 1, 1) == 1.0


@pytest.mark.parametrize(("n", "v", "p"), [(8, 1, 0.1), (10, 3, 0.1), (64, 2, 0.05), (1024, 1, 0.001)])
def test_min_stake_is_the_least_stake_no_cheat_size_pays_at(n: int, v: int, p: float) -> None:
    q = quote(Terms(reward=R, stake=0, segments=n, verifiers=v, p=p))
    assert q.min_stake is not None and q.min_stake > 0
    at = Terms(reward=R, stake=q.min_stake, segments=n, verifiers=v, p=p)
    assert not any(_cheat_pays(at, f) for f in range(1, n + 1))
    below = Terms(reward=R, stake=q.min_stake - R // 10**6, segments=n, verifiers=v, p=p)
    assert _cheat_pays(below, q.worst_f)  # and a little less lets the worst cheat pay


def test_nobody_checking_means_no_stake_is_enough() -> None:
    q = quote(Terms(reward=R, stake=10 * R, segments=10, verifiers=0, p=0.1))
    assert q.min_stake is None and q.jackpot is None and not q.stake_ok
    assert "nobody checks" in (stake_warning(q) or "")


def test_jackpot_makes_checking_break_even_when_nobody_cheats() -> None:
    t = Terms(reward=R, stake=R, segments=100, verifiers=3, p=0.1, forced_error_rate=0.02)
    q = quote(t)
    income = t.forced_error_rate * q.jackpot * detection(t.p, t.verifiers, 1) / t.verifiers
    assert income >= q.check_cost and income < q.check_cost * 1.000001
    assert q.jackpot_fee == pytest.approx(t.forced_error_rate * q.jackpot, rel=1e-9)


def test_bad_terms_are_refused_together() -> None:
    with pytest.raises(ValueError, match="reward must be > 0; segments must be >= 1"):
        Terms(reward=0, stake=1, segments=0, verifiers=1, p=0.1)


def _quote_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veritrain.cli", "job", "quote",
                           str(ROOT / "examples" / "digits-mlp.yaml"), *args],
                          capture_output=True, text=True, timeout=120)


def test_job_quote_prints_the_bound_and_judges_the_stake() -> None:
    low = _quote_cli("--reward", "10", "--stake", "0.1", "--verifiers", "3", "--p", "0.1")
    assert low.returncode == 0, low.stderr
    assert "minimum stake: 0.442678 tokens (set by a 10-segment cheat)" in low.stdout
    assert "TOO LOW" in low.stdout
    ok = _quote_cli("--reward", "10", "--stake", "1", "--json")
    d = json.loads(ok.stdout)
    assert d["min_stake"] == 442678 * 10**12 and d["stake_ok"] is True
    assert [row["f"] for row in d["detection"]] == [1, 2, 5, 10]


def test_job_quote_refuses_bad_input_with_one_line() -> None:
    r = _quote_cli("--reward", "0")
    assert r.returncode == 1 and r.stderr.strip().startswith("error: --reward")


def test_sdk_warns_when_the_stake_is_below_the_bound() -> None:
    """post_job's warning counts the active registered verifiers (the registry's pool)."""
    from requester.sdk import Requester
    from veritrain.spec import load_spec
    from veritrain.units import TokenFormat

    spec = load_spec(ROOT / "examples" / "digits-mlp.yaml")
    def fake(verifiers: int) -> SimpleNamespace:
        return SimpleNamespace(market=SimpleNamespace(registry=SimpleNamespace(poolSize=lambda: verifiers)),
                               tokens=lambda: TokenFormat(18, "VT"))

    three = fake(3)
    low = Requester.stake_warning(three, spec, 10 * 10**18, 10**17)  # type: ignore[arg-type]
    assert low is not None and "stake 0.1 VT is below" in low and "3 verifier(s)" in low
    assert Requester.stake_warning(three, spec, 10 * 10**18, 10**18) is None  # type: ignore[arg-type]
    nobody = Requester.stake_warning(fake(0), spec, 10 * 10**18, 10**18)  # type: ignore[arg-type]
    assert "nobody checks" in (nobody or "")

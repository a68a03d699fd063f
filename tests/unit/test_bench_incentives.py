"""bench/incentives.py: planted cheats are caught at the predicted rate by the verifiers' own
sampling, and the simulation shows forced errors moving the equilibrium."""

from __future__ import annotations

from bench import incentives


def test_planted_cheats_are_caught_at_the_predicted_rate() -> None:
    out = incentives.run(quick=True)["incentives"]
    rows = out["planted_detection"]
    assert len(rows) == 9 and all(r["planted"] >= 50 for r in rows)
    assert out["planted_detection_within_band"] is True
    # more verifiers or larger cheats are caught more often (over the whole table)
    by = {(r["f"], r["verifiers"]): r["caught"] for r in rows}
    assert by[(4, 3)] > by[(1, 1)]


def test_forced_errors_keep_verifiers_checking_and_cheating_down() -> None:
    kw = dict(rounds=200, workers=100, verifiers=5, seed=3)
    without = incentives.simulate(forced=False, **kw)
    with_forced = incentives.simulate(forced=True, **kw)
    # without a jackpot checking pays only while people cheat: a mixed state with real cheating
    assert without["cheat_rate"] > 0.2 and without["verifier_participation"] < 0.5
    # the jackpot pays for checking even when nobody cheats: cheating stops
    assert with_forced["cheat_rate"] < 0.02
    assert with_forced["verifier_participation"] > without["verifier_participation"] + 0.2

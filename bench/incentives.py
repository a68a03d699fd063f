"""Incentives (issue 22): how often sampling verifiers catch planted cheats, and where rational
workers and verifiers settle with and without forced errors.

1. **Detection of planted cheats** by the verifier's own sampling code
   (:func:`verifier.sampling.task_seed` and :func:`verifier.sampling.choose_segments`, each
   verifier with its own secret) at the default ``p``: for each configuration (cheat size ``f``,
   verifier count ``V``) at least 50 cheats are planted (random result roots, random falsified
   segments) and a cheat counts as caught when some verifier's chosen segments include a
   falsified one — a replay of a falsified segment always mismatches (tests/unit/
   test_verifier_replay.py proves that on the engine), so this measures the sampling, which is
   the only random part. Predicted: ``1 − (1 − p)^(f·V)`` (docs/economics.md).

2. **An agent-based simulation** of many jobs: ``W`` workers each decide per task to cheat or
   not, ``V`` verifiers each decide per result to check or not. Every agent chooses by a logit
   (noisy best) response to the payoffs it expects from what it observed in the previous
   round (the share of results checked, the share of cheats), and every task's outcome is
   drawn at random (who checks, which segments, whether a cheat is caught). Payoffs follow
   docs/economics.md: a cheat saves ``c·R·f/n`` and loses ``R + S`` when caught; checking costs
   ``p·c·R`` and earns the bounty share of a caught cheat's stake, plus, with forced errors, a
   jackpot ``J`` (from :func:`veritrain.economics.quote`) for the first catcher of a forced
   error planted in a share ``φ`` of results. Reported: the cheating rate and the verifiers'
   participation over the second half of the run, with and without forced errors.

3. **Forced errors caught ÷ forced errors** (docs/spec/forced.md): forced errors drawn by the
   protocol's own selection, caught when a verifier's sampling picks segment j*
   (:func:`_forced_detection`). The end-to-end path (a real worker publishing one, a real
   verifier catching it and winning the jackpot, an opt-out slashed by a committee) is
   tests/integration/test_forced_real_stack.py; its gas is ``make gas`` (``forced_round``).
"""

from __future__ import annotations

import math
import random
from typing import Any

from veritrain.economics import DEFAULT_SAMPLING_P, Terms, detection, quote

N_SEGMENTS = 64
CONFIGS = [(f, v) for f in (1, 2, 4) for v in (1, 2, 3)]


def _planted_detection(planted: int, p: float, rng: random.Random) -> list[dict[str, Any]]:
    from verifier.sampling import choose_segments, task_seed

    rows = []
    for f, v in CONFIGS:
        secrets = [rng.randbytes(32) for _ in range(v)]  # seeded: a test run is repeatable
        caught = 0
        for i in range(planted):
            root = rng.randbytes(32)
            worker = "0x" + rng.randbytes(20).hex()
            cheated = set(rng.sample(range(N_SEGMENTS), f))
            seeds = [task_seed(s, 31337, (1 << 32) | i, worker, root) for s in secrets]
            if any(cheated & set(choose_segments(seed, N_SEGMENTS, p)) for seed in seeds):
                caught += 1
        predicted = detection(p, v, f)
        # a binomial 99.9% band around the prediction: a measured rate outside it is a finding
        band = 3.3 * math.sqrt(predicted * (1 - predicted) / planted)
        rows.append({"f": f, "verifiers": v, "planted": planted, "caught": caught,
                     "rate": round(caught / planted, 4), "predicted": round(predicted, 4),
                     "within_band": abs(caught / planted - predicted) <= band})
    return rows


def _forced_detection(forced_errors: int, p: float, rng: random.Random) -> list[dict[str, Any]]:
    """Forced errors (docs/spec/forced.md) drawn by :func:`veritrain.forced.select` from random
    secrets and snapshots, each caught when some verifier's own sampling (the verifier's code,
    its own secret) chooses segment j*: a replay of j* always rejects the forced checkpoint
    (tests/unit/training/test_forced.py, exact and tolerance mode). ``caught_j_or_next`` also
    counts j*+1, which in exact mode almost always shows it too. Predicted for j*:
    ``1 − (1 − p)^V``."""
    from verifier.sampling import choose_segments, task_seed
    from veritrain import forced

    rows = []
    for v in (1, 2, 3):
        secrets = [rng.randbytes(32) for _ in range(v)]
        caught = either = drawn = 0
        for i in range(forced_errors):
            sel = forced.select(rng.randbytes(32), rng.randbytes(32), bps=forced.BPS, redundancy=1,
                                checkpoints=N_SEGMENTS)
            assert sel.selected and sel.segment is not None
            drawn += 1
            worker, root = "0x" + rng.randbytes(20).hex(), rng.randbytes(32)
            chosen = set().union(*(choose_segments(task_seed(s, 31337, (1 << 32) | i, worker, root),
                                                   N_SEGMENTS, p) for s in secrets))
            caught += sel.segment in chosen
            either += bool(chosen & set(sel.segments))
        predicted = 1 - (1 - p) ** v
        band = 3.3 * math.sqrt(predicted * (1 - predicted) / drawn)
        rows.append({"verifiers": v, "forced": drawn, "caught": caught, "rate": round(caught / drawn, 4),
                     "predicted": round(predicted, 4), "within_band": abs(caught / drawn - predicted) <= band,
                     "caught_j_or_next": either, "rate_j_or_next": round(either / drawn, 4)})
    return rows


def _per_checker(miss: float, f: int, checkers: float) -> float:
    """Each checker's expected share of catching an ``f``-segment error when ``checkers``
    verifiers check (each misses a segment with ``miss``): ``(1 − miss^(f·k)) / k``, and its limit
    ``−f·ln(miss)`` as ``k → 0`` (a lone checker)."""
    if checkers < 1e-9:
        return -f * math.log(miss)
    return (1 - miss ** (f * checkers)) / checkers


def _logit(delta: float, temperature: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, delta / temperature))))


def simulate(*, forced: bool, rounds: int, workers: int, verifiers: int, seed: int) -> dict[str, float]:
    """One run of the agent-based model; averages over the second half of the rounds."""
    rng = random.Random(seed)
    reward, stake, n, f, p, c, bounty_share, phi = 1.0, 0.5, 10, 5, DEFAULT_SAMPLING_P, 0.8, 0.5, 0.02
    q = quote(Terms(reward=10**18, stake=0, segments=n, verifiers=verifiers, p=p, cost_share=c,
                    forced_error_rate=phi))
    jackpot = (q.jackpot or 0) / 10**18 if forced else 0.0
    check_cost = p * c * reward
    temperature = 0.02 * reward
    seen_cheat, seen_check = 0.5, 0.5  # what agents believe at the start
    cheat_hist, check_hist = [], []
    for _ in range(rounds):
        # workers: expected gain of cheating given the share of results checked last round
        p_caught = 1 - (1 - p) ** (f * seen_check * verifiers)
        gain_cheat = c * reward * f / n - p_caught * (reward + stake)
        # verifiers: expected income of checking one result; what the checkers catch is shared
        # (the first catcher is paid: each checker's expected share is catches / checkers)
        checkers_seen = seen_check * verifiers
        income = seen_cheat * bounty_share * stake * _per_checker(1 - p, f, checkers_seen)
        if forced:
            income += phi * jackpot * _per_checker(1 - p, 1, checkers_seen)
        gain_check = income - check_cost
        cheats = checks = 0
        for _w in range(workers):
            cheat = rng.random() < _logit(gain_cheat, temperature)
            checkers = [rng.random() < _logit(gain_check, temperature) for _ in range(verifiers)]
            checks += sum(checkers)
            cheats += cheat
        seen_cheat, seen_check = cheats / workers, checks / (workers * verifiers)
        cheat_hist.append(seen_cheat)
        check_hist.append(seen_check)
    half = rounds // 2
    return {"cheat_rate": round(sum(cheat_hist[half:]) / (rounds - half), 4),
            "verifier_participation": round(sum(check_hist[half:]) / (rounds - half), 4),
            "jackpot_in_rewards": round(jackpot, 2)}


def run(quick: bool = False) -> dict[str, Any]:
    rng = random.Random(22)
    planted = 60 if quick else 400
    rows = _planted_detection(planted, DEFAULT_SAMPLING_P, rng)
    forced_rows = _forced_detection(planted, DEFAULT_SAMPLING_P, rng)
    rounds, workers, verifiers = (200, 100, 5) if quick else (1000, 200, 5)
    without = simulate(forced=False, rounds=rounds, workers=workers, verifiers=verifiers, seed=1)
    with_forced = simulate(forced=True, rounds=rounds, workers=workers, verifiers=verifiers, seed=1)
    return {"incentives": {
        "sampling_p": DEFAULT_SAMPLING_P,
        "segments": N_SEGMENTS,
        "planted_detection": rows,
        "planted_detection_within_band": all(r["within_band"] for r in rows),
        "forced_detection": forced_rows,
        # one verifier at the default p: forced errors caught ÷ forced errors
        "forced_caught_over_forced": forced_rows[0]["rate"],
        "forced_detection_within_band": all(r["within_band"] for r in forced_rows),
        "simulation": {"rounds": rounds, "workers": workers, "verifiers": verifiers,
                       "without_forced_errors": without, "with_forced_errors": with_forced},
        "cheat_rate_without_forced_errors": without["cheat_rate"],
        "cheat_rate_with_forced_errors": with_forced["cheat_rate"],
        "verifier_participation_without_forced_errors": without["verifier_participation"],
        "verifier_participation_with_forced_errors": with_forced["verifier_participation"],
    }}

"""Sampling maths and the published detection figures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from verifier import sampling

SECRET = b"s" * 32
ROOT = bytes(range(32))


def test_detection_probability_formula():
    assert sampling.detection_probability(0.1, 1) == pytest.approx(0.1)
    assert sampling.detection_probability(0.1, 2) == pytest.approx(0.19)
    assert sampling.detection_probability(0.5, 3) == pytest.approx(0.875)
    assert sampling.detection_probability(0.0, 10) == 0.0
    assert sampling.detection_probability(1.0, 1) == 1.0
    assert sampling.detection_probability(0.3, 0) == 0.0


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_bad_probability_is_refused(p):
    with pytest.raises(ValueError, match="p must be in"):
        sampling.detection_probability(p, 1)


def test_falsified_for_confidence():
    assert sampling.falsified_for(0.1, 0.9) == 22  # 1-0.9^22 = 0.9015, 0.9^21 -> 0.8906
    assert sampling.detection_probability(0.1, 22) >= 0.9 > sampling.detection_probability(0.1, 21)
    assert sampling.falsified_for(1.0, 0.99) == 1
    assert sampling.falsified_for(0.0, 0.9) is None


def test_figures_table_rows_and_json():
    figs = sampling.figures(0.1, 10)
    assert [r.f for r in figs.rows] == list(range(1, 11))
    assert figs.rows[-1].probability == pytest.approx(1 - 0.9**10)
    assert figs.expected_replays == pytest.approx(1.0)
    d = figs.as_dict()
    assert d["falsified_for_90"] == 22 and d["rows"][0]["falsified"] == 1
    assert d["rows"][0]["detection_probability"] == pytest.approx(0.1)
    text = sampling.format_table(figs)
    assert "| 10 | 0.6513 |" in text and "f >= 22" in text


def test_choice_is_deterministic_per_secret_and_result():
    seed = sampling.task_seed(SECRET, 31337, 5, "0xAbC", ROOT)
    assert seed == sampling.task_seed(SECRET, 31337, 5, "0xabc", ROOT)  # address case-insensitive
    a = sampling.choose_segments(seed, 200, 0.3)
    assert a == sampling.choose_segments(seed, 200, 0.3)
    other_secret = sampling.task_seed(b"t" * 32, 31337, 5, "0xabc", ROOT)
    other_root = sampling.task_seed(SECRET, 31337, 5, "0xabc", bytes(32))
    assert sampling.choose_segments(other_secret, 200, 0.3) != a
    assert sampling.choose_segments(other_root, 200, 0.3) != a


def test_choice_frequency_matches_p_and_full_mode():
    picked = total = 0
    for task in range(300):
        seed = sampling.task_seed(SECRET, 1, task, "0x01", ROOT)
        picked += len(sampling.choose_segments(seed, 20, 0.25))
        total += 20
    assert abs(picked / total - 0.25) < 0.02  # 6000 Bernoulli draws: sd ~0.0056
    seed = sampling.task_seed(SECRET, 1, 1, "0x01", ROOT)
    assert sampling.choose_segments(seed, 7, 0.0) == []
    assert sampling.choose_segments(seed, 7, 1.0) == list(range(7))
    assert sampling.choose_segments(seed, 7, 0.0, full=True) == list(range(7))


def test_empirical_detection_matches_formula():
    """A worker falsifying segments {3, 7} of 10 is caught when either is sampled."""
    p, caught, trials = 0.2, 0, 4000
    for t in range(trials):
        seed = sampling.task_seed(SECRET, 1, t, "0x02", ROOT)
        caught += bool({3, 7} & set(sampling.choose_segments(seed, 10, p)))
    assert abs(caught / trials - sampling.detection_probability(p, 2)) < 0.03


def test_short_secret_refused():
    with pytest.raises(ValueError, match="at least 16 bytes"):
        sampling.task_seed(b"short", 1, 1, "0x01", ROOT)


def test_cli_figures_text_and_json():
    from verifier.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["figures", "--p", "0.5", "--segments", "4", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [r["detection_probability"] for r in data["rows"]] == pytest.approx([0.5, 0.75, 0.875, 0.9375])
    text = runner.invoke(app, ["figures", "--p", "0.1", "--segments", "10"])
    assert "| 1 | 0.1000 |" in text.output
    bad = runner.invoke(app, ["figures", "--p", "2"])
    assert bad.exit_code != 0

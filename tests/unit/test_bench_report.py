"""docs/benchmarks.md generation and the verifier-cost helpers (no servers, no timing)."""

from __future__ import annotations

import os
from pathlib import Path

from bench import report, verifier_cost
from bench.__main__ import MODULES


def test_every_issue_10_key_has_a_row_and_missing_ones_are_named() -> None:
    names = {k.name for k in report.KEYS}
    for key in ("gas.task_happy_path", "gas.dispute_total", "worker_overhead_ratio", "replay_segment_ratio",
                "storage_ratio", "merkle_100k_seconds", "verifier_cost_ratio", "detection_rate",
                "false_challenge_rate", "e2e_seconds", "e2e_protocol_overhead", "concurrent_workers"):
        assert key in names
    results = {"machine": {"platform": "Linux", "cpus": 2, "python": "3.11.7", "date": "2026-01-01T00:00:00"},
               "gas": {"task_happy_path": 500_000, "dispute_total": 600_000}, "false_challenge_rate": 0.0}
    text = report.render(results)
    assert "2026-01-01" in text and "2 CPUs" in text
    assert "| `gas.task_happy_path` | 500,000 | ≤ 400,000 gas | **no** |" in text
    assert "| `gas.dispute_total` | 600,000 | ≤ 700,000 gas | yes |" in text
    assert "| `false_challenge_rate` | 0 |" in text or "| `false_challenge_rate` | 0.0 |" in text
    assert "Missing in this run:" in text and "detection_rate" in text
    assert set(report.missing(results)) == names - {"gas.task_happy_path", "gas.dispute_total",
                                                    "false_challenge_rate"}


def test_modules_cover_the_keys() -> None:
    assert MODULES[-1] == "protocol" and {"storage", "engine", "gas", "verifier_cost"} <= set(MODULES)


def test_default_p_is_read_from_the_verifier_docs(tmp_path: Path) -> None:
    assert verifier_cost.default_p() == (0.1, "docs/verifier.md settings table")
    doc = tmp_path / "v.md"
    doc.write_text("| `P` | 0.25 | probability |\n")
    assert verifier_cost.default_p(doc)[0] == 0.25
    assert verifier_cost.default_p(tmp_path / "none.md")[0] == verifier_cost.FALLBACK_P


def test_sampling_rule_is_bernoulli_p() -> None:
    root = os.urandom(32)
    picks = [len(verifier_cost.sampled_segments(os.urandom(32), 31337, 1, "0x" + "ab" * 20, root, 10, 0.3))
             for _ in range(400)]
    assert 2.4 < sum(picks) / len(picks) < 3.6  # mean p * n = 3
    assert verifier_cost.sampled_segments(b"s" * 32, 1, 1, "0x" + "00" * 20, root, 10, 1.0) == list(range(10))
    assert verifier_cost.sampled_segments(b"s" * 32, 1, 1, "0x" + "00" * 20, root, 10, 0.0) == []

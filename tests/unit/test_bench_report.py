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


def test_scale_figures_are_judged_against_issue_25_targets() -> None:
    from bench import scale

    run = {"tasks": 32, "workers": 4, "completed": 32, "seconds": 60.0, "tasks_per_minute": 32.0,
           "error": None, "rpc_per_task": {"worker": 100.0, "requester": 20.0, "verifier": 30.0},
           "lost_races_per_task": 0.0, "reverted_claims": 0, "reverted_claims_share": 0.0,
           "key_latency_p95_s": 1.0, "gas_per_task": 450_000,
           "peak_rss_mb": {"worker_max": 300.0, "requester": 100.0, "verifier": 200.0}}
    slower = {**run, "rpc_per_task": {"worker": 130.0, "requester": 20.0, "verifier": 30.0},
              "reverted_claims": 1, "reverted_claims_share": 0.03}
    m = {"runs": [run, {**run, "tasks": 256, "completed": 256}],
         "after_history": {"blocks": 5000, "idle_poll_requests": {"open_0": 5.0}, "run": slower},
         "idle_poll_requests": {"open_0": 5.0, f"open_{scale.IDLE_OPEN}": 5.0}, "notes": []}
    results = scale.summarize(m)
    assert results["scale_idle_poll_ratio"] == 1.0
    assert results["scale_rpc_per_task_history_ratio"]["worker"] == 1.3
    assert results["scale_reverted_claims_share_max"] == 0.03  # the run after the history counts too
    text = report.render(results)
    assert "| `scale_idle_poll_ratio` | 1 | ≤ 1.2 (independent of open tasks) | yes |" in text
    assert ("| `scale_rpc_per_task_history_ratio.worker` | 1.3 | ≤ 1.2 (unchanged by history) | **no** |"
            in text)
    assert "| 256 | 4 | 256 | 32.0 | 100.0 | 20.0 | 30.0 |" in text and "(after history)" in text


def test_scale_page_splits_each_roles_requests_into_fixed_and_marginal() -> None:
    from bench.scale import fixed_and_marginal

    def run(n: int, workers: int = 4) -> dict[str, object]:  # 100 requests per job + 5 per task
        per_task = round((100 + 5 * n) / n, 6)
        return {"tasks": n, "workers": workers, "completed": n,
                "rpc_per_task": {"worker": per_task, "requester": per_task, "verifier": per_task}}

    lines = fixed_and_marginal([run(32), run(256), run(1024), run(32, workers=8)])
    assert len(lines) == 1 and "W = 4" in lines[0] and "N = 32, 256, 1024" in lines[0]
    assert lines[0].count("100 + 5.0 × N") == 3 and "falls from 8.125 to 5.097656" in lines[0]


def test_marginal_ratio_is_flat_for_a_fixed_plus_linear_cost_and_grows_for_a_quadratic_one() -> None:
    from bench.scale import marginal_ratio

    def run(n: int, total: float, workers: int = 4) -> dict[str, object]:
        return {"tasks": n, "workers": workers, "completed": n, "rpc_per_task": {"worker": total / n}}

    linear = [run(n, 1_000 + 85 * n) for n in (32, 256, 1024)]  # fixed + marginal: per task falls
    assert marginal_ratio(linear, "worker") == 1.0
    quadratic = [run(n, 100 * n + n * n / 2) for n in (32, 256, 1024)]  # an O(N) scan per task
    ratio = marginal_ratio(quadratic, "worker")
    assert ratio is not None and ratio > 2
    assert marginal_ratio(linear[:2], "worker") is None  # two sizes say nothing about the trend
    assert marginal_ratio([*linear, run(64, 9_999, workers=8)], "worker") == 1.0  # other W left out


def test_scale_history_without_config_is_refused_not_ignored() -> None:
    from typer.testing import CliRunner

    from bench.scale import app

    result = CliRunner().invoke(app, ["--history", "100"])
    assert result.exit_code == 2 and "--history goes with --config" in result.output

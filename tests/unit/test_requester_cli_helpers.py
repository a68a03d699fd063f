"""CLI pieces that need no chain: token amounts, the watch table, light imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from requester.cli import _table
from requester.status import ClaimView, JobStatusView, TaskView
from veritrain.errors import ConfigError
from veritrain.units import format_tokens, parse_tokens


def test_token_amounts_use_the_token_decimals() -> None:
    assert parse_tokens("2.5", "--reward", 18) == 25 * 10**17
    assert parse_tokens("7", "--stake", 0) == 7
    with pytest.raises(ConfigError, match="not a number of tokens"):
        parse_tokens("ten", "--reward", 18)
    with pytest.raises(ConfigError, match="at most 0 decimals"):
        parse_tokens("0.5", "--reward", 0)
    with pytest.raises(ConfigError, match="positive"):
        parse_tokens("-1", "--reward", 18)
    with pytest.raises(ConfigError, match="positive"):
        parse_tokens("0", "--reward", 18)
    assert parse_tokens("0", "--eth", 18, allow_zero=True) == 0


def test_token_amounts_are_shown_with_decimals_and_symbol() -> None:
    assert format_tokens(1_200_000 * 10**18, 18, "VTD") == "1,200,000 VTD"
    assert format_tokens(25 * 10**17, 18, "VTD") == "2.5 VTD"
    assert format_tokens(1, 18, "VTD") == "0.000000000000000001 VTD"  # nothing rounded away
    assert format_tokens(0, 18, "VTD") == "0 VTD"
    assert format_tokens(-5 * 10**17, 18) == "-0.5"


def test_watch_table_and_status_summary() -> None:
    from rich.console import Console

    tasks = [TaskView(1 << 32, 0, 100, finalized=1, claims=[ClaimView("0xA", "finalized")]),
             TaskView(1 << 32 | 1, 1, 90,
                      claims=[ClaimView("0xB", "abandoned"), ClaimView("0xC", "committed")])]
    st = JobStatusView(job_id=1, state="open", redundancy=1, escrow=5, spec_cid="bafy", tasks=tasks)
    assert not st.done and st.summary() == "job 1 open: 1/2 tasks final"
    assert [t.phase for t in tasks] == ["finalized", "committed"]
    assert st.to_dict()["tasks"][1]["phase"] == "committed"
    assert tasks[1].label == f"{1 << 32 | 1} (shard 1)"  # the id the worker and the contract print
    unclaimed = TaskView(1 << 32 | 2, 2, 80)
    cancelled = JobStatusView(job_id=1, state="cancelled", redundancy=1, escrow=0, spec_cid="bafy",
                              tasks=[unclaimed])
    assert unclaimed.phase == "open" and cancelled.task_phase(unclaimed) == "cancelled"
    assert cancelled.to_dict()["tasks"][0]["phase"] == "cancelled"
    console = Console(width=120, record=True)
    console.print(_table(st))
    text = console.export_text()
    assert "0xC committed" in text and "0xB abandoned" in text and "1/2 tasks final" in text


def test_cli_module_imports_no_web3_or_torch() -> None:
    code = "import sys, requester.cli; print(sorted(m for m in ('web3', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

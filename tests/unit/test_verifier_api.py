"""The read-only HTTP API and `verifier status`, over a journal as the service writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from verifier.api import create_app
from veritrain.journal import Journal

TASK = (3 << 32) | 1
WORKER = "0x" + "ab" * 20


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "journal.sqlite")
    j.set("address", "0x" + "11" * 20)
    j.set("p", 0.25)
    j.set("last_block", 42)
    j.put(f"result:{TASK}:{WORKER}", "challenged", task_id=TASK, job_id=3, worker=WORKER,
          root="0x" + "00" * 32, manifest_cid="bafy", challenge_deadline=100, n_segments=4, segments=[1, 2],
          checks=[{"j": 1, "outcome": "match", "claimed": "0x01", "replayed": "0x01", "detail": "",
                   "distance": 0},
                  {"j": 2, "outcome": "mismatch", "claimed": "0x02", "replayed": "0x03", "detail": "",
                   "distance": None}],
          challenge={"segment": 2}, challenge_tx="0xfeed", dispute_id=1)
    j.put("result:99:0xcd", "verified", task_id=99, worker="0xcd", checks=[
        {"j": 0, "outcome": "match", "claimed": "0x0a", "replayed": "0x0a", "detail": "", "distance": 0}])
    j.put("dispute:1", "settled", dispute_id=1, task_id=TASK, accused=WORKER, accuser="0x" + "11" * 20,
          role="accuser", outcome="AccusedLost", verdict="Against")
    j.put("dispute:2", "voting", dispute_id=2, task_id=7, accused="0x77", accuser="0x88", role="referee",
          duty="revealed", vote="0x05")
    tx = j.tx_intent(f"result:{TASK}:{WORKER}", "challenge")
    j.tx_update(tx, "mined", tx_hash="0xfeed")
    j.tx_update(j.tx_intent("market", "withdraw"), "failed", detail="boom")
    return j


def test_health_and_task_evidence(journal):
    client = TestClient(create_app(journal))
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["last_block"] == 42
    t = client.get(f"/tasks/{TASK}").json()
    assert t["job_id"] == 3
    [res] = t["results"]
    assert res["state"] == "challenged" and res["segments_sampled"] == [1, 2]
    assert [c["outcome"] for c in res["checks"]] == ["match", "mismatch"]
    assert res["challenge_tx"] == "0xfeed" and res["dispute_id"] == 1
    assert [d["outcome"] for d in t["disputes"]] == ["AccusedLost"]
    missing = client.get("/tasks/12345")
    assert missing.status_code == 404 and "12345" in missing.json()["detail"]


def test_disputes_stats_and_degraded_health(journal):
    client = TestClient(create_app(journal))
    ds = client.get("/disputes").json()
    assert [d["dispute_id"] for d in ds] == [1, 2]
    assert ds[1]["duty"] == "revealed" and ds[0]["status"] == "settled"
    s = client.get("/stats").json()
    assert s["results"]["total"] == 2 and s["results"]["challenged"] == 1 and s["results"]["verified"] == 1
    assert s["segments"] == {"replayed": 3, "match": 2, "mismatch": 1, "unrunnable": 0, "unavailable": 0}
    assert s["challenges"] == {"sent": 1, "won": 1, "lost": 0, "forced": 0, "jackpots": 0, "open": 0}
    assert s["referee"]["drawn"] == 1 and s["referee"]["revealed"] == 1
    assert s["referee"]["with_majority"] == 0  # still voting
    journal.put("dispute:2", "settled", my_vote="Against", verdict="Against")
    assert client.get("/stats").json()["referee"]["with_majority"] == 1
    assert s["transactions"] == {"mined": 1, "failed": 1}
    assert s["detection"]["p"] == 0.25
    journal.set("last_error", "the RPC node did not answer")
    assert client.get("/health").json()["status"] == "degraded"


def test_metrics_prometheus_text(journal):
    client = TestClient(create_app(journal))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert "# TYPE veritrain_verifier_segments_replayed_total counter" in body
    assert 'veritrain_verifier_segments_replayed_total{outcome="mismatch"} 1' in body
    assert 'veritrain_verifier_results_total{state="challenged"} 1' in body
    assert 'veritrain_verifier_challenges_total{outcome="won"} 1' in body
    assert 'outcome="jackpots"' not in body and "veritrain_verifier_jackpots_wei_total 0" in body
    assert "veritrain_verifier_sampling_probability 0.25" in body
    for line in body.splitlines():  # every sample line is `name{labels} value`
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_no_write_endpoints(journal):
    client = TestClient(create_app(journal))
    assert client.post("/tasks/1").status_code == 405
    assert client.delete("/disputes").status_code == 405


def test_status_command(journal, tmp_path):
    from verifier.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["status", "--home", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["challenges"]["won"] == 1
    text = runner.invoke(app, ["status", "--home", str(tmp_path)])
    assert "1 challenged" in text.output and "p=0.25" in text.output
    empty = runner.invoke(app, ["status", "--home", str(tmp_path / "nowhere")])
    assert empty.exit_code != 0 and "no verifier journal" in str(empty.exception)

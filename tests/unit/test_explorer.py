"""The explorer's pure parts and its error paths, without a chain: the manifest's loss curve,
the worker's loss computation, the detection-odds chart, the app's 404/503 pages and search
box (over a stand-in index: the real one is exercised in tests/integration/test_explorer_browser.py),
and the command's one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from veritrain.errors import ChainError, ManifestError
from veritrain.explorer import charts
from veritrain.manifest import Manifest, load, load_dict
from veritrain.storage.cid import cid_of_bytes

ROOT = Path(__file__).resolve().parents[2]
HASHES = [bytes([i]) * 32 for i in range(3)]
CIDS = [cid_of_bytes(f"checkpoint {i}".encode()) for i in range(3)]


def _manifest(**kw: Any) -> Manifest:
    return Manifest.build(spec_cid=cid_of_bytes(b"doc"), job_id=1, task_id=1 << 32, k=10, hashes=HASHES,
                          worker="0x70997970c51812dc3a010c7d01b50e0d17dc79c8", checkpoint_cids=CIDS, **kw)


def test_a_manifest_without_losses_keeps_its_bytes_and_one_with_them_round_trips() -> None:
    plain = _manifest()
    assert b"losses" not in plain.canonical_json()  # no member, not null: the CID of old manifests holds
    curve = _manifest(losses=[2.3, 1.1, 0.25])
    assert load(curve.canonical_json()).losses == [2.3, 1.1, 0.25]
    assert curve.root == plain.root  # the loss curve is not part of the commitment


@pytest.mark.parametrize(("losses", "words"), [
    ([1.0, 0.5], "3 hashes but 2 losses"),
    ([1.0, float("nan"), 0.5], "finite"),
    ([1.0, -0.1, 0.5], ">= 0"),
])
def test_a_wrong_loss_curve_is_refused(losses: list[float], words: str) -> None:
    with pytest.raises(ManifestError, match=words.replace("+", r"\+")):
        _manifest(losses=losses)


def test_a_null_loss_curve_is_refused_as_it_would_not_round_trip() -> None:
    raw = json.loads(_manifest().canonical_json())
    with pytest.raises(ManifestError, match="leave the member out"):
        load_dict({**raw, "losses": None})


def _spec() -> Any:
    from veritrain.spec import load_spec
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(steps_per_task=30, checkpoint_interval=10, batch_size=16)
    raw["model"]["args"]["hidden"] = [16]
    raw["replay"] = current_profile(threads=1).model_dump()
    return load_spec(raw)


def test_the_worker_publishes_each_checkpoints_loss_on_its_shard(tmp_path: Path) -> None:
    from veritrain.spec import TaskKey
    from veritrain.training.engine import evaluate, train_task
    from veritrain.training.sinks import DirectorySink
    from worker.tasks import LOSS_EXAMPLES, checkpoint_losses

    spec = _spec()
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32)[:200], y.astype(np.int64)[:200]
    hashes = train_task(spec, TaskKey(round=0, shard=0), x, y, DirectorySink(tmp_path / "ck"))
    ck = DirectorySink(tmp_path / "ck")
    losses = checkpoint_losses(spec, x, y, [ck.path(i) for i in range(len(hashes))])
    assert losses is not None and len(losses) == len(hashes) == 4
    last = DirectorySink(tmp_path / "ck").read(3)
    assert losses[3] == evaluate(spec, last, x[:LOSS_EXAMPLES], y[:LOSS_EXAMPLES]).loss
    assert losses[-1] < losses[0]  # training lowered the loss
    (tmp_path / "junk").mkdir()
    DirectorySink(tmp_path / "junk").put(0, b"not a checkpoint", b"\0" * 32)
    junk = [DirectorySink(tmp_path / "junk").path(0)]
    assert checkpoint_losses(spec, x, y, junk) is None  # optional: no curve, no failure


def test_detection_odds_follow_the_protocols_formula() -> None:
    chart = charts.detection_odds(4, rates=(0.1, 0.5, 1.0))
    data = {d["label"]: d["data"] for d in chart["config"]["data"]["datasets"]}
    assert data["1 of 4 segment(s) falsified"] == [0.1, 0.5, 1.0]
    assert data["4 of 4 segment(s) falsified"] == [round(1 - 0.9**4, 4), round(1 - 0.5**4, 4), 1.0]
    assert chart["table"][0][0] == "sampling rate p" and len(chart["table"]) == 4  # header + 3 rates


class _DeadIndex:
    """An index whose RPC node does not answer (what ChainIndex.refresh raises then)."""

    deployment = SimpleNamespace(chain_id=31337)
    head, events, storage = 7, [], None
    error: str | None = None
    version = "7:0:0"

    def refresh(self, force: bool = False) -> None:
        self.error = "reading logs: the RPC node at http://127.0.0.1:9 did not answer after 3 attempts"
        raise ChainError(self.error)


def _client(index: Any) -> Any:
    from fastapi.testclient import TestClient

    from veritrain.explorer.app import create_app

    return TestClient(create_app(index, network="sim"))


def test_an_unreachable_rpc_is_a_503_page_and_a_banner_not_a_traceback() -> None:
    c = _client(_DeadIndex())
    r = c.get("/job/1")
    assert r.status_code == 503 and "Cannot read the chain" in r.text
    assert "http://127.0.0.1:9 did not answer" in r.text and "Traceback" not in r.text
    head = c.get("/api/head").json()
    assert head["error"].startswith("reading logs: the RPC node") and head["head"] == 7


def test_a_wrong_id_is_a_404_that_says_what_ids_look_like() -> None:
    class Idle(_DeadIndex):
        def refresh(self, force: bool = False) -> None:
            self.error = None

    c = _client(Idle())
    r = c.get("/job/abc")
    assert r.status_code == 404 and "job &#39;abc&#39; is not a number" in r.text
    assert c.get("/tx/0x12").status_code == 404


@pytest.mark.parametrize(("q", "where"), [
    ("job 3", "/job/3"), ("Task #4294967296", "/task/4294967296"), ("dispute 2", "/dispute/2"),
    ("7", "/job/7"), ("0x" + "ab" * 20, "/account/0x" + "ab" * 20), ("0x" + "cd" * 32, "/tx/0x" + "cd" * 32),
])
def test_the_search_box_goes_to_the_page(q: str, where: str) -> None:
    r = _client(_DeadIndex()).get("/go", params={"q": q}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == where


def _explorer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("VERITRAIN_")}
    full.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-m", "veritrain.cli", "explorer", *args], env=full,
                          capture_output=True, text=True, timeout=120)


def test_the_command_says_in_one_line_when_the_rpc_is_dead_or_the_port_is_taken(tmp_path: Path) -> None:
    from veritrain.dev import procs

    dead = f"http://127.0.0.1:{procs.free_port()}"
    r = _explorer("--port", str(procs.free_port()), env={"VERITRAIN_RPC_URL": dead,
                                                          "VERITRAIN_HOME": str(tmp_path)})
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"error: the RPC node at {dead} does not answer")
    from veritrain.errors import ConfigError
    from veritrain.explorer.serve import check_port

    with socket.socket() as s:  # checked before anything else, so it needs no chain
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port} .*pass another --port"):
            check_port("127.0.0.1", port)


def test_chain_times_read_as_utc() -> None:
    from veritrain.explorer.app import utc

    assert utc(0) == "1970-01-01 00:00:00 UTC" and utc(1796106592) == "2026-12-01 06:29:52 UTC"

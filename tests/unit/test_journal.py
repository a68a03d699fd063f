"""The journal survives a SIGKILL between any two writes: what was committed is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from veritrain.journal import Journal


def test_put_merges_payload_and_tracks_phase(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.put("task:1", "claimed", tx="0xaa", stake=5)
    item = j.put("task:1", "trained", root="0xbb")
    assert item.phase == "trained"
    assert j.get("task:1").data == {"tx": "0xaa", "stake": 5, "root": "0xbb"}  # type: ignore[union-attr]
    j.put("task:2", "claimed")
    j.put("dispute:1", "open")
    assert [i.key for i in j.items("task:")] == ["task:1", "task:2"]
    assert [i.key for i in j.items("task:", phases=("claimed",))] == ["task:2"]
    assert j.get("missing") is None


def test_tx_lifecycle_and_kv(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    tid = j.tx_intent("task:1", "claim")
    j.tx_update(tid, "sent", tx_hash="0x01")
    j.tx_update(tid, "mined")
    [rec] = j.txs(item="task:1", action="claim")
    assert (rec.status, rec.tx_hash) == ("mined", "0x01")
    assert j.value("last_block", 0) == 0
    j.set("last_block", 42)
    assert Journal(tmp_path / "j.sqlite").value("last_block") == 42


def test_committed_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from veritrain.journal import Journal
        j = Journal(Path({str(path)!r}))
        for i in range(50):
            j.put(f"task:{{i:03d}}", "claimed", n=i)
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    j = Journal(path)
    items = j.items("task:")
    assert len(items) == 50 and items[-1].data == {"n": 49}
    assert os.path.exists(path)


def test_payloads_read_as_typed_records_and_tx_statuses_are_checked(tmp_path: Path) -> None:
    import pytest
    from pydantic import BaseModel, ValidationError

    from veritrain.journal import TxStatus

    class Claim(BaseModel):
        stake: int
        tx: str

    j = Journal(tmp_path / "j.sqlite")
    item = j.put("task:1", "claimed", tx="0xaa", stake=5)
    assert item.record(Claim) == Claim(stake=5, tx="0xaa")
    with pytest.raises(ValidationError):
        j.put("task:2", "claimed", stake="five").record(Claim)
    tid = j.tx_intent("task:1", "claim")
    assert j.txs("task:1")[0].status == TxStatus.INTENT
    with pytest.raises(ValueError, match="'mind' is not a valid TxStatus"):
        j.tx_update(tid, "mind", "0x01")  # a typo is refused, not stored as a status nobody reads
    j.tx_update(tid, TxStatus.MINED, "0x01")
    assert j.txs("task:1")[0].status == "mined"

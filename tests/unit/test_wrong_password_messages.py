"""One wrong-password message for every role's keystore (issue 24: `wrong password` for the
worker, `MAC mismatch` for the verifier)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from requester.settings import RequesterSettings
from requester.settings import load_account as requester_account
from verifier.settings import VerifierSettings
from veritrain.errors import VeritrainError
from worker.keystore import load_account as worker_account


def test_every_role_says_wrong_password_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eth_account import Account

    path = tmp_path / "key.json"
    path.write_text(json.dumps(Account.encrypt(b"\x42" * 32, "right", iterations=2)))
    want = f"wrong password for keystore {path}"
    messages = []
    with pytest.raises(VeritrainError) as w:
        worker_account(path, "wrong")
    messages.append(str(w.value))
    with pytest.raises(VeritrainError) as r:
        requester_account(RequesterSettings(keystore=path, password=SecretStr("wrong")))
    messages.append(str(r.value))
    monkeypatch.setenv("VERITRAIN_VERIFIER_PASSWORD", "wrong")
    with pytest.raises(VeritrainError) as v:
        VerifierSettings(keystore=path, home=tmp_path).load_account()
    messages.append(str(v.value))
    assert messages == [want] * 3
    right = requester_account(RequesterSettings(keystore=path, password=SecretStr("right")))
    assert right.key == b"\x42" * 32

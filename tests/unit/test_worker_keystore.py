from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veritrain.errors import ConfigError
from worker.keystore import KeystoreError, create_keystore, keystore_address, load_account
from worker.settings import WorkerSettings

KEY = "0x" + "11" * 32
FAST = 2**4  # scrypt N for tests


def test_import_roundtrip_and_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "ks" / "keystore.json"
    address = create_keystore(path, "secret", KEY, iterations=FAST)
    acct = load_account(path, "secret")
    assert acct.address == address == keystore_address(path)
    assert bytes(acct.key).hex() == KEY[2:]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "11" * 32 not in path.read_text()  # encrypted, not the key in clear


def test_wrong_password_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    create_keystore(path, "secret", KEY, iterations=FAST)
    with pytest.raises(KeystoreError, match=r"^wrong password for keystore .*keystore.json$"):
        load_account(path, "nope")


def test_create_refuses_to_overwrite_and_bad_keys(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    first = create_keystore(path, "pw", None, iterations=FAST)
    with pytest.raises(KeystoreError, match="already exists"):
        create_keystore(path, "pw", KEY, iterations=FAST)
    assert keystore_address(path) == first
    assert create_keystore(path, "pw", KEY, overwrite=True, iterations=FAST) != first
    with pytest.raises(KeystoreError, match="64 hex digits"):
        create_keystore(tmp_path / "b.json", "pw", "0xzz", iterations=FAST)
    with pytest.raises(KeystoreError, match="32 bytes"):
        create_keystore(tmp_path / "c.json", "pw", "0x1234", iterations=FAST)
    with pytest.raises(ConfigError, match="veritrain worker init"):
        load_account(tmp_path / "missing.json", "pw")
    (tmp_path / "junk.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(KeystoreError, match="not an Ethereum keystore"):
        load_account(tmp_path / "junk.json", "pw")


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("veritrain"))
    return subprocess.run([exe, "worker", *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_cli_init_then_wrong_password_ends_in_one_line(tmp_path: Path) -> None:
    env = {"VERITRAIN_WORKER_HOME": str(tmp_path), "VERITRAIN_WORKER_PASSWORD": "right"}
    done = _cli(["init"], env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "keystore.json").exists() and "keystore written" in done.stdout
    again = _cli(["init"], env)
    assert again.returncode == 1 and again.stderr.strip().startswith("error: ") and "--force" in again.stderr
    bad = _cli(["withdraw"], {**env, "VERITRAIN_WORKER_PASSWORD": "wrong"})
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"error: wrong password for keystore {tmp_path}/keystore.json"]
    nopw = _cli(["run", "--once"], {"VERITRAIN_WORKER_HOME": str(tmp_path)})
    assert nopw.returncode == 1 and "VERITRAIN_WORKER_PASSWORD" in nopw.stderr


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VERITRAIN_RPC_URL", "http://shared:1")
    monkeypatch.setenv("VERITRAIN_IPFS_API", "/ip4/1.2.3.4/tcp/5/http")
    monkeypatch.setenv("VERITRAIN_WORKER_IPFS_API", "/ip4/9.9.9.9/tcp/9/http")
    monkeypatch.setenv("VERITRAIN_WORKER_ALLOWED_MODELS", "mlp, cnn")
    monkeypatch.setenv("VERITRAIN_WORKER_HOME", str(tmp_path))
    s = WorkerSettings()
    assert s.rpc_url == "http://shared:1"
    assert s.ipfs_api == "/ip4/9.9.9.9/tcp/9/http"  # the worker's own name wins
    assert s.allowed_models == ["mlp", "cnn"]
    assert s.keystore_path == tmp_path / "keystore.json"
    a = s.account_dir(31337, "0xABCDEF0000000000000000000000000000000001")
    b = s.account_dir(31337, "0xABCDEF0000000000000000000000000000000002")
    assert a != b and a.parent == b.parent == tmp_path  # several keys share a home without colliding

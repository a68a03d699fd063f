from __future__ import annotations

from pathlib import Path

import pytest

from veritrain.dev.stack import Stack
from veritrain.errors import PortInUseError, SpecError, StackError, VeritrainError
from veritrain.settings import StackSettings


def test_spec_error_lists_every_problem_and_is_a_value_error() -> None:
    err = SpecError(["optimizer.lr: must be > 0", "rounds: must be >= 1"], source="job.yaml")
    assert isinstance(err, ValueError) and isinstance(err, VeritrainError)
    assert str(err) == "invalid job spec in job.yaml: optimizer.lr: must be > 0; rounds: must be >= 1"


def test_port_error_is_a_stack_error() -> None:
    assert issubclass(PortInUseError, StackError)


def test_stack_settings_read_veritrain_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VERITRAIN_ANVIL_PORT", "18999")
    monkeypatch.setenv("VERITRAIN_HOME", str(tmp_path))
    s = StackSettings()
    assert s.anvil_port == 18999
    assert Stack(s).state_file == tmp_path.resolve() / "dev" / "stack.json"


def test_stack_settings_reject_bad_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITRAIN_IPFS_API_PORT", "70000")
    with pytest.raises(ValueError, match="ipfs_api_port"):
        StackSettings()


def test_state_lives_in_one_per_user_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 24: the SDK run from another folder wrote its job record there. Every role's state
    now hangs off one per-user home, whatever the working directory."""
    from verifier.settings import VerifierSettings
    from veritrain.settings import ChainSettings, default_home
    from worker.settings import WorkerSettings

    monkeypatch.delenv("VERITRAIN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    assert default_home() == tmp_path / "user" / ".veritrain"
    assert StackSettings().home == default_home()
    monkeypatch.setenv("VERITRAIN_HOME", str(tmp_path / "elsewhere"))
    assert StackSettings().home == tmp_path / "elsewhere"
    assert WorkerSettings().home == tmp_path / "elsewhere" / "worker"
    assert VerifierSettings().home == tmp_path / "elsewhere" / "verifier"
    assert ChainSettings().deployment is None  # found by network unless VERITRAIN_DEPLOYMENT names one

"""The engine across processes, under the pinned profile of the example job (MKL_CBWR,
ATen ISA level and thread count set before torch loads): bitwise chains in separate
processes, resume after SIGKILL, refusal of a profile this machine cannot honour."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from veritrain.errors import ReplayProfileError
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.training import profile
from veritrain.training.runner import command, run_in_profile, write_job
from veritrain.training.sinks import DirectorySink

ROOT = Path(__file__).resolve().parents[2]
TASK = TaskKey(round=0, shard=1)


def example(**overrides: object) -> JobSpec:
    raw = yaml.safe_load((ROOT / "examples" / "digits-mlp.yaml").read_text())
    raw.update(overrides)
    return load_spec(raw)


@pytest.fixture(scope="module")
def shard() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x[:900] / 16.0).astype(np.float32), y[:900]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, shard) -> list[bytes]:  # type: ignore[no-untyped-def]
    spec = example(steps_per_task=600)
    out = tmp_path_factory.mktemp("ref") / "ckpt"
    return run_in_profile(spec, "train", task=TASK, features=shard[0], labels=shard[1], directory=out,
                          force_subprocess=True)  # type: ignore[no-any-return]


def test_separate_processes_produce_bitwise_equal_chains(tmp_path: Path, shard, reference) -> None:  # type: ignore[no-untyped-def]
    spec = example(steps_per_task=600)
    steps: list[int] = []
    again = run_in_profile(spec, "train", task=TASK, features=shard[0], labels=shard[1],
                           directory=tmp_path / "b", force_subprocess=True,
                           progress=lambda s, n: steps.append(s))
    assert len(reference) == 31 and again == reference
    assert steps[-1] == 600 and steps == sorted(steps)
    assert DirectorySink(tmp_path / "b").chain() == reference


def test_segment_replayed_in_a_fresh_process_matches(tmp_path: Path, shard, reference) -> None:  # type: ignore[no-untyped-def]
    spec = example(steps_per_task=600)
    run_in_profile(spec, "train", task=TASK, features=shard[0], labels=shard[1], directory=tmp_path / "c",
                   force_subprocess=True)
    ckpt = DirectorySink(tmp_path / "c").read(17)
    data, h = run_in_profile(spec, "replay", task=TASK, features=shard[0], labels=shard[1], j=17,
                             checkpoint=ckpt, force_subprocess=True)
    assert h == reference[18] and DirectorySink(tmp_path / "c").read(18) == data


def test_resume_after_sigkill_gives_the_uninterrupted_chain(tmp_path: Path, shard, reference) -> None:  # type: ignore[no-untyped-def]
    spec = example(steps_per_task=600)
    work, out = tmp_path / "work", tmp_path / "ckpt"
    work.mkdir()
    write_job(work, spec, "train", task=TASK, features=shard[0], labels=shard[1], directory=out)
    env = profile.profile_env(spec.replay)
    child = subprocess.Popen(command(work), env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "ckpt-000005.vtck").exists():
        assert child.poll() is None and time.monotonic() < deadline, "child ended before checkpoint 5"
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    written = DirectorySink(out).indices()
    assert 5 <= written[-1] < 30, written  # killed mid-run
    assert DirectorySink(out).chain() == reference[: len(DirectorySink(out).chain())]
    subprocess.run(command(work), env=env, stdout=subprocess.DEVNULL, check=True)  # restart
    assert DirectorySink(out).chain() == reference


def test_a_profile_this_machine_cannot_honour_is_refused_naming_the_setting(shard) -> None:  # type: ignore[no-untyped-def]
    raw = example().replay.model_dump()
    spec = example(replay={**raw, "torch_version": "2.12.0"})
    with pytest.raises(ReplayProfileError, match=r"torch_version: job wants '2\.12\.0'"):
        run_in_profile(spec, "replay", task=TASK, features=shard[0], labels=shard[1], j=0,
                       checkpoint=b"unused", force_subprocess=True)

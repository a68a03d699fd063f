"""`make gpu-check` (scripts/gpu_check.py) where there is no GPU: a clean one-line skip, the
whole check run with the CPU standing in for the GPU, and the import contract the accelerator
machine needs (the engine and the check import nothing beyond torch, numpy, pydantic and
rfc8785, which travel as wheels)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.py"
#: what may be imported besides the standard library: torch and what torch itself loads, numpy,
#: the wheels `make gpu-wheels` prepares, and the project's own code.
ALLOWED = {"torch", "torchgen", "functorch", "numpy", "opt_einsum", "tqdm", "sympy", "mpmath", "networkx",
           "jinja2", "markupsafe", "filelock", "fsspec", "triton", "pydantic", "pydantic_core",
           "annotated_types", "typing_extensions", "typing_inspection", "rfc8785", "veritrain",
           "adversary", "stdlib_corpus", "gpu_check", "_distutils_hack", "sitecustomize", "_virtualenv",
           "cython_runtime"}  # a builtin that numpy's Cython extensions register


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def test_the_check_imports_only_torch_numpy_pydantic_and_rfc8785() -> None:
    code = ("import sys; sys.path[:0] = ['scripts', 'examples']; import gpu_check, stdlib_corpus; "
            "import veritrain.training.engine, veritrain.training.calibrate, veritrain.training.judges, "
            "veritrain.training.devices, veritrain.training.gpt, adversary.cheats; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = _run("-c", code)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    extra = {m for m in loaded - ALLOWED - set(sys.stdlib_module_names)
             if not m.startswith(("_", "__editable__"))}
    assert not extra, f"the GPU check would need packages the accelerator lacks: {sorted(extra)}"
    assert {"yaml", "web3", "typer", "sklearn"}.isdisjoint(loaded)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_prints_one_line_and_exits_0(tmp_path: Path) -> None:
    out = _run(str(SCRIPT), "--out", str(tmp_path))
    assert out.returncode == 0
    assert out.stdout.strip().splitlines() == [
        "gpu-check: no CUDA device on this machine (torch.cuda.is_available() is False); skipped"]
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_whole_check_runs_with_the_cpu_standing_in_for_the_gpu(tmp_path: Path) -> None:
    out = _run(str(SCRIPT), "--simulate-on-cpu", "--tiny", "--steps", "10", "--k", "5", "--budget", "900",
               "--out", str(tmp_path))
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert out.returncode == 0 and figures["verdict"] == "ok", (out.stdout, out.stderr, figures)
    assert figures["bitwise_repeat"] is True and figures["profile_differences"] == []
    assert figures["skipped"] == [] and figures["problems"] == []
    bound = figures["calibration"]["bound"]
    assert all(h["distance"] <= bound for h in figures["honest"]) and figures["honest"]
    assert set(figures["cheats"]) == {"skip_step", "perturb_weight", "other_data"}
    assert all(c["distance"] > bound for c in figures["cheats"].values())
    assert figures["worker_overhead_ratio"] > 0 and figures["replay_segment_ratio"] > 0
    assert {"ckpt-000000.vtck", "ckpt-000001.vtck", "spec-exact.json", "data.npz"} <= set(
        figures["brought_back"])
    # what comes back from a lease: at most 8 plain files in $OUT itself (no scratch runs)
    files = list(tmp_path.iterdir())
    assert len(files) <= 8 and all(f.is_file() and f.stat().st_size < 16 << 20 for f in files)
    # what comes back replays elsewhere: segment 0 from the brought-back checkpoint 0
    from veritrain.checkpoint import checkpoint_hash
    from veritrain.spec import TaskKey, load_spec
    from veritrain.training import engine

    spec = load_spec(json.loads((tmp_path / "spec-tolerance.json").read_text()))
    import numpy as np

    with np.load(tmp_path / "data.npz") as d:
        x, y = d["features"].astype(np.int64), d["labels"].astype(np.int64)
    replayed, _ = engine.replay_segment_bytes(spec, TaskKey(round=0, shard=0), 0,
                                              (tmp_path / "ckpt-000000.vtck").read_bytes(), x, y,
                                              strict_profile=False)
    from veritrain.training.tolerance import distance

    d1 = distance((tmp_path / "ckpt-000000.vtck").read_bytes(), (tmp_path / "ckpt-000001.vtck").read_bytes(),
                  replayed)
    assert d1.value <= bound or checkpoint_hash(replayed) == checkpoint_hash(
        (tmp_path / "ckpt-000001.vtck").read_bytes())

"""Portable mode across CPU configurations, in separate processes (docs/spec/portable.md).

Each process is started with its own ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``,
``ATEN_CPU_CAPABILITY`` and ``MKL_ENABLE_INSTRUCTIONS`` (set before torch loads; MKL picks its
own code path apart from ATen's, and torch's CPU sqrt is MKL's) and trains the two reference workloads
(the digits MLP and the GPT-style character LM) in both modes with
``python -m veritrain.training.portable.crosscheck``. Portable chains must be bitwise equal
everywhere; the standard mode, trained the same way, is shown to differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = 10


def _levels() -> list[str]:
    import torch

    have = torch.backends.cpu.get_cpu_capability().lower()  # the best level this CPU runs
    return ["default", "avx2", "avx512"][: {"default": 1, "avx2": 2}.get(have, 3)]


#: MKL's code path for each ATen kernel level (a CPU without the level gets its best below it).
MKL_PATHS = {"default": "SSE4_2", "avx2": "AVX2", "avx512": "AVX512"}


def _crosscheck(threads: int, isa: str, mkl: str) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), ATEN_CPU_CAPABILITY=isa,
               MKL_ENABLE_INSTRUCTIONS=mkl, PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}")
    cmd = [sys.executable, "-m", "veritrain.training.portable.crosscheck", "--steps", str(STEPS)]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=True)
    result = json.loads(out.stdout)
    assert result["threads"] == threads and result["isa"].lower() == isa  # the setting took effect
    return result  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def runs() -> dict[tuple[int, str], dict]:  # type: ignore[type-arg]
    """Every kernel level at one thread with MKL on the matching path, and the best level at
    two threads with MKL on its oldest path (two at a time). Before portable mode had its own
    sqrt, the MLP's chains differed between MKL's paths (torch's sqrt is MKL's)."""
    levels = _levels()
    configs = [(1, isa, MKL_PATHS[isa]) for isa in levels] + [(2, levels[-1], MKL_PATHS["default"])]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda c: _crosscheck(*c), configs)
        return {(threads, isa): r for (threads, isa, _), r in zip(configs, results, strict=True)}


@pytest.mark.parametrize("name", ["mlp", "char_lm"])
def test_portable_segments_are_bitwise_equal_on_every_thread_count_and_kernel_level(runs, name) -> None:  # type: ignore[no-untyped-def]
    chains = {c: r[f"{name}:portable"]["chain"] for c, r in runs.items()}
    reference = chains[(1, "default")]
    assert len(reference) == 3  # h_0, h_1, h_2
    assert all(chain == reference for chain in chains.values()), chains
    assert {threads for threads, _ in runs} == {1, 2} and {isa for _, isa in runs} == set(_levels())


@pytest.mark.parametrize("name", ["mlp", "char_lm"])
def test_standard_mode_differs_across_the_same_configurations(runs, name) -> None:  # type: ignore[no-untyped-def]
    """The hazard portable mode removes: the same training in standard mode gives other weights."""
    states = {c: r[f"{name}:standard"]["state"] for c, r in runs.items()}
    kernel_levels = {isa: states[(1, isa)] for isa in _levels()}
    assert len(set(kernel_levels.values())) > 1, kernel_levels  # one thread: the ISA alone differs

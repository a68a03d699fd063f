from __future__ import annotations

import pytest

from veritrain.errors import ReplayProfileError
from veritrain.spec import ReplayProfile
from veritrain.training import profile


def test_profile_env_sets_threads_mkl_and_isa_before_torch_loads() -> None:
    p = ReplayProfile(torch_version="2.13.0", threads=2, mkl_cbwr="AVX2,STRICT", cpu_isa="avx2")
    env = profile.profile_env(p, base={"MKL_CBWR": "AUTO", "HOME": "/h"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert env["MKL_CBWR"] == "AVX2,STRICT" and env["ATEN_CPU_CAPABILITY"] == "avx2" and env["HOME"] == "/h"
    unset = profile.profile_env(p.model_copy(update={"mkl_cbwr": None}), base={"MKL_CBWR": "AUTO"})
    assert "MKL_CBWR" not in unset


def test_current_profile_is_honoured_and_a_different_one_is_refused_by_name() -> None:
    here = profile.current_profile(threads=1)
    assert profile.differences(here) == []
    profile.enter(here)
    other = here.model_copy(update={"torch_version": "1.0.0", "mkl_cbwr": "SSE4_2,STRICT"})
    with pytest.raises(ReplayProfileError) as info:
        profile.enter(other)
    message = str(info.value)
    assert "torch_version: job wants '1.0.0'" in message and "mkl_cbwr: job wants 'SSE4_2,STRICT'" in message
    assert "cpu_isa" not in message
    with pytest.raises(ReplayProfileError, match="torch_version"):  # lenient mode still checks torch
        profile.enter(other, strict=False)


def test_thread_count_is_a_difference_only_when_it_cannot_be_set() -> None:
    import torch

    wanted = profile.current_profile(threads=torch.get_num_threads() + 1)
    assert profile.differences(wanted) == []
    assert [d.split(":")[0] for d in profile.differences(wanted, threads_settable=False)] == ["threads"]

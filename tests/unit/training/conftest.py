"""Small jobs on scikit-learn's load_digits, run in this process with a profile it honours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from veritrain.spec import JobSpec, load_spec

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits-mlp.yaml"


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y.astype(np.int64)


def _make_spec(threads: int = 1, **overrides: Any) -> JobSpec:
    """The example job, small, with this process's MKL/ISA settings pinned (in-process runs)."""
    from veritrain.training.profile import current_profile

    raw = yaml.safe_load(EXAMPLE.read_text())
    raw.update(steps_per_task=60, checkpoint_interval=10)
    raw["model"]["args"]["hidden"] = [64]
    raw["replay"] = current_profile(threads=threads).model_dump()
    for key, value in overrides.items():
        raw[key] = value
    return load_spec(raw)


@pytest.fixture(scope="session")
def make_spec():  # type: ignore[no-untyped-def]
    """``make_spec(threads=1, **top_level_overrides) -> JobSpec``."""
    return _make_spec

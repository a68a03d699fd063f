"""The demo's own measurement of the requester's model (it does not take the requester's word).

``veritrain job fetch`` checks every task's final checkpoint against its on-chain root,
averages them and reports the held-out accuracy. The demo re-evaluates the saved model on the
same held-out split with the core engine and reports *that* figure, after checking it agrees
with the requester's.
"""

from __future__ import annotations

import json
from pathlib import Path


def holdout_path(requester_home: Path, chain_id: int, market: str, job_id: int) -> Path:
    """The held-out split the requester kept back (named in its job record)."""
    record = requester_home / "requester" / f"{chain_id}-{market.lower()}" / "jobs" / f"{job_id}.json"
    path = json.loads(record.read_text()).get("holdout")
    if not path:
        raise FileNotFoundError(f"the job record {record} names no held-out split")
    return Path(path)


def accuracy(spec_path: Path, model_path: Path, holdout: Path) -> tuple[float, int]:
    """(accuracy, examples) of the safetensors model on the held-out ``.npz``."""
    from safetensors.numpy import load_file

    from veritrain.checkpoint import CheckpointState
    from veritrain.data import load_npz
    from veritrain.spec import load_spec
    from veritrain.training.engine import evaluate

    spec = load_spec(spec_path)
    state = CheckpointState(tensors={f"model/{k}": v for k, v in load_file(str(model_path)).items()})
    held = load_npz(holdout)
    ev = evaluate(spec, state, held.features, held.labels)
    return float(ev.accuracy), int(ev.examples)

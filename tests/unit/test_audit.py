"""The membership-inference audit: the ROC arithmetic, and both attacks telling an overfit
model's training examples from unseen ones, through the CLI on a saved model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from veritrain import audit
from veritrain.cli import app
from veritrain.errors import DataError
from veritrain.spec import load_spec
from veritrain.training import engine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-mlp.yaml"


def test_roc_auc_and_tpr_at_low_fpr() -> None:
    truth = np.array([1, 1, 1, 0, 0, 0], bool)
    perfect = audit.roc(np.array([3.0, 2.5, 2.0, 1.0, 0.5, 0.0]), truth)
    assert perfect.auc == 1.0 and perfect.tpr_at(0.001) == 1.0
    inverted = audit.roc(np.array([0.0, 0.5, 1.0, 2.0, 2.5, 3.0]), truth)
    assert inverted.auc == 0.0 and inverted.tpr_at(0.001) == 0.0
    ties = audit.roc(np.zeros(6), truth)  # one threshold: the diagonal
    assert ties.auc == pytest.approx(0.5) and ties.tpr_at(0.001) == 0.0
    with pytest.raises(DataError, match="at least one member and one non-member"):
        audit.roc(np.zeros(3), np.ones(3, bool))


def _overfit(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A wide MLP trained hard on 60 digits (members); 60 others are non-members."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw.update(steps_per_task=150, checkpoint_interval=50, batch_size=20, num_shards=1)
    raw["optimizer"] = {"name": "adam", "lr": 0.01}
    raw["model"]["args"]["hidden"] = [128]
    spec = load_spec(raw)
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int64)
    members, non_members = tmp_path / "members.npz", tmp_path / "non.npz"
    np.savez(members, features=x[:60], labels=y[:60])
    np.savez(non_members, features=x[1000:1060], labels=y[1000:1060])
    model = audit.train_shadow(spec, *engine.as_tensors(spec, x[:60], y[:60]), seed=7)
    path = tmp_path / "model.safetensors"
    save_file({k: v.detach().numpy() for k, v in model.state_dict().items()}, str(path),
              metadata={"veritrain.spec": spec.canonical_json(), "veritrain.metrics": "{}"})
    return path, members, non_members


def test_both_attacks_find_the_members_of_an_overfit_model_through_the_cli(tmp_path: Path) -> None:
    model, members, non_members = _overfit(tmp_path)
    plot = tmp_path / "roc.svg"
    out = CliRunner().invoke(app, ["audit", "membership", str(model), "--members", str(members),
                                   "--non-members", str(non_members), "--shadows", "4",
                                   "--plot", str(plot), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["members"] == report["non_members"] == 60 and report["privacy"] is None
    loss, lira = report["attacks"]["loss_threshold"], report["attacks"]["lira"]
    assert loss["auc"] > 0.7 and lira["auc"] > 0.7  # the model memorised its 60 examples
    assert 0.0 <= loss["tpr_at_0.1%_fpr"] <= 1.0 and loss["advantage"] > 0.3
    svg = plot.read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 4 and "lira: AUC" in svg

    bad = CliRunner().invoke(app, ["audit", "membership", str(tmp_path / "missing.safetensors"),
                                   "--members", str(members), "--non-members", str(non_members)])
    assert bad.exit_code != 0

"""The independent reference verifier (reference/verify_segment.py, written from docs/spec)
reproduces the engine bitwise: h_0..h_n and the root of every zoo model under every optimizer,
in round 0 and in a later round started from an initial model, and one segment from a
checkpoint. It shares no code with the package (its imports are checked here)."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from veritrain import crypto
from veritrain.checkpoint import decode, encode
from veritrain.data import Dataset, encode_shard, fit_transform
from veritrain.jobdoc import (
    InitialModelRef,
    JobDocument,
    ModelCopyRef,
    ShardRef,
    binding_for,
    encode_initial_model,
    open_shard,
)
from veritrain.merkle import MerkleTree
from veritrain.spec import JobSpec, TaskKey, load_spec
from veritrain.training import engine
from veritrain.training.profile import current_profile
from veritrain.training.runner import model_state_of
from veritrain.training.sinks import MemorySink

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference" / "verify_segment.py"
ALLOWED_IMPORTS = {  # the standard library it uses, torch, numpy and a keccak
    "__future__",
    "argparse",
    "hashlib",
    "json",
    "math",
    "os",
    "struct",
    "sys",
    "typing",
    "torch",
    "numpy",
    "sha3",
    "Crypto",
    "cryptography",
}

MODELS: dict[str, dict[str, Any]] = {
    "mlp": {
        "model": {"name": "mlp", "args": {"hidden": [12, 8], "activation": "gelu", "dropout": 0.25}},
        "data": {"input_shape": [64], "num_classes": 10},
    },
    "cnn": {
        "model": {"name": "cnn", "args": {"channels": [3, 4], "kernel_size": 3, "hidden": 8}},
        "data": {"input_shape": [1, 8, 8], "num_classes": 10},
    },
    "char_lm": {
        "model": {
            "name": "char_lm",
            "args": {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "dropout": 0.1},
        },
        "data": {"input_shape": [6], "num_classes": 11, "input_dtype": "int64", "targets": "sequence"},
    },
}
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"name": "sgd", "lr": 0.1},
    "sgd-nesterov-wd": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    "adam-wd": {"name": "adam", "lr": 3e-3, "weight_decay": 1e-2, "betas": [0.8, 0.99]},
    "adamw": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.1, "eps": 1e-6},
}
SHARD = 1


@pytest.fixture(scope="module")
def ref() -> ModuleType:
    spec = importlib.util.spec_from_file_location("veritrain_reference", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_torch()
    return module


def make_spec(model: str, optimizer: str) -> JobSpec:
    return load_spec(
        {
            **MODELS[model],
            "optimizer": OPTIMIZERS[optimizer],
            "batch_size": 5,
            "seed": 2026,
            "steps_per_task": 6,
            "checkpoint_interval": 2,
            "rounds": 2,
            "num_shards": 2,
            "replay": current_profile(threads=1).model_dump(),
            "deadlines": {
                "key_window": 60,
                "submission_window": 60,
                "reveal_window": 60,
                "challenge_window": 60,
            },
        }
    )


def data_for(model: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    if model == "char_lm":
        tokens = rng.integers(0, 11, size=(13, 7))
        return tokens[:, :-1].astype(np.int64), tokens[:, 1:].astype(np.int64)
    x = rng.random((13, 64), dtype=np.float32)
    shaped = x.reshape(13, 1, 8, 8) if model == "cnn" else x
    return shaped, rng.integers(0, 10, size=13).astype(np.int64)


def document(spec: JobSpec) -> JobDocument:
    refs = [
        ShardRef(index=i, cid=f"bafyshard{i}", sha256=f"{i:064x}", size=1, examples=13)
        for i in range(spec.num_shards)
    ]
    return JobDocument.create(spec, refs, nonce=b"\x05" * 16)


def round_1(spec: JobSpec, doc0: JobDocument, final_round_0: bytes) -> tuple[JobDocument, bytes]:
    """Round 1's document and initial model: a FedAvg-like blend of round 0's final model."""
    tensors = {
        k: (v * np.float32(0.5) + np.float32(0.01)).astype(np.float32)
        for k, v in decode(final_round_0).tensors.items()
        if k.startswith("model/")
    }
    plain = encode_initial_model(spec, doc0.binding, 1, tensors)
    copies = tuple(
        ModelCopyRef(shard=s, cid=f"bafymodel{s}", sha256=f"{s:064x}", size=1) for s in range(spec.num_shards)
    )
    im = InitialModelRef(digest=hashlib.sha256(plain).hexdigest(), previous_job=1, copies=copies)
    return doc0.next_round(im), plain


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_reference_reproduces_every_hash_and_root_in_round_0_and_round_1(
    ref: ModuleType, model: str, optimizer: str
) -> None:
    spec = make_spec(model, optimizer)
    x, y = data_for(model)
    doc0 = document(spec)
    sink0 = MemorySink()
    hashes0 = engine.train_task(spec, TaskKey(round=0, shard=SHARD), x, y, sink0)
    got0, root0 = ref.run_task(json.loads(doc0.to_bytes()), SHARD, x, y)
    assert got0 == hashes0 and len(set(got0)) == spec.num_checkpoints == 4
    assert root0 == MerkleTree(hashes0).root

    doc1, plain = round_1(spec, doc0, sink0.data(3))
    sink1 = MemorySink()
    hashes1 = engine.train_task(
        spec, TaskKey(round=1, shard=SHARD), x, y, sink1, initial_model=model_state_of(plain)
    )
    doc1_json = json.loads(doc1.to_bytes())
    got1, root1 = ref.run_task(doc1_json, SHARD, x, y, plain)
    assert got1 == hashes1 and root1 == MerkleTree(hashes1).root
    assert not set(got1) & set(got0)

    # one segment from the worker's checkpoint 1: the same bytes as the engine's checkpoint 2
    j, data, h = ref.run_segment(doc1_json, SHARD, x, y, sink1.data(1))
    assert (j, h, data) == (1, hashes1[2], sink1.data(2))


def test_the_reference_applies_the_published_preprocessing(ref: ModuleType) -> None:
    """A job with ``data.preprocessing``: the engine trains on what ``open_shard`` gives (the raw
    shard, transformed by the document's statistics); the reference gets the RAW features and the
    document, applies spec §12.1 itself and reproduces every hash — and without the transform it
    would not."""
    base = make_spec("mlp", "adamw")
    spec = load_spec({**base.model_dump(mode="json"), "schema_version": 2,
                      "data": {**base.data.model_dump(mode="json"), "preprocessing": "standardize"}})
    x, y = data_for("mlp")
    raw = (x * np.float32(37.0) + np.float32(5.0)).astype(np.float32)  # unscaled, like a bank's CSV
    t = fit_transform("standardize", raw)
    assert t is not None
    refs = [ShardRef(index=i, cid=f"bafyshard{i}", sha256=f"{i:064x}", size=1, examples=13)
            for i in range(spec.num_shards)]
    doc = JobDocument.create(spec, refs, nonce=b"\x05" * 16, transform=t)
    opened = open_shard(doc, encode_shard(Dataset(raw, y, "raw")), "shard")
    hashes = engine.train_task(spec, TaskKey(round=0, shard=SHARD), opened.features, y, MemorySink())
    doc_json = json.loads(doc.to_bytes())
    got, root = ref.run_task(doc_json, SHARD, raw, y)
    assert got == hashes and root == MerkleTree(hashes).root
    without = {**doc_json, "preprocessing": None}
    assert ref.run_task(without, SHARD, raw, y)[0][1] != hashes[1]


def test_the_reference_catches_a_falsified_checkpoint(ref: ModuleType) -> None:
    """A worker that nudges one weight after segment 0 commits an h_1 the reference does not
    reproduce, and a replay from that h_1 leads elsewhere than its claimed h_2."""
    spec = make_spec("mlp", "adamw")
    x, y = data_for("mlp")
    sink = MemorySink()
    hashes = engine.train_task(spec, TaskKey(round=0, shard=SHARD), x, y, sink)
    doc = json.loads(document(spec).to_bytes())
    state = decode(sink.data(1))
    state.tensors["model/1.bias"] = state.tensors["model/1.bias"] + np.float32(1e-3)
    forged = encode(state)
    honest, _ = ref.run_task(doc, SHARD, x, y)
    assert honest[1] == hashes[1] != hashlib.sha256(forged).digest()
    _, _, h2 = ref.run_segment(doc, SHARD, x, y, forged)
    assert h2 != hashes[2]


def test_the_reference_refuses_inputs_that_are_not_this_task(ref: ModuleType) -> None:
    spec = make_spec("mlp", "sgd")
    x, y = data_for("mlp")
    doc0 = document(spec)
    sink = MemorySink()
    engine.train_task(spec, TaskKey(round=0, shard=0), x, y, sink)
    doc_json = json.loads(doc0.to_bytes())
    with pytest.raises(ref.Refused, match="not of this job and task"):
        ref.run_segment(doc_json, SHARD, x, y, sink.data(1))  # a checkpoint of shard 0, not 1
    doc1, plain = round_1(spec, doc0, sink.data(3))
    with pytest.raises(ref.Refused, match="pass --initial-model"):
        ref.run_task(json.loads(doc1.to_bytes()), SHARD, x, y)
    with pytest.raises(ref.Refused, match="does not hash to"):
        ref.run_task(json.loads(doc1.to_bytes()), SHARD, x, y, plain + b"\x00")
    with pytest.raises(ref.Refused, match="version 1"):
        ref.run_task({**doc_json, "version": 1}, SHARD, x, y)


def test_the_reference_program_checks_a_root_end_to_end(tmp_path: Path) -> None:
    """The program as an outsider runs it, in its own process: the job document, the shard's
    ciphertext (checked against the document, opened with the shard key) and the initial
    model in; exit 0 on the committed root, 1 on another root, 2 on a wrong key."""
    spec = make_spec("cnn", "adam-wd")
    x, y = data_for("cnn")
    nonce, job_key = b"\x05" * 16, bytes(range(32))
    binding = binding_for(spec, nonce)
    keys = [crypto.shard_key(job_key, binding, s) for s in range(spec.num_shards)]
    cts = [
        crypto.encrypt_bytes(
            encode_shard(Dataset(x, y)), keys[s], job_id=binding, shard_index=s, chunk_size=1000
        )
        for s in range(spec.num_shards)
    ]
    refs = [
        ShardRef(
            index=s, cid=f"bafyshard{s}", sha256=hashlib.sha256(ct).hexdigest(), size=len(ct), examples=13
        )
        for s, ct in enumerate(cts)
    ]
    doc0 = JobDocument.create(spec, refs, nonce)
    sink0 = MemorySink()
    engine.train_task(spec, TaskKey(round=0, shard=SHARD), x, y, sink0)
    doc1, plain = round_1(spec, doc0, sink0.data(3))
    hashes = engine.train_task(
        spec, TaskKey(round=1, shard=SHARD), x, y, MemorySink(), initial_model=model_state_of(plain)
    )
    (tmp_path / "doc.json").write_bytes(doc1.to_bytes())
    (tmp_path / "shard.bin").write_bytes(encode_shard(Dataset(x, y)))
    (tmp_path / "shard.ct").write_bytes(cts[SHARD])
    (tmp_path / "im.vtck").write_bytes(plain)
    root = MerkleTree(hashes).root_hex
    args = [
        sys.executable,
        str(REFERENCE),
        "task",
        "--doc",
        str(tmp_path / "doc.json"),
        "--index",
        str(SHARD),
        "--shard-ciphertext",
        str(tmp_path / "shard.ct"),
        "--shard-key",
        keys[SHARD].hex(),
        "--initial-model",
        str(tmp_path / "im.vtck"),
        "--json",
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of the package on the path
    good = subprocess.run(
        [*args, "--expect-root", root], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert good.returncode == 0, good.stderr
    out = json.loads(good.stdout)
    assert out["root"] == root and out["hashes"] == ["0x" + h.hex() for h in hashes] and out["match"]
    bad = subprocess.run(
        [*args, "--expect-root", "0x" + "00" * 32],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert bad.returncode == 1 and json.loads(bad.stdout)["match"] is False
    missing = subprocess.run(
        args[:-3] + ["--json"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert missing.returncode == 2 and "pass --initial-model" in missing.stderr
    wrong = [*args[:10], keys[1 - SHARD].hex(), *args[11:]]  # the other shard's key
    assert wrong[9] == "--shard-key"
    refused = subprocess.run(wrong, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and f"shard {SHARD} does not open with this key" in refused.stderr
    plain_shard = [*args[:7], "--shard", str(tmp_path / "shard.bin"), *args[11:], "--expect-root", root]
    assert (
        subprocess.run(
            plain_shard, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        ).returncode
        == 0
    )


def imports_of(source: str) -> list[tuple[str, int]]:
    """(top-level module, relative level) of every import statement in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append(((node.module or "").split(".")[0], node.level))
    return out


def test_the_reference_shares_no_code_with_the_package() -> None:
    found = imports_of(REFERENCE.read_text())
    assert ("torch", 0) in found and ("hashlib", 0) in found
    bad = [(m, lvl) for m, lvl in found if lvl or m not in ALLOWED_IMPORTS]
    assert bad == []
    assert not {"veritrain", "worker", "requester", "verifier"} & {m for m, _ in found}
    # the check itself bites: a package import or a relative import is caught
    assert imports_of("from veritrain.merkle import root\nfrom . import x") == [("veritrain", 0), ("", 1)]
    assert sorted(p.name for p in REFERENCE.parent.iterdir() if p.suffix == ".py") == ["verify_segment.py"]


def test_torch_dropout_with_p_zero_draws_nothing() -> None:
    """docs/spec §6.5 relies on it: the transformer applies dropout(p) even when p = 0."""
    torch.manual_seed(3)
    before = torch.get_rng_state()
    torch.nn.functional.dropout(torch.ones(4, 4), 0.0, training=True)
    assert torch.equal(before, torch.get_rng_state())

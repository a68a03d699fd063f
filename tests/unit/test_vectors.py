"""The code against the checked-in vectors of docs/spec (tests/vectors/*.json).

A format change that nobody meant shows up here: every vector file is regenerated from the
code and compared byte for byte, and each file's ciphertexts, proofs and encodings are also
opened or checked through the public API (and, where it has one, the reference verifier).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from veritrain import crypto, envelope, merkle
from veritrain.canon import jcs
from veritrain.checkpoint import decode
from veritrain.data import decode_shard
from veritrain.errors import DecryptionError
from veritrain.jobdoc import JobDocument
from veritrain.manifest import load as load_manifest
from veritrain.spec import TaskKey
from veritrain.training.runner import run_in_profile

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return _load("vector_generator", VECTORS / "generate.py")


@pytest.fixture(scope="module")
def ref() -> ModuleType:
    module = _load("reference_verifier", ROOT / "reference" / "verify_segment.py")
    module.load_torch()
    return module


def vec(name: str) -> Any:
    return json.loads((VECTORS / f"{name}.json").read_text())


def test_every_vector_file_is_what_the_code_produces(gen: ModuleType, tmp_path: Path) -> None:
    fast = [n for n in gen.FILES if n != "task"]  # task.json: test_the_whole_task_vector
    assert sorted(p.stem for p in VECTORS.glob("*.json")) == sorted(gen.FILES)
    differ = [n for n in fast if gen.render(gen.FILES[n]()) != (VECTORS / f"{n}.json").read_text()]
    assert differ == []
    # a changed vector is reported by --check, by file name
    stale = tmp_path / "jobspec.json"
    stale.write_text("{}\n")
    original = gen.HERE
    try:
        gen.HERE = tmp_path
        with pytest.raises(SystemExit) as exit_info:
            gen.app(["--check", "--only", "jobspec"], standalone_mode=True)
        assert exit_info.value.code == 1
    finally:
        gen.HERE = original


def test_canonical_json_matches_rfc8785_in_the_package_and_the_reference(
    gen: ModuleType, ref: ModuleType
) -> None:
    v = vec("canonical_json")
    for (bits, want), case in zip(gen.RFC8785_NUMBERS, v["numbers"], strict=True):
        x = struct.unpack(">d", bytes.fromhex(bits))[0]
        assert case == {"ieee754": bits, "text": want}
        assert jcs(x).decode() == ref.jcs(x).decode() == want
    for (text, want), case in zip(gen.RFC8785_DOCUMENTS, v["documents"], strict=True):
        assert case["canonical"] == want
        assert jcs(json.loads(text)).decode() == ref.jcs(json.loads(text)).decode() == want
    with pytest.raises(ValueError, match="RFC 8785"):
        jcs(2**53)
    with pytest.raises(ValueError, match="RFC 8785"):
        jcs(float("nan"))


def test_spec_digest_and_document_vectors(ref: ModuleType) -> None:
    v = vec("jobspec")
    assert hashlib.sha256(v["canonical"].encode()).hexdigest() == v["digest"]
    assert ref.jcs(v["spec"]).decode() == v["canonical"]
    d = vec("jobdoc")
    assert (
        hashlib.sha256(bytes.fromhex(d["spec_digest"]) + bytes.fromhex(d["nonce"])).hexdigest()
        == d["binding"]
    )
    for r in ("round0", "round1"):
        doc = JobDocument.from_bytes(d[r]["document"].encode())
        assert doc.binding == d["binding"] and doc.shards_root().hex() == d[r]["shards_root"]
        raw = json.loads(d[r]["document"])
        bound = {
            "initial_model": raw["initial_model"],
            "round": raw["round"],
            "shards": sorted(raw["shards"], key=lambda s: s["index"]),
        }
        assert hashlib.sha256(ref.jcs(bound)).hexdigest() == d[r]["shards_root"]


def test_seed_and_batch_order_vectors(ref: ModuleType) -> None:
    from veritrain.canon import derive_seed
    from veritrain.training.data_order import BatchOrder

    v = vec("seeds")
    for case in v["derive_seed"]:
        assert (
            derive_seed(case["seed"], *case["labels"])
            == ref.derive_seed(case["seed"], *case["labels"])
            == case["value"]
        )
    for case in v["batch_order"]:
        order = BatchOrder(case["seed"], case["round"], case["shard"], case["n"], case["batch_size"])
        assert [order.indices(s).tolist() for s in range(5)] == case["batches"]


def test_checkpoint_and_shard_vectors_decode_in_the_package_and_the_reference(ref: ModuleType) -> None:
    v = vec("checkpoint")
    data = bytes.fromhex(v["bytes"])
    assert hashlib.sha256(data).hexdigest() == v["h"]
    state = decode(data)
    meta, tensors = ref.decode_checkpoint(data)
    assert state.meta == meta == v["meta"]
    for name, t in v["tensors"].items():
        assert state.tensors[name].dtype.name == tensors[name].dtype.name == t["dtype"]
        assert state.tensors[name].tolist() == tensors[name].tolist() == t["values"]
        assert list(state.tensors[name].shape) == t["shape"]
    s = vec("shard")
    blob = bytes.fromhex(s["bytes"])
    ds = decode_shard(blob)
    x, y = ref.decode_shard(blob)
    assert (
        ds.features.tolist() == x.tolist() == s["features"]
        and ds.labels.tolist() == y.tolist() == s["labels"]
    )


def test_merkle_and_commitment_vectors(ref: ModuleType) -> None:
    from veritrain.chain.receipts import commitment

    for tree in vec("merkle")["trees"]:
        hashes = [bytes.fromhex(h) for h in tree["hashes"]]
        levels = ref.merkle_levels(hashes)
        assert merkle.root(hashes).hex() == levels[-1][0].hex() == tree["root"]
        for i, proof in enumerate(tree["proofs"]):
            assert [p.hex() for p in ref.merkle_proof(levels, i)] == proof
            assert merkle.verify(tree["root"], i, hashes[i], proof)
            if len(hashes) > 1:  # a proof for index i never passes for another index
                assert not merkle.verify(tree["root"], (i + 1) % len(hashes), hashes[i], proof)
    c = vec("commitment")
    assert (
        commitment(bytes.fromhex(c["root"]), c["worker"], bytes.fromhex(c["salt"])).hex() == c["commitment"]
    )


def test_aead_vectors_open_and_a_flipped_last_flag_does_not(ref: ModuleType) -> None:
    for case in vec("aead")["cases"]:
        key, ct = bytes.fromhex(case["key"]), bytes.fromhex(case["ciphertext"])
        plain = crypto.decrypt_bytes(ct, key, job_id=case["job_id"], shard_index=case["shard_index"])
        assert plain.hex() == case["plaintext"]
        listed = {"index": case["shard_index"], "sha256": hashlib.sha256(ct).hexdigest(), "size": len(ct)}
        assert (
            ref.open_shard({"binding": case["job_id"], "shards": [listed]}, case["shard_index"], ct, key)
            == plain
        )
        assert len(ct) == crypto.ciphertext_size(len(plain), case["chunk_size"])
        with pytest.raises(DecryptionError):
            crypto.decrypt_bytes(ct, key, job_id=case["job_id"], shard_index=case["shard_index"] + 1)
        if len(plain) > case["chunk_size"]:  # cut at a chunk boundary: the new last chunk says "not last"
            cut = crypto.HEADER_SIZE + case["chunk_size"] + crypto.TAG_SIZE
            with pytest.raises(DecryptionError):
                crypto.decrypt_bytes(ct[:cut], key, job_id=case["job_id"], shard_index=case["shard_index"])


def test_key_and_envelope_vectors() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    k = vec("keys")
    for case in k["shard_keys"]:
        info = f"veritrain/shard-key/v1/{k['binding']}/{case['index']}".encode()
        want = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"\0" * 32, info=info).derive(
            bytes.fromhex(k["job_key"])
        )
        assert (
            want.hex()
            == case["key"]
            == crypto.shard_key(bytes.fromhex(k["job_key"]), k["binding"], case["index"]).hex()
        )
    assert k["checkpoint_job_id"]["job_id"] == (
        f"{k['binding']}/task/{k['checkpoint_job_id']['task_id']}/"
        f"{k['checkpoint_job_id']['worker'].lower()}/checkpoint"
    )
    for case in vec("envelope")["cases"]:
        ctx = case["context"].encode()
        env = bytes.fromhex(case["envelope"])
        assert envelope.unwrap(env, case["recipient_private_key"], ctx).hex() == case["data_key"]
        assert envelope.address_of(case["recipient_public_key"]) == case["recipient_address"]
        with pytest.raises(DecryptionError):
            envelope.unwrap(env, case["recipient_private_key"], ctx + b"/other")


def test_manifest_and_profile_vectors() -> None:
    from veritrain.spec import ReplayProfile
    from veritrain.training.profile import profile_env

    text = vec("manifest")["manifest"]
    m = load_manifest(text)
    assert m.canonical_json().decode() == text and m.root == merkle.MerkleTree(m.hashes).root_hex
    assert m.losses is None and '"losses"' not in text  # absent, not null: older manifests keep their CID
    curve = load_manifest(vec("manifest")["manifest_with_losses"])
    assert curve.losses == [2.302585092994046, 0.5, 1e-7] and curve.root == m.root
    assert '"losses":[2.302585092994046,0.5,1e-7]' in curve.canonical_json().decode()
    p = vec("replay_profile")
    assert profile_env(ReplayProfile.model_validate(p["profile"]), base={}) == p["environment"]


def test_the_whole_task_vector_replays_in_the_engine_and_the_reference(tmp_path: Path) -> None:
    """Round 0 and round 1 of a tiny task, trained in a child process under the spec's own
    profile, give the checked-in checkpoint bytes; the reference program gives round 1's root."""
    t = vec("task")
    ds = decode_shard(bytes.fromhex(t["shard"]))
    for r in ("round0", "round1"):
        want = t[r]
        doc = JobDocument.from_bytes(want["document"].encode())
        assert [hashlib.sha256(bytes.fromhex(c)).hexdigest() for c in want["checkpoints"]] == want["hashes"]
        assert merkle.root(want["hashes"]).hex() == want["root"]
        for i, proof in enumerate(want["proofs"]):
            assert merkle.verify(want["root"], i, want["hashes"][i], proof)
        initial = bytes.fromhex(want["initial_model"]) if "initial_model" in want else None
        hashes = run_in_profile(
            doc.spec,
            "train",
            task=TaskKey(round=doc.round, shard=t["shard_index"]),
            features=ds.features,
            labels=ds.labels,
            directory=tmp_path / r,
            force_subprocess=True,
            initial_model=initial,
        )
        assert [h.hex() for h in hashes] == want["hashes"]
        got = [p.read_bytes().hex() for p in sorted((tmp_path / r).glob("ckpt-*.vtck"))]
        assert got == want["checkpoints"]
    r1 = t["round1"]
    (tmp_path / "doc.json").write_text(r1["document"])
    (tmp_path / "shard.bin").write_bytes(bytes.fromhex(t["shard"]))
    (tmp_path / "im.vtck").write_bytes(bytes.fromhex(r1["initial_model"]))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "reference" / "verify_segment.py"),
            "task",
            "--doc",
            str(tmp_path / "doc.json"),
            "--index",
            str(t["shard_index"]),
            "--shard",
            str(tmp_path / "shard.bin"),
            "--initial-model",
            str(tmp_path / "im.vtck"),
            "--expect-root",
            r1["root"],
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hashes"] == ["0x" + h for h in r1["hashes"]]
    assert np.array_equal(ds.labels, np.array([0, 2, 1, 1, 0]))


REFERENCE_ZOO_CHILD = """
import hashlib, importlib.util, json, struct, sys
spec = importlib.util.spec_from_file_location("ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
v = json.load(open(sys.argv[2]))
ref.enter_profile(v["profile"], strict=True)
torch = ref.torch
f32 = lambda h: struct.unpack(">f", bytes.fromhex(h))[0]
hexes = lambda t: [struct.pack(">f", x).hex() for x in t.detach().reshape(-1).tolist()]
out = {"models": [], "optimizers": []}
for case in v["models"]:
    torch.manual_seed(case["init_seed"])
    model, _ = ref.build_model(case["model"]["name"], case["model"]["args"], case["data"])
    out["models"].append([[n, list(p.shape), hashlib.sha256(p.numpy().astype("<f4").tobytes()).hexdigest()]
                          for n, p in model.params.items()])
for case in v["optimizers"]:
    p, state, steps = torch.tensor([f32(h) for h in case["initial"]]), {}, []
    for step in case["steps"]:
        p.grad = torch.tensor([f32(h) for h in step["grad"]])
        ref.optimizer_step(case["optimizer"], [p], state)
        steps.append({"param": hexes(p), "state": {k: hexes(t) for k, t in state.get(0, {}).items()}})
    out["optimizers"].append(steps)
print(json.dumps(out))
"""


def test_zoo_and_optimizer_vectors(gen: ModuleType) -> None:
    """Each model's parameter names, shapes, order and initial values, one forward pass and
    loss, and each optimizer's updates, recomputed under the vectors' profile (a child
    process; the initial values depend on the ATen CPU level, which the profile pins). The
    reference, in a child under the same profile, builds the same parameters and updates."""
    v = vec("zoo")
    assert gen.render(gen.zoo()) == (VECTORS / "zoo.json").read_text()
    env = {
        k: val for k, val in os.environ.items() if k not in ("PYTHONPATH", "ATEN_CPU_CAPABILITY", "MKL_CBWR")
    }
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            REFERENCE_ZOO_CHILD,
            str(ROOT / "reference" / "verify_segment.py"),
            str(VECTORS / "zoo.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr
    got = json.loads(child.stdout)
    assert got["models"] == [case["parameters"] for case in v["models"]]
    assert got["optimizers"] == [
        [{"param": s["param"], "state": s["state"]} for s in case["steps"]] for case in v["optimizers"]
    ]


def test_forced_error_vectors_in_the_package_and_the_reference(ref: ModuleType) -> None:
    """docs/spec/forced.md: the draws, the selections and the forced checkpoints, recomputed by
    veritrain.forced and by the reference (written from the page), byte for byte."""
    from veritrain import forced

    v = vec("forced")
    snap = bytes.fromhex(v["snap"])
    secrets = [bytes.fromhex(d["secret"]) for d in v["draws"]]
    for s, d in zip(secrets, v["draws"], strict=True):
        assert forced.seed_hash(s).hex() == d["seed_hash"] and f"{forced.draw(s, snap):064x}" == d["draw"]
    assert any(c["selected"] for c in v["selections"]) and not all(c["selected"] for c in v["selections"])
    for c in v["selections"]:
        at = bytes(32) if c["snap_zero"] else snap
        s, bps, r, n = secrets[c["secret"]], c["bps"], c["redundancy"], c["n"]
        got = forced.select(s, at, bps=bps, redundancy=r, checkpoints=n)
        assert (got.selected, got.segment) == (c["selected"], c["segment"])
        assert ref.forced_selection(s, at, bps, r, n) == c["segment"]
    start, end = bytes.fromhex(v["checkpoint_j"]), bytes.fromhex(v["checkpoint_next"])
    published: dict[tuple[int, float | None], str] = {}
    for f in v["forced"]:
        d = forced.draw(secrets[f["secret"]], snap)
        assert forced.perturb(start, end, d, f["bound"]).hex() == f["bytes"]
        assert ref.forced_checkpoint(start, end, d, f["bound"]).hex() == f["bytes"]
        assert decode(bytes.fromhex(f["bytes"])).meta == decode(end).meta
        published[f["secret"], f["bound"]] = f["bytes"]
    assert end.hex() not in published.values()
    assert all(published[i, None] != published[i, 0.01] for i in range(len(secrets)))  # 4 bounds > 1 ulp

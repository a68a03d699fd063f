"""Write the test vectors of docs/spec (tests/vectors/*.json) from the package's code.

    PYTHONPATH=. python tests/vectors/generate.py            # rewrite every file
    PYTHONPATH=. python tests/vectors/generate.py --check    # exit 1 naming each file that differs

Run it only after a deliberate format change (and bump that format's version): the suite
(tests/unit/test_vectors.py) fails whenever the code stops reproducing these files. Every
input is fixed here (keys, nonces, ephemeral keys), so the output is the same on every run;
``task.json`` comes from a real training run under its own replay profile (a subprocess).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

HERE = Path(__file__).resolve().parent
DEADLINES = {"key_window": 60, "submission_window": 60, "reveal_window": 60, "challenge_window": 60}

# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript text
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]
# RFC 8785 section 3.2.2 and 3.2.3
RFC8785_DOCUMENTS = [
    (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',  # noqa: E501
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    ),
    (
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", '
        '"1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", '
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}',
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'  # noqa: E501
        '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',  # noqa: E501
    ),
]


def h32(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def small_spec(**overrides: Any) -> Any:
    from veritrain.spec import load_spec

    raw = {
        "model": {"name": "mlp", "args": {"hidden": [3], "activation": "tanh", "dropout": 0.5}},
        "optimizer": {"name": "adam", "lr": 0.01, "weight_decay": 1e-4},
        "batch_size": 3,
        "seed": 20261130,
        "steps_per_task": 4,
        "checkpoint_interval": 2,
        "rounds": 2,
        "num_shards": 2,
        "replay": {"torch_version": "2.13.0", "threads": 1, "mkl_cbwr": "AVX2,STRICT", "cpu_isa": "default"},
        "data": {"input_shape": [4], "num_classes": 3},
        "deadlines": DEADLINES,
    }
    raw.update(overrides)
    return load_spec(raw)


def shard_refs(n: int) -> list[Any]:
    from veritrain.jobdoc import ShardRef

    return [
        ShardRef(index=i, cid=f"bafkshard{i}", sha256=h32(f"shard{i}").hex(), size=100 + i, examples=5)
        for i in range(n)
    ]


def canonical_json() -> dict[str, Any]:
    from veritrain.canon import jcs

    numbers = [
        {"ieee754": bits, "text": jcs(struct.unpack(">d", bytes.fromhex(bits))[0]).decode()}
        for bits, _ in RFC8785_NUMBERS
    ]
    documents = [
        {"input": text, "canonical": jcs(json.loads(text)).decode()} for text, _ in RFC8785_DOCUMENTS
    ]
    return {"section": "2", "numbers": numbers, "documents": documents}


def jobspec() -> dict[str, Any]:
    spec = small_spec()
    return {
        "section": "2",
        "spec": spec.model_dump(mode="json"),
        "canonical": spec.canonical_json(),
        "digest": spec.digest().hex(),
    }


def seeds() -> dict[str, Any]:
    from veritrain.canon import derive_seed
    from veritrain.training.data_order import BatchOrder

    derived = [
        {"seed": s, "labels": list(labels), "value": derive_seed(s, *labels)}
        for s, labels in [
            (1, ("order", 0, 0, 0)),
            (20261130, ("init", 0)),
            (20261130, ("init", 1)),
            (20261130, ("train", 1, 1)),
            (2**53 - 1, ("order", 3, 7, 2)),
            (0, ("shards",)),
        ]
    ]
    orders = []
    for seed, rnd, shard, n, b in [(20261130, 0, 1, 5, 3), (7, 2, 0, 10, 4)]:
        order = BatchOrder(seed, rnd, shard, n, b)
        orders.append(
            {
                "seed": seed,
                "round": rnd,
                "shard": shard,
                "n": n,
                "batch_size": b,
                "batches": [order.indices(s).tolist() for s in range(5)],
            }
        )
    return {"section": "4", "derive_seed": derived, "batch_order": orders}


def jobdoc() -> dict[str, Any]:
    from veritrain.jobdoc import InitialModelRef, JobDocument, ModelCopyRef, binding_for

    spec = small_spec()
    nonce = bytes(range(16))
    doc0 = JobDocument.create(spec, shard_refs(2), nonce)
    im = InitialModelRef(
        digest=h32("initial model").hex(),
        previous_job=41,
        copies=tuple(
            ModelCopyRef(shard=s, cid=f"bafkmodel{s}", sha256=h32(f"copy{s}").hex(), size=200 + s)
            for s in range(2)
        ),
    )
    doc1 = doc0.next_round(im)
    return {
        "section": "3",
        "spec_digest": spec.digest().hex(),
        "nonce": nonce.hex(),
        "binding": binding_for(spec, nonce),
        "round0": {"document": doc0.canonical_json(), "shards_root": doc0.shards_root().hex()},
        "round1": {"document": doc1.canonical_json(), "shards_root": doc1.shards_root().hex()},
    }


def checkpoint() -> dict[str, Any]:
    from veritrain.checkpoint import CheckpointState, encode_and_hash

    tensors = {
        "model/b": np.array([1.5, -2.25], dtype=np.float32),
        "model/a": np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(7),
        "optim/0000/step": np.array(3.0, dtype=np.float32),
        "mask": np.array([True, False, True]),
        "rng/torch": np.arange(10, dtype=np.uint8),
        "counts": np.array([[1, -2]], dtype=np.int64),
        "empty": np.zeros((0, 2), dtype=np.float64),
    }
    meta = {
        "format": "example",
        "task": {"shard": 1, "round": 0},
        "step": 4,
        "note": "\u00e9t\u00e9",
        "x": 0.5,
    }
    data, h = encode_and_hash(CheckpointState(meta=meta, tensors=tensors))
    return {
        "section": "7.1",
        "meta": meta,
        "tensors": {
            k: {"dtype": v.dtype.name, "shape": list(v.shape), "values": v.tolist()}
            for k, v in tensors.items()
        },
        "bytes": data.hex(),
        "h": h.hex(),
    }


def merkle() -> dict[str, Any]:
    from veritrain.merkle import MerkleTree

    trees = []
    for n in range(1, 8):
        hashes = [h32(f"h{i}") for i in range(n)]
        tree = MerkleTree(hashes)
        trees.append(
            {
                "hashes": [h.hex() for h in hashes],
                "leaves": [x.hex() for x in tree.levels[0]],
                "root": tree.root.hex(),
                "proofs": [[p.hex() for p in pr] for pr in tree.proofs()],
            }
        )
    return {"section": "9", "trees": trees}


def commitment() -> dict[str, Any]:
    from veritrain.chain.receipts import commitment as commit

    root, salt, worker = h32("root"), h32("salt"), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    return {
        "section": "10",
        "root": root.hex(),
        "worker": worker,
        "salt": salt.hex(),
        "commitment": commit(root, worker, salt).hex(),
    }


def aead() -> dict[str, Any]:
    from veritrain import crypto

    key = h32("job key")
    cases = []
    for i, (n, chunk, job_id, index) in enumerate(
        [
            (0, 16, "job-a", 0),
            (5, 16, "job-a", 3),
            (32, 16, "b" * 64, 1),
            (40, 16, "b" * 64 + "/task/4294967297/0xab/checkpoint", 2),
        ]
    ):
        plain = bytes((7 * j + i) % 256 for j in range(n))
        prefix = h32(f"prefix{i}")[:8]
        out = io.BytesIO()
        crypto._encrypt_stream(
            io.BytesIO(plain), out, key, prefix, job_id=job_id, shard_index=index, chunk_size=chunk
        )
        cases.append(
            {
                "key": key.hex(),
                "job_id": job_id,
                "shard_index": index,
                "chunk_size": chunk,
                "nonce_prefix": prefix.hex(),
                "plaintext": plain.hex(),
                "ciphertext": out.getvalue().hex(),
            }
        )
    return {"section": "11", "cases": cases}


def keys() -> dict[str, Any]:
    from veritrain import crypto
    from veritrain.jobdoc import (
        checkpoint_binding,
        initial_model_binding,
        referee_key_context,
        verifier_key_context,
        worker_key_context,
    )

    job_key, binding = h32("job key"), h32("binding").hex()
    doc = type("Doc", (), {"binding": binding})()
    market, worker = (
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    )
    return {
        "section": "14",
        "job_key": job_key.hex(),
        "binding": binding,
        "shard_keys": [{"index": s, "key": crypto.shard_key(job_key, binding, s).hex()} for s in (0, 1, 7)],
        "checkpoint_job_id": {
            "task_id": (3 << 32) | 1,
            "worker": worker,
            "job_id": checkpoint_binding(doc, (3 << 32) | 1, worker),
        },  # type: ignore[arg-type]
        "initial_model_job_id": {"round": 2, "job_id": initial_model_binding(binding, 2)},
        "contexts": {
            "chain_id": 31337,
            "market": market,
            "worker": worker_key_context(31337, market, (3 << 32) | 1, worker).decode(),
            "referee": referee_key_context(31337, market, 5, worker).decode(),
            "verifier": verifier_key_context(31337, market, 3, worker).decode(),
        },
    }


def envelope() -> dict[str, Any]:
    from coincurve import PrivateKey

    from veritrain import envelope as env

    recipient = h32("recipient")
    pub = env.public_key_from_private(recipient)
    cases = []
    for i, context in enumerate([b"", b"veritrain/key/v1/31337/0xmarket/task/1/0xworker"]):
        eph, nonce, data_key = h32(f"ephemeral{i}"), h32(f"nonce{i}")[:12], h32(f"data key{i}")
        cases.append(
            {
                "recipient_private_key": recipient.hex(),
                "recipient_public_key": pub.hex(),
                "recipient_address": env.address_of(pub),
                "ephemeral_private_key": eph.hex(),
                "nonce": nonce.hex(),
                "context": context.decode(),
                "data_key": data_key.hex(),
                "envelope": env._wrap(data_key, pub, context, PrivateKey(eph), nonce).hex(),
            }
        )
    return {"section": "16", "cases": cases}


def shard() -> dict[str, Any]:
    from veritrain.data import Dataset, encode_shard

    x = (np.arange(12, dtype=np.float32).reshape(3, 2, 2) - np.float32(5.5)) / np.float32(4)
    y = np.array([2, 0, 1], dtype=np.int64)
    return {
        "section": "12",
        "features": x.tolist(),
        "labels": y.tolist(),
        "bytes": encode_shard(Dataset(x, y)).hex(),
    }


def manifest() -> dict[str, Any]:
    from veritrain.manifest import Manifest
    from veritrain.storage.cid import cid_of_bytes

    hashes = [h32(f"h{i}") for i in range(3)]
    m = Manifest.build(
        spec_cid=cid_of_bytes(b"job document"),
        job_id=3,
        task_id=(3 << 32) | 1,
        worker="0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        k=2,
        hashes=hashes,
        checkpoint_cids=[cid_of_bytes(f"checkpoint {i}".encode()) for i in range(3)],
    )
    # the optional loss curve: JCS writes each double as ECMAScript prints it
    with_losses = Manifest.build(
        spec_cid=m.spec_cid, job_id=m.job_id, task_id=m.task_id, worker=m.worker, k=m.k, hashes=hashes,
        checkpoint_cids=m.checkpoint_cids, losses=[2.302585092994046, 0.5, 1e-7],
    )
    return {"section": "13", "manifest": m.canonical_json().decode(),
            "manifest_with_losses": with_losses.canonical_json().decode()}


def replay_profile() -> dict[str, Any]:
    from veritrain.spec import ReplayProfile
    from veritrain.training.profile import profile_env

    p = ReplayProfile(torch_version="2.13.0", threads=2, mkl_cbwr="AVX2,STRICT", cpu_isa="avx2")
    return {"section": "15", "profile": p.model_dump(mode="json"), "environment": profile_env(p, base={})}


def task() -> dict[str, Any]:
    """A whole tiny task, round 0 and round 1, trained under the spec's own profile."""
    import tempfile

    from veritrain.checkpoint import decode
    from veritrain.data import Dataset, encode_shard
    from veritrain.jobdoc import InitialModelRef, JobDocument, ModelCopyRef, encode_initial_model
    from veritrain.merkle import MerkleTree
    from veritrain.spec import TaskKey
    from veritrain.training.runner import run_in_profile

    spec = small_spec()
    x = ((np.arange(20, dtype=np.float32).reshape(5, 4) * np.float32(0.37)) % np.float32(1.3)) - np.float32(
        0.6
    )
    y = np.array([0, 2, 1, 1, 0], dtype=np.int64)
    doc0 = JobDocument.create(spec, shard_refs(2), bytes(range(16)))
    out: dict[str, Any] = {"section": "17", "shard_index": 1, "shard": encode_shard(Dataset(x, y)).hex()}

    def run(doc: JobDocument, initial: bytes | None) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            hashes = run_in_profile(
                spec,
                "train",
                task=TaskKey(round=doc.round, shard=1),
                features=x,
                labels=y,
                directory=Path(tmp),
                force_subprocess=True,
                initial_model=initial,
            )
            blobs = [p.read_bytes() for p in sorted(Path(tmp).glob("ckpt-*.vtck"))]
        tree = MerkleTree(hashes)
        return {
            "document": doc.canonical_json(),
            "checkpoints": [b.hex() for b in blobs],
            "hashes": [h.hex() for h in hashes],
            "root": tree.root.hex(),
            "proofs": [[p.hex() for p in pr] for pr in tree.proofs()],
        }

    out["round0"] = run(doc0, None)
    final = decode(bytes.fromhex(out["round0"]["checkpoints"][-1]))
    tensors = {
        k: (v * np.float32(0.5)).astype(np.float32)
        for k, v in final.tensors.items()
        if k.startswith("model/")
    }
    plain = encode_initial_model(spec, doc0.binding, 1, tensors)
    im = InitialModelRef(
        digest=hashlib.sha256(plain).hexdigest(),
        previous_job=1,
        copies=tuple(
            ModelCopyRef(shard=s, cid=f"bafkmodel{s}", sha256=h32(f"copy{s}").hex(), size=1) for s in range(2)
        ),
    )
    out["round1"] = run(doc0.next_round(im), plain)
    out["round1"]["initial_model"] = plain.hex()
    return out


ZOO_MODELS = [
    (
        "mlp",
        {"hidden": [5, 4], "activation": "gelu", "dropout": 0.5},
        {"input_shape": [2, 3], "num_classes": 3},
    ),
    (
        "cnn",
        {"channels": [2, 3], "kernel_size": 3, "hidden": 4},
        {"input_shape": [1, 8, 8], "num_classes": 3},
    ),
    (
        "char_lm",
        {"d_model": 8, "n_heads": 2, "n_layers": 2, "d_ff": 12, "dropout": 0.25},
        {"input_shape": [4], "num_classes": 5, "input_dtype": "int64", "targets": "sequence"},
    ),
]
OPTIMIZERS = [
    {"name": "sgd", "lr": 0.1},
    {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"name": "adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.01},
    {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
]


def f32_hex(t: Any) -> list[str]:
    """float32 values as their IEEE 754 bit patterns (big-endian hex), so nothing is rounded."""
    return [struct.pack(">f", v).hex() for v in np.asarray(t, dtype=np.float32).reshape(-1).tolist()]


def _zoo_in_this_process() -> dict[str, Any]:
    """Run in a child under the vectors' profile (see :func:`zoo`)."""
    import torch
    import torch.nn.functional as F

    from veritrain.canon import derive_seed
    from veritrain.spec import TaskKey
    from veritrain.training import state
    from veritrain.training.profile import enter

    models = []
    for name, args, data in ZOO_MODELS:
        spec = small_spec(model={"name": name, "args": args}, data=data)
        enter(spec.replay)
        live = state.initial(spec, TaskKey(round=0, shard=0))
        params = [
            [n, list(p.shape), hashlib.sha256(p.detach().numpy().astype("<f4").tobytes()).hexdigest()]
            for n, p in live.model.named_parameters()
        ]
        shape = (2, *data["input_shape"])
        torch.manual_seed(derive_seed(spec.seed, "train", 0, 0))
        if data.get("input_dtype") == "int64":
            x = torch.arange(8).reshape(shape) % data["num_classes"]
            y = (x + 1) % data["num_classes"]
        else:
            x = torch.linspace(-1, 1, int(np.prod(shape))).reshape(shape)
            y = torch.tensor([1, 2])
        live.model.train()
        logits = live.model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        models.append(
            {
                "model": {"name": name, "args": args},
                "data": data,
                "init_seed": derive_seed(spec.seed, "init", 0),
                "parameters": params,
                "input": x.tolist(),
                "targets": y.tolist(),
                "logits": f32_hex(logits.detach()),
                "loss": f32_hex(loss.detach())[0],
            }
        )
    optimizers = []
    for opt in OPTIMIZERS:
        spec = small_spec(optimizer=opt)
        holder = torch.nn.Module()
        holder.p = torch.nn.Parameter(torch.tensor([0.5, -1.25, 2.0, 0.0]))
        p, o = holder.p, state.build_optimizer(spec, holder)  # the engine's optimizer for this spec
        grads = [[0.1, -0.2, 0.3, 0.0], [-0.05, 0.4, 0.0, 1e-3], [0.2, 0.2, -0.1, 0.5]]
        steps = []
        for g in grads:
            p.grad = torch.tensor(g)
            o.step()
            slots = {k: f32_hex(v) for k, v in o.state[p].items()}
            steps.append({"grad": f32_hex(g), "param": f32_hex(p.detach()), "state": slots})
        optimizers.append(
            {
                "optimizer": spec.optimizer.model_dump(mode="json"),
                "initial": f32_hex([0.5, -1.25, 2.0, 0.0]),
                "steps": steps,
            }
        )
    return {
        "section": "5, 6, 8",
        "profile": small_spec().replay.model_dump(mode="json"),
        "models": models,
        "optimizers": optimizers,
    }


def zoo() -> dict[str, Any]:
    """Each zoo model's parameters (order, names, shapes, sha256 of the initial values), one
    forward pass and loss, and each optimizer's updates, computed under the vectors' replay
    profile in a child process (the kernels' rounding depends on it)."""
    import subprocess

    from veritrain.training.profile import profile_env

    env = profile_env(small_spec().replay)
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--emit-zoo"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def forced() -> dict[str, Any]:
    """docs/spec/forced.md: draws, selections and forced checkpoints (exact and tolerance)."""
    from veritrain import forced as fe
    from veritrain.checkpoint import CheckpointState, encode

    snap = h32("snap")
    secrets = [h32(f"secret{i}") for i in range(4)]
    draws = [{"secret": s.hex(), "seed_hash": fe.seed_hash(s).hex(), "draw": f"{fe.draw(s, snap):064x}"}
             for s in secrets]
    cases = []
    for i, s in enumerate(secrets):
        for bps, redundancy, n, zero in ((5000, 1, 5, False), (10000, 1, 5, False), (10000, 2, 5, False),
                                         (10000, 1, 1, False), (10000, 1, 5, True), (0, 1, 5, False)):
            sel = fe.select(s, bytes(32) if zero else snap, bps=bps, redundancy=redundancy, checkpoints=n)
            cases.append({"secret": i, "snap_zero": zero, "bps": bps, "redundancy": redundancy, "n": n,
                          "selected": sel.selected, "segment": sel.segment})
    meta = {"format": "example", "step": 8}
    start_t = {
        "model/a": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2) / np.float32(7),
        "model/b": np.array([1.5, -2.25], dtype=np.float32),
        "optim/0000/momentum_buffer": np.full((2, 3), 0.25, dtype=np.float32),
        "rng/torch": np.arange(8, dtype=np.uint8),
    }
    end_t = {**start_t, "model/a": start_t["model/a"] * np.float32(0.75), "model/b": start_t["model/b"] + 0.5}
    start, end = encode(CheckpointState(meta, start_t)), encode(CheckpointState(meta, end_t))
    forced_ckpts = [
        {"secret": i, "bound": bound, "bytes": fe.perturb(start, end, fe.draw(secrets[i], snap), bound).hex()}
        for i in range(len(secrets)) for bound in (None, 0.01)
    ]
    return {"section": "forced.md", "snap": snap.hex(), "draws": draws, "selections": cases,
            "checkpoint_j": start.hex(), "checkpoint_next": end.hex(), "forced": forced_ckpts}


FILES: dict[str, Callable[[], dict[str, Any]]] = {
    "canonical_json": canonical_json,
    "jobspec": jobspec,
    "seeds": seeds,
    "jobdoc": jobdoc,
    "checkpoint": checkpoint,
    "merkle": merkle,
    "commitment": commitment,
    "aead": aead,
    "keys": keys,
    "envelope": envelope,
    "shard": shard,
    "manifest": manifest,
    "replay_profile": replay_profile,
    "zoo": zoo,
    "task": task,
    "forced": forced,
}


def render(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


app = typer.Typer(add_completion=False, help=__doc__.split("\n")[0])


@app.command()
def main(
    check: Annotated[bool, typer.Option("--check", help="compare, write nothing")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="these files only")] = None,
    emit_zoo: Annotated[bool, typer.Option("--emit-zoo", hidden=True)] = False,
) -> None:
    if emit_zoo:  # the child of zoo(): print, write nothing
        typer.echo(json.dumps(_zoo_in_this_process()))
        return
    names = only or list(FILES)
    unknown = sorted(set(names) - set(FILES))
    if unknown:
        typer.echo(f"error: unknown vector file(s) {', '.join(unknown)}; known: {', '.join(FILES)}", err=True)
        raise typer.Exit(2)
    differ = []
    for name in names:
        path, text = HERE / f"{name}.json", render(FILES[name]())
        if check:
            if not path.exists() or path.read_text() != text:
                differ.append(path.name)
        else:
            path.write_text(text)
            typer.echo(f"wrote {path}")
    if differ:
        typer.echo(f"differ from the code: {', '.join(differ)}", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    sys.exit(app())

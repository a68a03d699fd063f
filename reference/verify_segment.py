#!/usr/bin/env python3
"""An independent reference verifier for Veritrain, written from docs/spec/README.md alone.

It recomputes a task's checkpoints h_0..h_n and their Merkle root (``task``), or one segment's
h_{j+1} from checkpoint j (``segment``), from the public job document, the task's plaintext
shard and, for a round r > 0, the round's initial model. It imports nothing from the
Veritrain repository: only the Python standard library, PyTorch, numpy, a keccak-256
(safe-pysha3's ``sha3.keccak_256`` or pycryptodome) and ``cryptography`` to open a shard.
Section numbers (``§4``) refer to the spec.

    python reference/verify_segment.py task    --doc DOC.json --shard SHARD.bin --index S \\
        [--initial-model IM.vtck] [--expect-root 0x..] [--json]
    python reference/verify_segment.py segment --doc DOC.json --shard SHARD.bin --index S \\
        --checkpoint CKPT_j.vtck [--expect 0x..] [--json]

``--shard-ciphertext CT --shard-key HEX`` may replace ``--shard`` (the ciphertext is checked
against the document and opened as §11 says), and so may ``--features X.npy --labels Y.npy``
(a sequence task's labels do not fit the shard format of §12). The exit status is 0 when
every ``--expect``/``--expect-root`` matches, 1 when one does not, 2 on bad input (one line
on stderr).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys
from typing import Any

torch: Any = None  # imported by load_torch() once the replay profile's environment is set (§15)
F: Any = None

try:  # a keccak-256 (§9): safe-pysha3, else pycryptodome
    from sha3 import keccak_256 as _keccak_new

    def keccak256(data: bytes) -> bytes:
        return _keccak_new(data).digest()
except ImportError:  # pragma: no cover - depends on what is installed
    from Crypto.Hash import keccak as _keccak

    def keccak256(data: bytes) -> bytes:
        return _keccak.new(digest_bits=256, data=data).digest()


class Refused(Exception):
    """Bad input: the program says why in one line and exits 2."""


# ---- §2 RFC 8785 canonical JSON -------------------------------------------------------------
def _number(x: Any) -> str:
    if isinstance(x, int):
        if abs(x) > 2**53 - 1:
            raise Refused(f"integer {x} has no RFC 8785 form (beyond 2**53 - 1)")
        return str(x)
    if not math.isfinite(x):
        raise Refused("NaN and infinities have no RFC 8785 form")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")  # shortest round-trip digits
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0")
    k, n = len(digits), point  # value = 0.d1..dk * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    return (
        sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    )


def jcs(value: Any) -> bytes:
    """RFC 8785: UTF-8, keys sorted by UTF-16 code units, no whitespace, ECMAScript numbers."""

    def enc(v: Any) -> str:
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, int | float):
            return _number(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list | tuple):
            return "[" + ",".join(enc(e) for e in v) + "]"
        if isinstance(v, dict):
            keys = sorted(v, key=lambda s: s.encode("utf-16-be"))
            return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + enc(v[k]) for k in keys) + "}"
        raise Refused(f"{type(v).__name__} is not JSON")

    return enc(value).encode("utf-8")


# ---- §4 seeds ---------------------------------------------------------------------------------
def derive_seed(seed: int, *labels: int | str) -> int:
    return int.from_bytes(hashlib.sha256(jcs([seed, *labels])).digest()[:8], "big") & (2**63 - 1)


# ---- §7 checkpoint encoding ------------------------------------------------------------------
DTYPES = {
    "bool": "|b1",
    "uint8": "|u1",
    "int8": "|i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "float16": "<f2",
    "float32": "<f4",
    "float64": "<f8",
}


def encode_checkpoint(meta: dict[str, Any], tensors: dict[str, Any]) -> bytes:
    import numpy as np

    names = sorted(tensors)
    arrays = [np.asarray(tensors[n]).copy(order="C") for n in names]  # (ascontiguousarray makes 0-d 1-d)
    table = [[n, a.dtype.name, list(a.shape), a.nbytes] for n, a in zip(names, arrays, strict=True)]
    header = jcs({"meta": meta, "tensors": table})
    body = b"".join(a.astype(DTYPES[a.dtype.name]).tobytes() for a in arrays)
    return b"VTCK" + struct.pack("<HQ", 1, len(header)) + header + body


def decode_checkpoint(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    import numpy as np

    if len(data) < 14 or data[:4] != b"VTCK":
        raise Refused("not a Veritrain checkpoint (bad magic)")
    version, hlen = struct.unpack_from("<HQ", data, 4)
    if version != 1:
        raise Refused(f"checkpoint container version {version}; this reference reads 1")
    header_bytes = data[14 : 14 + hlen]
    header = json.loads(header_bytes)
    if jcs(header) != header_bytes or set(header) != {"meta", "tensors"}:
        raise Refused("checkpoint header is not canonical")
    off, tensors = 14 + hlen, {}
    for name, dtype, shape, nbytes in header["tensors"]:
        tensors[name] = np.frombuffer(data[off : off + nbytes], dtype=DTYPES[dtype]).reshape(shape).copy()
        off += nbytes
    if off != len(data) or encode_checkpoint(header["meta"], tensors) != data:
        raise Refused("checkpoint is not canonical")
    return header["meta"], tensors


# ---- §9 Merkle tree --------------------------------------------------------------------------
def merkle_levels(hashes: list[bytes]) -> list[list[bytes]]:
    level = [keccak256(i.to_bytes(32, "big") + h) for i, h in enumerate(hashes)]
    levels = [level]
    while len(level) > 1:
        nxt = [keccak256(min(a, b) + max(a, b)) for a, b in zip(level[0::2], level[1::2], strict=False)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    out = []
    for level in levels[:-1]:
        if index ^ 1 < len(level):
            out.append(level[index ^ 1])
        index >>= 1
    return out



# ---- forced.md: forced errors ------------------------------------------------------------------
def forced_selection(secret: bytes, snap: bytes, bps: int, redundancy: int, n: int) -> int | None:
    """forced.md §1-2: j* when the claim is selected, else None."""
    draw = int.from_bytes(keccak256(secret + snap), "big")
    if snap == bytes(32) or redundancy != 1 or n < 2 or draw % 10000 >= bps:
        return None
    return (draw >> 128) % (n - 1)


def forced_checkpoint(ckpt_j: bytes, ckpt_next: bytes, draw: int, bound: float | None) -> bytes:
    """forced.md §3: checkpoint j*+1 as a selected worker publishes it."""
    import numpy as np

    _, before = decode_checkpoint(ckpt_j)
    meta, after = decode_checkpoint(ckpt_next)
    names = [n for n in sorted(after, key=lambda n: n.encode())
             if n.startswith("model/") and after[n].dtype.kind == "f"]
    spots = [(n, k) for n in names for k in range(after[n].size)]  # W, element by element
    name, k = spots[((draw >> 64) % 2**64) % len(spots)]
    u = math.sqrt(math.fsum(float(d) * float(d) for n in names for d in
                            (after[n].astype(np.float64).ravel() - before[n].astype(np.float64).ravel())))
    flat = after[name].ravel().copy()
    t = flat.dtype.type
    w = flat[k]
    if not math.isfinite(float(w)):
        raise Refused(f"{name}[{k}] is not finite: no forced checkpoint exists")
    moved = t(float(w) + 4 * (bound or 0.0) * u)
    if moved == w:
        moved = np.nextafter(w, t(math.inf))
    if not math.isfinite(float(moved)):
        moved = np.nextafter(w, t(-math.inf))
    flat[k] = moved
    return encode_checkpoint(meta, {**after, name: flat.reshape(after[name].shape)})

# ---- §11, §14 opening a shard's ciphertext ---------------------------------------------------
def open_shard(doc: dict[str, Any], index: int, ciphertext: bytes, shard_key: bytes) -> bytes:
    """The plaintext of shard ``index`` from its ciphertext (as fetched by its CID) and its key."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    refs = [r for r in doc["shards"] if r["index"] == index]
    if len(refs) != 1:
        raise Refused(f"the job document lists no shard {index}")
    if hashlib.sha256(ciphertext).hexdigest() != refs[0]["sha256"] or len(ciphertext) != refs[0]["size"]:
        raise Refused(f"the ciphertext is not shard {index}'s (sha256 or size differ from the document)")
    if len(shard_key) != 32 or len(ciphertext) < 19 or ciphertext[:7] != b"VTAEAD\x01":
        raise Refused("need a 32-byte key and VTAEAD version 1 ciphertext")
    header, (chunk_size,) = ciphertext[:19], struct.unpack_from(">I", ciphertext, 7)
    body, job = ciphertext[19:], doc["binding"].encode()
    pieces = [body[i : i + chunk_size + 16] for i in range(0, len(body), chunk_size + 16)] or [b""]
    aead, out = AESGCM(shard_key), []
    for c, piece in enumerate(pieces):
        last = c == len(pieces) - 1
        ad = (
            b"veritrain/aead-chunk/v1"
            + header
            + struct.pack(">H", len(job))
            + job
            + struct.pack(">QQB", index, c, 1 if last else 0)
        )
        try:
            out.append(aead.decrypt(header[11:19] + struct.pack(">I", c), piece, ad))
        except InvalidTag:
            raise Refused(f"shard {index} does not open with this key (chunk {c})") from None
    return b"".join(out)


# ---- §12 shard format ------------------------------------------------------------------------
def decode_shard(blob: bytes) -> tuple[Any, Any]:
    import numpy as np

    if len(blob) < 17 or blob[:7] != b"VTSHARD":
        raise Refused("not a Veritrain shard (bad magic)")
    version, n, ndim = struct.unpack_from("<BQB", blob, 7)
    if version != 1:
        raise Refused(f"shard format version {version}; this reference reads 1")
    dims = struct.unpack_from(f"<{ndim}I", blob, 17)
    off = 17 + 4 * ndim
    per = math.prod(dims)
    if len(blob) != off + 4 * n * per + 8 * n:
        raise Refused("shard length does not match its header")
    x = np.frombuffer(blob, dtype="<f4", count=n * per, offset=off).reshape((n, *dims)).copy()
    y = np.frombuffer(blob, dtype="<i8", count=n, offset=off + 4 * n * per).copy()
    return x, y


# ---- §6 models -------------------------------------------------------------------------------
MODEL_DEFAULTS = {
    "mlp": {"hidden": [128], "activation": "relu", "dropout": 0.0},
    "cnn": {"channels": [16, 32], "kernel_size": 3, "hidden": 64},
    "char_lm": {"d_model": 64, "n_heads": 4, "n_layers": 2, "d_ff": 128, "dropout": 0.0},
}


class Model:
    """Parameters in parameter order (§6.1) and a forward function."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}  # insertion order = parameter order

    def _linear(self, name: str, fan_in: int, fan_out: int) -> None:
        # §6.2: weight ~ U(-b, b), b = sqrt(3) * gain / sqrt(fan_in); bias ~ U(+-1/sqrt(fan_in))
        self._uniform_pair(name, (fan_out, fan_in), fan_in)

    def _uniform_pair(self, name: str, wshape: tuple[int, ...], fan_in: int) -> None:
        gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
        bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
        self.params[f"{name}.weight"] = torch.empty(wshape).uniform_(-bound, bound)
        bbound = 1 / math.sqrt(fan_in)
        self.params[f"{name}.bias"] = torch.empty(wshape[0]).uniform_(-bbound, bbound)

    def _layer_norm(self, name: str, d: int) -> None:
        self.params[f"{name}.weight"] = torch.ones(d)
        self.params[f"{name}.bias"] = torch.zeros(d)

    def _embedding(self, name: str, n: int, d: int) -> None:
        self.params[f"{name}.weight"] = torch.empty(n, d).normal_(0.0, 1.0)


def build_model(name: str, args: dict[str, Any], data: dict[str, Any]) -> tuple[Model, Any]:
    if name not in MODEL_DEFAULTS:
        raise Refused(f"model {name!r} is not in the spec's zoo (§6)")
    a = {**MODEL_DEFAULTS[name], **args}
    m = Model()
    shape, classes = list(data["input_shape"]), data["num_classes"]
    if name == "mlp":
        layers, pos, width = [], 1, math.prod(shape)
        act = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu}[a["activation"]]
        for h in a["hidden"]:
            m._linear(str(pos), width, h)
            layers.append(str(pos))
            pos, width = pos + (3 if a["dropout"] else 2), h
        m._linear(str(pos), width, classes)

        def forward(x: Any) -> Any:
            x = x.flatten(1)
            for p in layers:
                x = act(F.linear(x, m.params[f"{p}.weight"], m.params[f"{p}.bias"]))
                if a["dropout"]:
                    x = F.dropout(x, a["dropout"], training=True)
            return F.linear(x, m.params[f"{pos}.weight"], m.params[f"{pos}.bias"])

        return m, forward
    if name == "cnn":
        c, h, w = shape
        ks, convs, pos = a["kernel_size"], [], 0
        for out in a["channels"]:
            m._uniform_pair(str(pos), (out, c, ks, ks), c * ks * ks)
            convs.append(str(pos))
            c, h, w, pos = out, h // 2, w // 2, pos + 3
        fc1, fc2 = str(pos + 1), str(pos + 3)
        m._linear(fc1, c * h * w, a["hidden"])
        m._linear(fc2, a["hidden"], classes)

        def forward(x: Any) -> Any:
            for p in convs:
                x = F.conv2d(x, m.params[f"{p}.weight"], m.params[f"{p}.bias"], padding=ks // 2)
                x = F.max_pool2d(F.relu(x), 2)
            x = F.relu(F.linear(x.flatten(1), m.params[f"{fc1}.weight"], m.params[f"{fc1}.bias"]))
            return F.linear(x, m.params[f"{fc2}.weight"], m.params[f"{fc2}.bias"])

        return m, forward
    # char_lm (§6.5)
    d, nh, dff, drop, ctx = a["d_model"], a["n_heads"], a["d_ff"], a["dropout"], shape[0]
    m._embedding("tok", classes, d)
    m._embedding("pos", ctx, d)
    for i in range(a["n_layers"]):
        b = f"blocks.{i}"
        m._layer_norm(f"{b}.ln1", d)
        m._linear(f"{b}.qkv", d, 3 * d)
        m._linear(f"{b}.proj", d, d)
        m._layer_norm(f"{b}.ln2", d)
        m._linear(f"{b}.ff.0", d, dff)
        m._linear(f"{b}.ff.2", dff, d)
    m._layer_norm("ln", d)
    m._linear("head", d, classes)
    mask = torch.triu(torch.ones(ctx, ctx, dtype=torch.bool), 1)
    P = m.params

    def lin(x: Any, n: str) -> Any:
        return F.linear(x, P[f"{n}.weight"], P[f"{n}.bias"])

    def ln(x: Any, n: str) -> Any:
        return F.layer_norm(x, (d,), P[f"{n}.weight"], P[f"{n}.bias"], 1e-5)

    def forward(tokens: Any) -> Any:
        t = tokens.shape[1]
        x = F.embedding(tokens, P["tok.weight"]) + F.embedding(torch.arange(t), P["pos.weight"])
        for i in range(a["n_layers"]):
            b = f"blocks.{i}"
            bsz = x.shape[0]
            q, k, v = lin(ln(x, f"{b}.ln1"), f"{b}.qkv").split(d, dim=2)
            q, k, v = (z.view(bsz, t, nh, d // nh).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
            att = F.dropout(att.masked_fill(mask[:t, :t], float("-inf")).softmax(dim=-1), drop, training=True)
            y = (att @ v).transpose(1, 2).reshape(bsz, t, d)
            x = x + F.dropout(lin(y, f"{b}.proj"), drop, training=True)
            ff = lin(F.gelu(lin(ln(x, f"{b}.ln2"), f"{b}.ff.0")), f"{b}.ff.2")
            x = x + F.dropout(ff, drop, training=True)
        return lin(ln(x, "ln"), "head")

    return m, forward


# ---- §8 loss and optimizer update ------------------------------------------------------------
def optimizer_step(opt: dict[str, Any], params: list[Any], state: dict[int, dict[str, Any]]) -> None:
    # JSON numbers are doubles (§2): "0" and "0.0" are the same hyperparameter
    name, lr, wd = opt["name"], float(opt["lr"]), float(opt.get("weight_decay", 0.0))
    with torch.no_grad():
        for i, p in enumerate(params):
            g = p.grad
            if name == "sgd":
                mom = float(opt.get("momentum", 0.0))
                if wd != 0:
                    g = g.add(p, alpha=wd)
                if mom != 0:
                    s = state.setdefault(i, {})
                    if "momentum_buffer" not in s:
                        s["momentum_buffer"] = g.detach().clone()
                    else:
                        s["momentum_buffer"].mul_(mom).add_(g, alpha=1)
                    buf = s["momentum_buffer"]
                    g = g.add(buf, alpha=mom) if opt.get("nesterov", False) else buf
                p.add_(g, alpha=-lr)
                continue
            beta1, beta2 = (float(b) for b in opt.get("betas", [0.9, 0.999]))
            eps = float(opt.get("eps", 1e-8))
            s = state.setdefault(i, {})
            if not s:
                s["step"] = torch.tensor(0.0, dtype=torch.float32)
                s["exp_avg"] = torch.zeros_like(p)
                s["exp_avg_sq"] = torch.zeros_like(p)
            s["step"] += 1
            if wd != 0:
                if name == "adamw":
                    p.mul_(1 - lr * wd)
                else:
                    g = g.add(p, alpha=wd)
            s["exp_avg"].lerp_(g, 1 - beta1)
            s["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
            step = s["step"].item()
            step_size = lr / (1 - beta1**step)
            denom = (s["exp_avg_sq"].sqrt() / ((1 - beta2**step) ** 0.5)).add_(eps)
            p.addcdiv_(s["exp_avg"], denom, value=-step_size)


# ---- the task (§4, §5, §7, §8) ---------------------------------------------------------------
class Task:
    def __init__(self, doc: dict[str, Any], shard: int, features: Any, labels: Any) -> None:
        if doc.get("version") != 2:
            raise Refused(f"job document version {doc.get('version')!r}; this reference reads 2")
        self.doc, self.spec, self.shard = doc, doc["spec"], shard
        self.round = doc["round"]
        if not 0 <= shard < self.spec["num_shards"]:
            raise Refused(f"shard {shard} is outside 0..{self.spec['num_shards'] - 1}")
        self.digest = hashlib.sha256(jcs(self.spec)).hexdigest()  # §2
        data = self.spec["data"]
        pre = doc.get("preprocessing")
        if pre is not None:  # §12.1: two separately rounded float32 operations per value
            import numpy as np

            flat = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
            off = np.asarray(pre["offset"], dtype=np.float32)
            sc = np.asarray(pre["scale"], dtype=np.float32)
            if flat.shape[1] != len(off) or len(sc) != len(off):
                raise Refused("preprocessing: offset and scale need one value per feature")
            features = np.ascontiguousarray(((flat - off) / sc).astype(np.float32).reshape(features.shape))
        self.x = torch.from_numpy(features).to(
            torch.int64 if data["input_dtype"] == "int64" else torch.float32
        )
        self.y = torch.from_numpy(labels).to(torch.int64)
        self.k, self.B = self.spec["checkpoint_interval"], self.spec["batch_size"]
        self.model, self.forward = None, None

    def meta(self, step: int) -> dict[str, Any]:  # §7.2
        return {
            "format": "veritrain-train-state/2",
            "job": self.digest,
            "task": {"round": self.round, "shard": self.shard},
            "step": step,
            "index": step // self.k,
            "model": self.spec["model"]["name"],
            "optimizer": self.spec["optimizer"]["name"],
        }

    def start(self, initial_model: bytes | None) -> None:
        """§5: the state at step 0."""
        spec = self.spec
        torch.manual_seed(derive_seed(spec["seed"], "init", self.round))
        self.model, self.forward = build_model(
            spec["model"]["name"], spec["model"].get("args", {}), spec["data"]
        )
        if self.round > 0:
            self.load_initial_model(initial_model)
        elif initial_model is not None:
            raise Refused("round 0 starts from the seeded model; drop --initial-model")
        torch.manual_seed(derive_seed(spec["seed"], "train", self.round, self.shard))
        self.opt_state: dict[int, dict[str, Any]] = {}
        self.step = 0

    def load_initial_model(self, blob: bytes | None) -> None:
        im = self.doc.get("initial_model")
        if blob is None or im is None:
            raise Refused(
                f"round {self.round} starts from the document's initial model: pass --initial-model"
            )
        if hashlib.sha256(blob).hexdigest() != im["digest"]:
            raise Refused("the initial model does not hash to the document's initial_model.digest")
        meta, tensors = decode_checkpoint(blob)
        want = {
            "format": "veritrain-initial-model/1",
            "job": self.digest,
            "binding": self.doc["binding"],
            "round": self.round,
        }
        if meta != want:
            raise Refused("the initial model's metadata is not this job's round")
        self.set_params(tensors)

    def set_params(self, tensors: dict[str, Any]) -> None:
        names = {f"model/{n}" for n in self.model.params}
        if {n for n in tensors if n.startswith("model/")} != names:
            raise Refused("the model tensors do not match the job's model (§6)")
        for n, t in self.model.params.items():
            src = torch.from_numpy(tensors[f"model/{n}"])
            if src.shape != t.shape:
                raise Refused(f"model/{n} has shape {list(src.shape)}, the model wants {list(t.shape)}")
            t.copy_(src)

    def resume(self, blob: bytes) -> int:
        meta, tensors = decode_checkpoint(blob)
        self._start_without_initial()
        step = meta.get("step")
        if not isinstance(step, int) or step % self.k or meta != self.meta(step):
            raise Refused("the checkpoint is not of this job and task (§7.2)")
        self.set_params(tensors)
        for name, value in tensors.items():
            if name.startswith("optim/"):
                _, idx, slot = name.split("/", 2)
                self.opt_state.setdefault(int(idx), {})[slot] = torch.from_numpy(value)
        torch.set_rng_state(torch.from_numpy(tensors["rng/torch"]))
        self.step = step
        return step // self.k

    def _start_without_initial(self) -> None:
        spec = self.spec
        torch.manual_seed(derive_seed(spec["seed"], "init", self.round))
        self.model, self.forward = build_model(
            spec["model"]["name"], spec["model"].get("args", {}), spec["data"]
        )
        self.opt_state, self.step = {}, 0

    def checkpoint(self) -> tuple[bytes, bytes]:
        t = {f"model/{n}": p.detach().numpy() for n, p in self.model.params.items()}
        for i, slots in self.opt_state.items():
            for slot, v in slots.items():
                t[f"optim/{i:04d}/{slot}"] = v.numpy()
        t["rng/torch"] = torch.get_rng_state().numpy()
        data = encode_checkpoint(self.meta(self.step), t)
        return data, hashlib.sha256(data).digest()

    def batch(self, step: int) -> Any:  # §4.2
        n, out, pos, stop = len(self.x), [], step * self.B, (step + 1) * self.B
        while pos < stop:
            epoch, off = divmod(pos, n)
            g = torch.Generator().manual_seed(
                derive_seed(self.spec["seed"], "order", self.round, self.shard, epoch)
            )
            take = min(stop - pos, n - off)
            out.append(torch.randperm(n, generator=g)[off : off + take])
            pos += take
        return torch.cat(out)

    def train_step(self) -> None:  # §8
        params = list(self.model.params.values())
        for p in params:
            p.requires_grad_(True)
            p.grad = None
        idx = self.batch(self.step)
        logits = self.forward(self.x[idx])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), self.y[idx].reshape(-1))
        loss.backward()
        optimizer_step(self.spec["optimizer"], params, self.opt_state)
        self.step += 1

    def run_until(self, step: int) -> list[bytes]:
        hashes = []
        while self.step < step:
            self.train_step()
            if self.step % self.k == 0:
                hashes.append(self.checkpoint()[1])
        return hashes


def run_task(
    doc: dict[str, Any], shard: int, features: Any, labels: Any, initial_model: bytes | None = None
) -> tuple[list[bytes], bytes]:
    """h_0..h_n and the Merkle root of task (doc's round, shard)."""
    task = Task(doc, shard, features, labels)
    task.start(initial_model)
    hashes = [task.checkpoint()[1]]
    hashes += task.run_until(task.spec["steps_per_task"])
    return hashes, merkle_levels(hashes)[-1][0]


def run_segment(
    doc: dict[str, Any], shard: int, features: Any, labels: Any, checkpoint_j: bytes
) -> tuple[int, bytes, bytes]:
    """(j, bytes of checkpoint j+1, h_{j+1}) replayed from checkpoint j."""
    task = Task(doc, shard, features, labels)
    j = task.resume(checkpoint_j)
    if task.step >= task.spec["steps_per_task"]:
        raise Refused("the last checkpoint starts no segment")
    task.run_until(task.step + task.k)
    data, h = task.checkpoint()
    return j, data, h


# ---- §15 the replay profile ------------------------------------------------------------------
def enter_profile(profile: dict[str, Any], strict: bool) -> None:
    """Set the environment the profile pins, then load torch and check what it reports."""
    set_profile_environment(profile)
    load_torch()
    have = torch.__version__.split("+")[0]
    if strict and have != profile["torch_version"]:
        raise Refused(
            f"the job pins torch {profile['torch_version']}, this is {have} (use --any-profile to try anyway)"
        )
    torch.set_num_threads(profile["threads"])
    torch.use_deterministic_algorithms(profile.get("deterministic_algorithms", True))


def set_profile_environment(profile: dict[str, Any]) -> None:
    """The variables torch and MKL read when they load (a no-op once torch is loaded)."""
    env = {
        "OMP_NUM_THREADS": str(profile["threads"]),
        "MKL_NUM_THREADS": str(profile["threads"]),
        "ATEN_CPU_CAPABILITY": profile["cpu_isa"],
    }
    if "torch" not in sys.modules:
        os.environ.update(env)
        if profile.get("mkl_cbwr") is None:
            os.environ.pop("MKL_CBWR", None)
        else:
            os.environ["MKL_CBWR"] = profile["mkl_cbwr"]


def load_torch() -> None:
    global torch, F
    import torch as _torch
    import torch.nn.functional as _F

    torch, F = _torch, _F


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["task", "segment"])
    ap.add_argument("--doc", required=True, help="the job document (JSON bytes whose CID is specCid)")
    ap.add_argument("--index", type=int, required=True, help="the task's shard index")
    ap.add_argument("--shard", help="the task's plaintext shard (§12)")
    ap.add_argument("--shard-ciphertext", help="or the shard's ciphertext as fetched by its CID (§11) ...")
    ap.add_argument("--shard-key", help="... and the shard key, hex (§14)")
    ap.add_argument("--features", help="features .npy (instead of --shard)")
    ap.add_argument("--labels", help="labels .npy (instead of --shard)")
    ap.add_argument("--initial-model", help="round r > 0: the round's initial model plaintext (§3.3)")
    ap.add_argument("--checkpoint", help="segment mode: checkpoint j's bytes (§7)")
    ap.add_argument("--expect", help="segment mode: the claimed h_{j+1} (hex)")
    ap.add_argument("--expect-root", help="task mode: the committed root (hex)")
    ap.add_argument("--any-profile", action="store_true", help="run even if the torch version differs")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        with open(a.doc, "rb") as f:
            doc = json.loads(f.read())
        set_profile_environment(doc["spec"]["replay"])  # before numpy or torch load
        import numpy as np

        if a.shard:
            x, y = decode_shard(read(a.shard))
        elif a.shard_ciphertext and a.shard_key:
            key = bytes.fromhex(a.shard_key.removeprefix("0x"))
            x, y = decode_shard(open_shard(doc, a.index, read(a.shard_ciphertext), key))
        elif a.features and a.labels:
            x, y = np.load(a.features, allow_pickle=False), np.load(a.labels, allow_pickle=False)
        else:
            raise Refused("give --shard, --shard-ciphertext and --shard-key, or --features and --labels")
        if a.mode == "task" and doc.get("round", 0) > 0 and not a.initial_model:
            raise Refused(f"round {doc['round']} starts from the document's initial model: "
                          "pass --initial-model")
        enter_profile(doc["spec"]["replay"], strict=not a.any_profile)
        ok = True
        if a.mode == "task":
            im = read(a.initial_model) if a.initial_model else None
            hashes, root = run_task(doc, a.index, x, y, im)
            out: dict[str, Any] = {"hashes": ["0x" + h.hex() for h in hashes], "root": "0x" + root.hex()}
            if a.expect_root:
                ok = out["root"] == "0x" + a.expect_root.lower().removeprefix("0x")
        else:
            if not a.checkpoint:
                raise Refused("segment mode needs --checkpoint")
            j, _, h = run_segment(doc, a.index, x, y, read(a.checkpoint))
            out = {"segment": j, "next_hash": "0x" + h.hex()}
            if a.expect:
                ok = out["next_hash"] == "0x" + a.expect.lower().removeprefix("0x")
        out["match"] = ok
    except (Refused, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=None if a.json else 2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Canonical checkpoint encoding: exact round trips, one byte string per state, strict decode."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from veritrain.checkpoint import CheckpointState, checkpoint_hash, decode, encode, encode_and_hash
from veritrain.errors import CheckpointFormatError


def sample() -> CheckpointState:
    rng = np.random.default_rng(0)
    return CheckpointState(
        meta={"step": 40, "task": {"round": 0, "shard": 1}, "lr": 0.05, "name": "mlp"},
        tensors={
            "model/0.weight": rng.standard_normal((16, 8)).astype(np.float32),
            "model/0.bias": np.array([np.nan, -0.0, np.inf, 1e-45], dtype=np.float32),
            "optim/state/0/step": np.array(40, dtype=np.float32),
            "rng/torch": rng.integers(0, 256, 5056, dtype=np.uint8),
            "empty": np.zeros((0, 3), dtype=np.float64),
            "idx": np.arange(7, dtype=np.int64),
            "half": np.array([1.5, -2.25], dtype=np.float16),
            "flags": np.array([True, False]),
        },
    )


def test_round_trip_is_bitwise_exact_including_nan_and_negative_zero() -> None:
    state = sample()
    back = decode(encode(state))
    assert back.meta == state.meta
    assert sorted(back.tensors) == sorted(state.tensors)
    for name, arr in state.tensors.items():
        got = back.tensors[name]
        assert got.dtype == arr.dtype and got.shape == arr.shape
        assert got.tobytes() == arr.tobytes(), name
    assert encode(back) == encode(state)


def test_bytes_do_not_depend_on_insertion_order_layout_or_byte_order() -> None:
    state = sample()
    reordered = CheckpointState(
        meta=dict(reversed(list(state.meta.items()))),
        tensors={k: state.tensors[k] for k in reversed(list(state.tensors))},
    )
    w = state.tensors["model/0.weight"]
    reordered.tensors["model/0.weight"] = np.asfortranarray(w).astype(">f4")  # other layout + BE
    assert encode(reordered) == encode(state)


def test_hash_is_sha256_of_the_bytes_and_changes_with_one_bit() -> None:
    state = sample()
    data, h = encode_and_hash(state)
    assert h == hashlib.sha256(data).digest() == checkpoint_hash(data) and len(h) == 32
    w = state.tensors["model/0.weight"]
    w.view(np.uint32)[3, 3] ^= 1  # flip the lowest mantissa bit of one weight
    assert checkpoint_hash(encode(state)) != h


def test_layout_is_magic_version_header_then_sorted_raw_tensors() -> None:
    state = CheckpointState(meta={"b": 1, "a": [1, 2]}, tensors={"y": np.array([1], np.int32),
                                                                 "x": np.array([2.0], np.float64)})
    data = encode(state)
    magic, version, hlen = struct.unpack_from("<4sHQ", data)
    assert (magic, version) == (b"VTCK", 1)
    header = data[14 : 14 + hlen]
    assert header == b'{"meta":{"a":[1,2],"b":1},"tensors":[["x","float64",[1],8],["y","int32",[1],4]]}'
    assert data[14 + hlen :] == struct.pack("<d", 2.0) + struct.pack("<i", 1)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"XXXX" + d[4:], "bad magic"),
        (lambda d: d[:4] + struct.pack("<H", 9) + d[6:], "version 9"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\0", "trailing bytes"),
        (lambda d: d[:20], "truncated inside its header"),
    ],
)
def test_decode_refuses_damaged_bytes(mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CheckpointFormatError, match=message):
        decode(mutate(encode(sample())))


def _with_header(header: dict, body: bytes) -> bytes:  # type: ignore[type-arg]
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return struct.pack("<4sHQ", b"VTCK", 1, len(raw)) + raw + body


def test_decode_refuses_non_canonical_encodings_of_a_valid_state() -> None:
    spaced = json.dumps({"meta": {}, "tensors": []}, indent=1).encode()
    with pytest.raises(CheckpointFormatError, match="not canonical"):
        decode(struct.pack("<4sHQ", b"VTCK", 1, len(spaced)) + spaced)
    unsorted = {"meta": {}, "tensors": [["b", "int8", [1], 1], ["a", "int8", [1], 1]]}
    with pytest.raises(CheckpointFormatError, match="out of order"):
        decode(_with_header(unsorted, b"\1\2"))
    wrong_size = {"meta": {}, "tensors": [["a", "int32", [2], 4]]}
    with pytest.raises(CheckpointFormatError, match="do not match"):
        decode(_with_header(wrong_size, b"\0" * 4))


def test_encode_refuses_what_it_cannot_encode_canonically() -> None:
    with pytest.raises(CheckpointFormatError, match="dtype"):
        encode(CheckpointState(tensors={"c": np.zeros(2, dtype=np.complex64)}))
    with pytest.raises(CheckpointFormatError, match="plain JSON"):
        encode(CheckpointState(meta={"lr": float("nan")}))

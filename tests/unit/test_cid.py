"""Local CID computation, checked against CIDs a real IPFS daemon (js-ipfs 0.66) returned.

The daemon-backed cross-check over many sizes is tests/integration/test_storage.py.
"""

from __future__ import annotations

import hashlib
import io
import random

import pytest

from veritrain.storage import cid as C


def pattern(n: int) -> bytes:
    """Deterministic pseudo-random bytes (stable across Python versions)."""
    return random.Random(n).randbytes(n)


# (size, CID) pairs recorded from `ipfs add --cid-version 1 --raw-leaves` of pattern(size)
KNOWN = {
    0: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    12: "bafkreihjqvpvihch7qlxxyg3kayqmuqpxry35mld6z56jvuvpl2nqzclf4",
    262144: "bafkreih2bk74eu5axngebs6vftmmkcaqboysjjy726xzy5hksnqmfgw5fy",
    262145: "bafybeidbbs6ocod3v27jtr4uhvc6n55y3gbrtur3bvjsnraudtbxkozi2y",
    1310723: "bafybeifvj4gv4ic3jq6ww6weqclyr6w3veqqloip6axjwh3uic5xvuydae",
    45613056: "bafybeih3ebhydpblov22wbakszm4spvku7hbo3oa5gdhgoh7gnub26mtx4",  # 174 leaves: one level
    45613057: "bafybeidsyc3rx6lmbjml2fg4ucagkjh3kse6tbphoyyhms46fqhmu6ujbi",  # 175 leaves: two levels
}


@pytest.mark.parametrize("size", sorted(KNOWN))
def test_matches_cids_recorded_from_a_real_daemon(size: int) -> None:
    assert C.cid_of_bytes(pattern(size)) == KNOWN[size]


def test_hello_world() -> None:
    assert C.cid_of_bytes(b"hello world") == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_single_chunk_is_raw_leaf_and_two_chunks_are_dag_pb() -> None:
    assert C.cid_of_bytes(pattern(C.CHUNK_SIZE)).startswith("bafkrei")
    assert C.cid_of_bytes(pattern(C.CHUNK_SIZE + 1)).startswith("bafybei")


def test_decode_roundtrip_and_codec() -> None:
    cid = C.cid_of_bytes(b"abc")
    codec, digest = C.decode_cid(cid)
    assert codec == C.RAW and digest == hashlib.sha256(b"abc").digest()
    assert C.encode_cid(C.cid_bytes(codec, digest)) == cid


@pytest.mark.parametrize(
    "bad, msg",
    [
        ("QmZfF6C9j4VtoCsTp4KSrhYH47QMd3DNXVZBKaxJdhaPab", "not a base32 CIDv1"),
        ("bafyb!!!!!!!!!", "not valid base32"),
        ("bafkr4ifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", "sha2-256"),
    ],
)
def test_decode_rejects_unsupported(bad: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        C.decode_cid(bad)


@pytest.mark.parametrize("size", [0, 1, C.CHUNK_SIZE - 1, C.CHUNK_SIZE, 3 * C.CHUNK_SIZE + 7])
def test_streaming_equals_one_shot_for_any_slicing(size: int) -> None:
    data = pattern(size)
    one = C.cid_of_bytes(data)
    assert C.cid_of_stream(io.BytesIO(data), block=1000) == one
    assert C.cid_of_chunks([data[i : i + 77777] for i in range(0, len(data), 77777)]) == one


def test_tree_shape_two_levels() -> None:
    leaves = [C.leaf_node(b"x")] * (C.MAX_LINKS + 1)
    root = C.root_of_leaves(leaves)
    assert root.filesize == C.MAX_LINKS + 1
    one_level = C.root_of_leaves(leaves[: C.MAX_LINKS])
    assert root.cid != one_level.cid and root.tsize > one_level.tsize

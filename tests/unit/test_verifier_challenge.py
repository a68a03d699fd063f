"""Building a challenge from a worker's manifest: the proofs the resolver checks."""

from __future__ import annotations

import hashlib

import pytest

from verifier.challenge import ChallengeError, build_challenge, unproven_challenge
from veritrain import merkle
from veritrain.manifest import Manifest

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
WORKER = "0x" + "ab" * 20


def _manifest(n: int = 6) -> Manifest:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
    return Manifest.build(spec_cid=CID, job_id=1, task_id=(1 << 32) | 0, worker=WORKER, k=10,
                          hashes=hashes, checkpoint_cids=[CID] * n)


@pytest.mark.parametrize("j", [0, 1, 2, 3, 4])
def test_challenge_carries_valid_proofs_for_j_and_next(j):
    m = _manifest()
    claimed = b"\x07" * 32
    ch = build_challenge(m, m.task_id, j, claimed)
    seg_j, h, proof, h_next, proof_next = ch.segment()
    assert (seg_j, h, h_next) == (j, m.hash_bytes(j), m.hash_bytes(j + 1))
    assert ch.proven and ch.function == "challengeWithProof"
    assert merkle.verify(m.root_bytes(), j, h, proof)
    if j % 2 == 0:  # siblings: leaf j's proof starts with leaf j + 1, and proofNext is left empty
        assert proof_next == [] and proof[0] == merkle.leaf(j + 1, h_next)
    else:
        assert merkle.verify(m.root_bytes(), j + 1, h_next, proof_next)
    # a proof for one index never passes for another
    assert not merkle.verify(m.root_bytes(), j + 1, h, proof)
    task, worker, seg, next_ = ch.args()
    assert (task, worker, seg[0], next_) == (m.task_id, m.worker, j, claimed)
    assert ch.as_dict()["claimed_next"] == "0x" + "07" * 32


def test_unproven_challenge_names_the_segment_only():
    ch = unproven_challenge(5, WORKER, 0, b"\x07" * 32, checkpoint_count=6)
    assert not ch.proven and ch.function == "challenge" and ch.args() == (5, WORKER, 0, b"\x07" * 32)
    with pytest.raises(ChallengeError, match="no segment proofs"):
        ch.segment()
    with pytest.raises(ChallengeError, match="does not exist"):
        unproven_challenge(5, WORKER, 5, b"\x07" * 32, checkpoint_count=6)


def test_no_disagreement_is_refused():
    m = _manifest()
    with pytest.raises(ChallengeError, match="no disagreement"):
        build_challenge(m, m.task_id, 1, m.hash_bytes(2))


@pytest.mark.parametrize("j", [-1, 5, 9])
def test_segment_out_of_range(j):
    m = _manifest()
    with pytest.raises(ChallengeError, match="does not exist"):
        build_challenge(m, m.task_id, j, b"\x01" * 32)


def test_wrong_root_is_refused_before_sending():
    m = _manifest()
    with pytest.raises(ChallengeError, match="do not prove"):
        build_challenge(m, m.task_id, 1, b"\x01" * 32, root=b"\x02" * 32)

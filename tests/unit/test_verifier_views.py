"""The typed VerifierRegistry.getVerifier view (veritrain.chain.views.Verifier)."""

from __future__ import annotations

from dataclasses import fields

from veritrain.artifacts import artifact
from veritrain.chain.views import Verifier, snake


def test_verifier_view_follows_the_abi() -> None:
    item = next(f for f in artifact("VerifierRegistry")["abi"]
                if f.get("type") == "function" and f["name"] == "getVerifier")
    assert [f.name for f in fields(Verifier)] == [snake(c["name"]) for c in item["outputs"][0]["components"]]


def test_verifier_view_converts_the_tuple() -> None:
    v = Verifier.of((1, 0, 3, 10**18, b"\x04" * 64))
    assert (v.status, v.pool_index, v.stake, v.pub_key) == (1, 3, 10**18, b"\x04" * 64)

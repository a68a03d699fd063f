"""The ABIs and bytecode shipped in the package must match contracts/."""

from __future__ import annotations

import json

from veritrain.dev import solc


def test_shipped_artifacts_were_built_from_current_sources() -> None:
    assert solc.drift() == [], "run `make artifacts` and commit the result"


def test_recompiling_reproduces_shipped_bytecode() -> None:
    fresh = solc.artifacts_from_output(solc.compile_contracts())
    for name, art in fresh.items():
        shipped = json.loads((solc._dest(art) / f"{name}.json").read_text())
        assert shipped["abi"] == art["abi"], name
        assert shipped["bytecode"] == art["bytecode"], name


def test_same_runtime_ignores_only_the_metadata() -> None:
    from veritrain.artifacts import artifact, same_runtime, without_metadata

    shipped = bytes.fromhex(artifact("JobMarket")["deployedBytecode"].removeprefix("0x"))
    meta = len(shipped) - len(without_metadata(shipped))
    assert 40 < meta < 100  # a CBOR blob with the ipfs hash and the solc version
    other_hash = shipped[:-meta] + bytes(b ^ 0xFF for b in shipped[-meta:-2]) + shipped[-2:]
    assert same_runtime(other_hash, "JobMarket") and same_runtime("0x" + shipped.hex(), "JobMarket")
    one_op = bytearray(shipped)
    one_op[100] ^= 0x01
    assert not same_runtime(bytes(one_op), "JobMarket")
    assert not same_runtime(artifact("DevToken")["deployedBytecode"], "JobMarket")

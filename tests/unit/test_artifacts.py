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

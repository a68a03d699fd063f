"""Compiled contracts shipped inside the package: run without Ape or a compiler."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from veritrain.errors import SetupError

ARTIFACTS_DIR = Path(__file__).with_name("artifacts")


@cache
def artifact(name: str, folder: Path = ARTIFACTS_DIR) -> dict[str, Any]:
    """``{"abi", "bytecode", "deployedBytecode", ...}`` of contract ``name``."""
    path = folder / f"{name}.json"
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        raise SetupError(
            f"no compiled artifact for {name} in {folder}: run `make artifacts`"
        ) from None


def abi(name: str) -> list[dict[str, Any]]:
    return artifact(name)["abi"]  # type: ignore[no-any-return]


def _hex(code: str | bytes) -> bytes:
    return bytes.fromhex(code.removeprefix("0x")) if isinstance(code, str) else bytes(code)


def without_metadata(code: str | bytes) -> bytes:
    """Runtime code without solc's CBOR metadata (its length is in the last two bytes): the
    metadata hash changes with source paths, the code does not."""
    raw = _hex(code)
    if len(raw) < 2:
        return raw
    cut = int.from_bytes(raw[-2:], "big") + 2
    return raw[:-cut] if cut <= len(raw) else raw


def same_runtime(compiled: str | bytes, name: str) -> bool:
    """Whether ``compiled`` runtime code (immutables still zero, as solc emits it) is the
    shipped artifact ``name``'s, metadata aside."""
    return without_metadata(compiled) == without_metadata(artifact(name)["deployedBytecode"])

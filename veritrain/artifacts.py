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

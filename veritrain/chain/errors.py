"""Contract custom errors as Python exceptions with the same names.

Every ``error X(...)`` in the shipped ABIs becomes a subclass ``X`` of
:class:`veritrain.errors.ContractRevert` whose ``args_`` holds the decoded arguments, so
callers write ``except JobMarketWrongStatus as e: e.args_["taskId"]``. Classes are created
on first use from the artifacts (``from veritrain.chain.errors import JobMarketWrongStatus``
works through the module ``__getattr__``). ``Error(string)`` and ``Panic(uint256)`` decode to
the classes :class:`RevertString` and :class:`Panic`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sha3 import keccak_256

from veritrain.errors import ContractRevert

_CLASSES: dict[str, type[ContractRevert]] = {}
#: 4-byte selector -> (error name, ABI inputs)
_SELECTORS: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
_LOADED: set[str] = set()


def _class(name: str) -> type[ContractRevert]:
    cls = _CLASSES.get(name)
    if cls is None:
        cls = type(name, (ContractRevert,), {"__doc__": f"The contract reverted with {name}(...)."})
        cls.__module__ = __name__
        _CLASSES[name] = cls
    return cls


RevertString = _class("RevertString")
Panic = _class("Panic")


def canonical_type(param: dict[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(canonical_type(c) for c in param["components"]) + ")" + t[5:]
    return t


def selector(name: str, inputs: list[dict[str, Any]]) -> bytes:
    sig = f"{name}({','.join(canonical_type(i) for i in inputs)})"
    return keccak_256(sig.encode()).digest()[:4]


def register_abi(abi: Iterable[dict[str, Any]]) -> list[type[ContractRevert]]:
    """Create (or reuse) the exception classes for every error in ``abi``."""
    out = []
    for item in abi:
        if item.get("type") == "error":
            _SELECTORS[selector(item["name"], item["inputs"])] = (item["name"], item["inputs"])
            out.append(_class(item["name"]))
    return out


def register_folder(folder: Path) -> None:
    import json

    key = str(Path(folder).resolve())
    if key in _LOADED:
        return
    _LOADED.add(key)
    for path in sorted(Path(folder).glob("*.json")):
        if path.name != "manifest.json":
            register_abi(json.loads(path.read_text()).get("abi", []))


def _ensure_shipped() -> None:
    from veritrain.artifacts import ARTIFACTS_DIR

    register_folder(ARTIFACTS_DIR)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    return value


def _checksum(value: str) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(value))


def decode_revert(data: bytes | str | None, tx: str | None = None) -> ContractRevert | None:
    """The exception for revert ``data``; None when the data is empty or unknown."""
    from eth_abi import decode

    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x")) if data.startswith("0x") else None
    if not data or len(data) < 4:
        return None
    _ensure_shipped()
    sel, body = data[:4], data[4:]
    try:
        if sel == bytes.fromhex("08c379a0"):
            return RevertString("RevertString", {"message": decode(["string"], body)[0]}, tx)
        if sel == bytes.fromhex("4e487b71"):
            return Panic("Panic", {"code": decode(["uint256"], body)[0]}, tx)
        found = _SELECTORS.get(sel)
        if found is None:
            return None
        name, inputs = found
        values = decode([canonical_type(i) for i in inputs], body)
    except Exception:  # malformed revert data: report it undecoded
        return None
    args = {
        (i.get("name") or f"arg{n}"): _checksum(v) if i["type"] == "address" else _plain(v)
        for n, (i, v) in enumerate(zip(inputs, values, strict=True))
    }
    return _class(name)(name, args, tx)


def __getattr__(name: str) -> type[ContractRevert]:
    if name.startswith("__"):
        raise AttributeError(name)
    _ensure_shipped()
    if name in _CLASSES:
        return _CLASSES[name]
    raise AttributeError(f"no contract error named {name} in the shipped ABIs")

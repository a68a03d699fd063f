"""Revert data -> exceptions named after the contract's custom errors."""

from __future__ import annotations

import pytest
from eth_abi import encode

from veritrain.chain import errors
from veritrain.errors import ContractRevert

ABI = [
    {"type": "error", "name": "TestThingWrongStatus",
     "inputs": [{"name": "taskId", "type": "uint256"}, {"name": "who", "type": "address"},
                {"name": "h", "type": "bytes32"}]},
]


def test_custom_error_decodes_to_same_named_class_with_args() -> None:
    (cls,) = errors.register_abi(ABI)
    assert cls.__name__ == "TestThingWrongStatus" and issubclass(cls, ContractRevert)
    who = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    data = errors.selector("TestThingWrongStatus", ABI[0]["inputs"]) + encode(
        ["uint256", "address", "bytes32"], [7, who, b"\x01" * 32])
    err = errors.decode_revert("0x" + data.hex(), tx="0xabc")
    assert type(err) is cls and err.tx == "0xabc"
    assert err.args_ == {"taskId": 7, "who": who, "h": "0x" + "01" * 32}
    assert "TestThingWrongStatus(taskId=7" in str(err)
    assert errors.TestThingWrongStatus is cls


def test_selector_matches_solidity() -> None:
    # ERC20InsufficientBalance(address,uint256,uint256) = 0xe450d38c
    assert errors.selector("ERC20InsufficientBalance", [{"type": "address"}, {"type": "uint256"},
                                                         {"type": "uint256"}]).hex() == "e450d38c"


def test_shipped_contract_errors_are_importable() -> None:
    from veritrain.chain.errors import ERC20InsufficientBalance

    assert issubclass(ERC20InsufficientBalance, ContractRevert)
    with pytest.raises(AttributeError, match="no contract error named Nope"):
        errors.Nope  # noqa: B018


def test_string_panic_and_unknown() -> None:
    s = errors.decode_revert(bytes.fromhex("08c379a0") + encode(["string"], ["boom"]))
    assert isinstance(s, errors.RevertString) and s.args_ == {"message": "boom"}
    p = errors.decode_revert(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]))
    assert isinstance(p, errors.Panic) and p.args_ == {"code": 0x11}
    assert errors.decode_revert(b"\xde\xad\xbe\xef") is None
    assert errors.decode_revert("0x") is None

"""What every role reads off a mined transaction (no web3 import)."""

from __future__ import annotations

from typing import Any

from sha3 import keccak_256


def tx_hash(receipt: Any) -> str:
    """The receipt's transaction hash as ``0x`` hex (web3 gives HexBytes, some fakes a str)."""
    h = receipt["transactionHash"]
    return h if isinstance(h, str) else "0x" + bytes(h).hex()


def commitment(value: bytes, who: str, salt: bytes) -> bytes:
    """``keccak256(abi.encode(bytes32 value, address who, bytes32 salt))``: what JobMarket.commit
    takes for a root and DisputeResolver.commitVote for a vote; the address binds the committer."""
    return keccak_256(bytes(value) + bytes(12) + bytes.fromhex(who[2:]) + bytes(salt)).digest()

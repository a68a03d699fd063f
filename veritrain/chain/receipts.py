"""What every role reads off a mined transaction (no web3 import)."""

from __future__ import annotations

from collections.abc import Iterator
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


#: The longest pause between two receipt polls when the chain's block time is not known.
RECEIPT_POLL_CAP = 0.25


def receipt_poll_delays(first: float, cap: float = RECEIPT_POLL_CAP) -> Iterator[float]:
    """Pauses between receipt polls, paced by the block time: ``first`` (an automine chain answers
    within milliseconds), then doubling up to ``cap`` (about a quarter of a block interval), so a
    wait across a 1 s block costs about ten polls instead of two hundred at a fixed 5 ms."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, max(cap, first))

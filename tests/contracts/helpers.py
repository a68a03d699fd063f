"""Test helpers for the contracts: locally signed transactions, custom-error decoding,
a sorted-pair keccak Merkle tree (OpenZeppelin's MerkleProof layout), time travel.

Independent of veritrain.merkle on purpose: the contracts are checked against a second
implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_keys import keys
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

GAS = 3_000_000
GAS_PRICE = 10**9


def pubkey(account: Any) -> bytes:
    """64-byte uncompressed secp256k1 public key (no 0x04 prefix) of a LocalAccount."""
    return keys.PrivateKey(account.key).public_key.to_bytes()


def commitment(value: bytes, who: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(bytes32 value, address who, bytes32 salt))."""
    return keccak(abi_encode(["bytes32", "address", "bytes32"], [value, who, salt]))


# ---------------------------------------------------------------------------- merkle


def leaf(i: int, h: bytes) -> bytes:
    return keccak(abi_encode(["uint256", "bytes32"], [i, h]))


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


class Tree:
    """Merkle tree over checkpoint hashes h_0..h_n; an odd last node moves up unchanged."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self.hashes = list(hashes)
        self.layers = [[leaf(i, h) for i, h in enumerate(self.hashes)]]
        while len(self.layers[-1]) > 1:
            cur = self.layers[-1]
            nxt = [_pair(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2:
                nxt.append(cur[-1])
            self.layers.append(nxt)

    @property
    def root(self) -> bytes:
        return self.layers[-1][0]

    def proof(self, i: int) -> list[bytes]:
        out = []
        for layer in self.layers[:-1]:
            sib = i ^ 1
            if sib < len(layer):
                out.append(layer[sib])
            i //= 2
        return out

    def segment(self, j: int) -> tuple[int, bytes, list[bytes], bytes, list[bytes]]:
        """DisputeResolver.Segment for segment j: (j, h_j, proof_j, h_{j+1}, proof_{j+1})."""
        return (j, self.hashes[j], self.proof(j), self.hashes[j + 1], self.proof(j + 1))


def hashes(n_leaves: int, tag: bytes = b"honest", diverge_at: int | None = None) -> list[bytes]:
    """Checkpoint hashes; with ``diverge_at`` = m, hashes from index m on differ (a cheat)."""
    out = []
    for i in range(n_leaves):
        t = tag if diverge_at is None or i < diverge_at else tag + b"-cheat"
        out.append(keccak(t + i.to_bytes(4, "big")) if i else keccak(b"genesis"))
    return out


# ---------------------------------------------------------------------------- errors


class ErrorDecoder:
    """Maps 4-byte selectors of every custom error in the given ABIs to (name, types)."""

    def __init__(self, abis: Sequence[list[dict[str, Any]]]) -> None:
        self.errors: dict[bytes, tuple[str, list[str]]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = [_abi_type(i) for i in item["inputs"]]
                sel = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                self.errors[sel] = (item["name"], types)

    def decode(self, data: bytes | str) -> tuple[str, tuple[Any, ...]]:
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x"))
        name, types = self.errors[data[:4]]
        values = abi_decode(types, data[4:])
        return name, tuple(
            Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
        )


def _abi_type(inp: dict[str, Any]) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


class Reverted(Exception):
    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"{name}{args}")
        self.name = name
        self.args_ = args


# ---------------------------------------------------------------------------- chain


@dataclass
class Chain:
    """Sends locally signed transactions with explicit gas and tracked nonces."""

    w3: Web3
    decoder: ErrorDecoder

    def __post_init__(self) -> None:
        self._nonces: dict[str, int] = {}
        self.chain_id = self.w3.eth.chain_id

    def reset_nonces(self) -> None:
        self._nonces.clear()

    def _nonce(self, addr: str) -> int:
        if addr not in self._nonces:
            self._nonces[addr] = self.w3.eth.get_transaction_count(addr, "pending")
        n = self._nonces[addr]
        self._nonces[addr] = n + 1
        return n

    def send(self, account: Any, call: Any, gas: int = GAS, check: bool = True) -> Any:
        """Send ``call`` (a bound contract function) from ``account``; the receipt.

        On a revert with ``check`` set, replays it as eth_call to raise :class:`Reverted`.
        """
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": self._nonce(account.address),
                "gas": gas,
                "maxFeePerGas": GAS_PRICE * 2,
                "maxPriorityFeePerGas": GAS_PRICE,
                "chainId": self.chain_id,
            }
        )
        h = self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, poll_latency=0.005)
        if receipt["status"] != 1 and check:
            self.revert_of(account, call)
            raise AssertionError(f"transaction reverted without a custom error: {call.fn_name}")
        return receipt

    def revert_of(self, account: Any, call: Any) -> tuple[str, tuple[Any, ...]] | None:
        """The custom error ``call`` reverts with when sent by ``account`` now, or None."""
        try:
            call.call({"from": account.address})
        except ContractCustomError as exc:
            raise Reverted(*self.decoder.decode(exc.data)) from None
        except ContractLogicError as exc:
            if exc.data and len(exc.data) >= 10:
                raise Reverted(*self.decoder.decode(exc.data)) from None
            raise
        return None

    def expect_revert(self, account: Any, call: Any, name: str, *args: Any) -> tuple[Any, ...]:
        """Assert ``call`` reverts with custom error ``name`` (and ``args`` when given)."""
        try:
            self.revert_of(account, call)
        except Reverted as exc:
            assert exc.name == name, f"expected {name}, got {exc}"
            if args:
                assert exc.args_ == tuple(args), f"{name}: expected args {args}, got {exc.args_}"
            return exc.args_
        raise AssertionError(f"{call.fn_name} did not revert (expected {name})")

    # time travel
    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def warp(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def warp_past(self, timestamp: int) -> None:
        """Mine a block at ``timestamp + 1``: calls and later transactions are past it."""
        self.w3.provider.make_request("evm_mine", [timestamp + 1])

    def snapshot(self) -> str:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]

    def revert(self, snap: str) -> None:
        assert self.w3.provider.make_request("evm_revert", [snap])["result"] is True
        self.reset_nonces()

    def events(self, contract: Any, name: str, receipt: Any) -> list[Any]:
        from web3.logs import DISCARD

        return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))

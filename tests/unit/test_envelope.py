"""ECIES key envelopes to Ethereum secp256k1 keys."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from veritrain import envelope
from veritrain.errors import DecryptionError

PRIV = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
DATA_KEY = bytes(range(32))


def test_public_key_and_address_match_eth_account() -> None:
    pub = envelope.public_key_from_private(PRIV)
    assert len(pub) == 64
    assert envelope.address_of(pub) == Account.from_key(PRIV).address
    assert envelope.address_of("0x04" + pub.hex()) == Account.from_key(PRIV).address


def test_public_key_recovered_from_signature() -> None:
    sig = Account.from_key(PRIV).sign_message(encode_defunct(text="veritrain claim 1")).signature
    recovered = envelope.public_key_from_signature("veritrain claim 1", sig)
    assert recovered == envelope.public_key_from_private(PRIV)
    other = envelope.public_key_from_signature("another message", sig)
    assert other != envelope.public_key_from_private(PRIV)


def test_wrap_unwrap_roundtrip_and_randomized() -> None:
    pub = envelope.public_key_from_private(PRIV)
    a = envelope.wrap(DATA_KEY, pub, b"job 1 task 2")
    b = envelope.wrap(DATA_KEY, pub, b"job 1 task 2")
    assert a != b and DATA_KEY not in a
    assert envelope.unwrap(a, PRIV, b"job 1 task 2") == DATA_KEY
    assert envelope.unwrap("0x" + b.hex(), "0x" + PRIV.hex(), b"job 1 task 2") == DATA_KEY


def test_wrong_key_context_or_tamper_raise_decryption_error() -> None:
    pub = envelope.public_key_from_private(PRIV)
    env = envelope.wrap(DATA_KEY, pub, b"ctx")
    with pytest.raises(DecryptionError, match="another key or context"):
        envelope.unwrap(env, bytes(31) + b"\x01", b"ctx")
    with pytest.raises(DecryptionError):
        envelope.unwrap(env, PRIV, b"other ctx")
    bad = bytearray(env)
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        envelope.unwrap(bytes(bad), PRIV, b"ctx")
    with pytest.raises(DecryptionError, match="shorter"):
        envelope.unwrap(env[:20], PRIV, b"ctx")


def test_bad_public_key_is_rejected_with_message() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        envelope.wrap(DATA_KEY, b"\x01" * 10)
    with pytest.raises(ValueError, match="not a point"):
        envelope.wrap(DATA_KEY, b"\x01" * 64)

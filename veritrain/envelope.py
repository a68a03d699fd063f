"""Key envelopes: a data key wrapped (ECIES) to an Ethereum account's secp256k1 public key.

Public keys are 64 bytes: the uncompressed point without the ``0x04`` prefix — what a
worker passes to ``claim(taskId, bytes pubKey)`` and what :func:`address_of` hashes.

Envelope (version 1)::

    0x01 | ephemeral public key (33 B, compressed) | nonce (12 B) | AES-256-GCM(ct + 16 B tag)

The AES key is HKDF-SHA256 over the ECDH shared secret, salted with the ephemeral and the
recipient public keys, with ``info`` = label + ``context``. ``context`` (for example the
job and task ids) is also the AEAD associated data: an envelope only opens for the context
it was made for. Normative text: docs/spec/README.md, section 16.
"""

from __future__ import annotations

import os
from typing import NewType

from coincurve import PrivateKey, PublicKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sha3 import keccak_256

from veritrain.errors import DecryptionError

#: 64-byte uncompressed secp256k1 public key without the 0x04 prefix.
PublicKeyBytes = NewType("PublicKeyBytes", bytes)

VERSION = 1
_NONCE = 12
_EPH = 33
_INFO = b"veritrain/key-envelope/v1"
MIN_ENVELOPE = 1 + _EPH + _NONCE + 16


def _bytes(value: bytes | str, what: str) -> bytes:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{what} must be bytes or a hex string, got {value[:12]!r}...") from None
    return bytes(value)


def _private(key: bytes | str) -> PrivateKey:
    raw = _bytes(key, "private key")
    if len(raw) != 32:
        raise ValueError(f"private key must be 32 bytes, got {len(raw)}")
    return PrivateKey(raw)


def normalize_public_key(pubkey: bytes | str) -> PublicKeyBytes:
    """Accept 64-byte raw, 65-byte ``0x04``-prefixed or 33-byte compressed; return 64 bytes."""
    raw = _bytes(pubkey, "public key")
    if len(raw) == 64:
        raw = b"\x04" + raw
    if len(raw) not in (33, 65):
        raise ValueError(
            f"public key must be 64 bytes (uncompressed, no 0x04 prefix), got {len(raw)} bytes"
        )
    try:
        point = PublicKey(raw)
    except ValueError:
        raise ValueError("public key is not a point on secp256k1") from None
    return PublicKeyBytes(point.format(compressed=False)[1:])


def public_key_from_private(key: bytes | str) -> PublicKeyBytes:
    return PublicKeyBytes(_private(key).public_key.format(compressed=False)[1:])


def eip191_hash(message: bytes | str) -> bytes:
    """keccak256 of the EIP-191 ``personal_sign`` form of ``message``."""
    msg = message.encode() if isinstance(message, str) else bytes(message)
    return keccak_256(b"\x19Ethereum Signed Message:\n" + str(len(msg)).encode() + msg).digest()


def public_key_from_signature(message: bytes | str, signature: bytes | str) -> PublicKeyBytes:
    """Recover the signer's public key from an EIP-191 (personal_sign) signature."""
    sig = _bytes(signature, "signature")
    if len(sig) != 65:
        raise ValueError(f"signature must be 65 bytes (r, s, v), got {len(sig)}")
    v = sig[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise ValueError(f"signature has an invalid recovery id v={sig[64]}")
    try:
        pub = PublicKey.from_signature_and_message(sig[:64] + bytes([v]), eip191_hash(message),
                                                   hasher=None)
    except Exception as exc:  # coincurve raises plain Exception on a bad signature
        raise ValueError(f"cannot recover a public key from this signature: {exc}") from None
    return PublicKeyBytes(pub.format(compressed=False)[1:])


def to_checksum_address(addr20: bytes) -> str:
    hexaddr = addr20.hex()
    digest = keccak_256(hexaddr.encode()).hexdigest()
    pairs = zip(hexaddr, digest[:40], strict=True)
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in pairs)


def address_of(pubkey: bytes | str) -> str:
    """EIP-55 checksummed Ethereum address of a public key."""
    raw = normalize_public_key(pubkey)
    return to_checksum_address(keccak_256(raw).digest()[-20:])


def _kdf(shared: bytes, eph: bytes, recipient: bytes, context: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + recipient,
                info=_INFO + context).derive(shared)


def wrap(data_key: bytes, pubkey: bytes | str, context: bytes = b"") -> bytes:
    """Encrypt ``data_key`` (any short secret) so only ``pubkey``'s private key opens it."""
    return _wrap(data_key, pubkey, context, PrivateKey(), os.urandom(_NONCE))


def _wrap(data_key: bytes, pubkey: bytes | str, context: bytes, eph: PrivateKey, nonce: bytes) -> bytes:
    """:func:`wrap` with a given ephemeral key and nonce (test vectors; never reuse them)."""
    recipient = normalize_public_key(pubkey)
    recipient_pt = PublicKey(b"\x04" + recipient)
    eph_pub = eph.public_key.format(compressed=True)
    shared = eph.ecdh(recipient_pt.format(compressed=True))  # sha256(0x02|y&1 || x) of e*P
    ct = AESGCM(_kdf(shared, eph_pub, recipient, context)).encrypt(nonce, bytes(data_key), context)
    return bytes([VERSION]) + eph_pub + nonce + ct


def unwrap(envelope: bytes | str, private_key: bytes | str, context: bytes = b"") -> bytes:
    """Open an envelope; a wrong key, context or a tampered envelope raises DecryptionError."""
    env = _bytes(envelope, "envelope")
    if len(env) < MIN_ENVELOPE:
        raise DecryptionError(f"key envelope is {len(env)} bytes, shorter than the minimum {MIN_ENVELOPE}")
    if env[0] != VERSION:
        raise DecryptionError(f"key envelope has version {env[0]}; this build reads {VERSION}")
    eph_pub, nonce, ct = env[1:1 + _EPH], env[1 + _EPH:1 + _EPH + _NONCE], env[1 + _EPH + _NONCE:]
    priv = _private(private_key)
    recipient = priv.public_key.format(compressed=False)[1:]
    try:
        shared = priv.ecdh(eph_pub)
    except ValueError:
        raise DecryptionError("key envelope carries an invalid ephemeral public key") from None
    try:
        return AESGCM(_kdf(shared, eph_pub, recipient, context)).decrypt(nonce, ct, context)
    except InvalidTag:
        raise DecryptionError(
            "key envelope does not open: it was made for another key or context, or was altered"
        ) from None

"""Chunked AES-256-GCM: round trips, binding of job/shard/chunk, no partial plaintext."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veritrain import crypto
from veritrain.errors import DecryptionError

KEY = bytes(range(32))
CTX = {"job_id": 7, "shard_index": 3}


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 64 * 3, 1000])
def test_roundtrip_sizes_and_exact_ciphertext_size(size: int) -> None:
    data = os.urandom(size)
    ct = crypto.encrypt_bytes(data, KEY, chunk_size=64, **CTX)
    assert len(ct) == crypto.ciphertext_size(size, 64)
    # the plaintext does not show through (a 1-byte plaintext may appear in any ciphertext by
    # chance, the header included, so only plaintexts long enough to mean something are checked)
    assert data not in ct or size < 16
    assert crypto.decrypt_bytes(ct, KEY, **CTX) == data


def test_two_encryptions_of_same_data_differ() -> None:
    assert crypto.encrypt_bytes(b"x" * 100, KEY, **CTX) != crypto.encrypt_bytes(b"x" * 100, KEY, **CTX)


def test_generate_data_key_is_32_random_bytes() -> None:
    a, b = crypto.generate_data_key(), crypto.generate_data_key()
    assert len(a) == 32 and a != b


@pytest.mark.parametrize(
    "ctx", [{"job_id": 8, "shard_index": 3}, {"job_id": 7, "shard_index": 4}],
)
def test_other_job_or_shard_fails(ctx: dict[str, int]) -> None:
    ct = crypto.encrypt_bytes(b"secret", KEY, **CTX)
    with pytest.raises(DecryptionError, match="failed authentication at chunk 0"):
        crypto.decrypt_bytes(ct, KEY, **ctx)


def test_wrong_key_fails() -> None:
    ct = crypto.encrypt_bytes(b"secret", KEY, **CTX)
    with pytest.raises(DecryptionError, match="key"):
        crypto.decrypt_bytes(ct, bytes(32), **CTX)


def _split(ct: bytes, chunk: int) -> tuple[bytes, list[bytes]]:
    body = ct[crypto.HEADER_SIZE:]
    n = chunk + crypto.TAG_SIZE
    return ct[: crypto.HEADER_SIZE], [body[i : i + n] for i in range(0, len(body), n)]


def test_swapped_chunks_fail() -> None:
    ct = crypto.encrypt_bytes(os.urandom(64 * 3), KEY, chunk_size=64, **CTX)
    head, chunks = _split(ct, 64)
    chunks[0], chunks[1] = chunks[1], chunks[0]
    with pytest.raises(DecryptionError, match="chunk 0"):
        crypto.decrypt_bytes(head + b"".join(chunks), KEY, **CTX)


def test_truncation_at_chunk_boundary_fails() -> None:
    ct = crypto.encrypt_bytes(os.urandom(64 * 3), KEY, chunk_size=64, **CTX)
    head, chunks = _split(ct, 64)
    with pytest.raises(DecryptionError, match="chunk 1"):
        crypto.decrypt_bytes(head + b"".join(chunks[:2]), KEY, **CTX)


def test_chunk_from_another_stream_fails() -> None:
    a = crypto.encrypt_bytes(os.urandom(128), KEY, chunk_size=64, **CTX)
    b = crypto.encrypt_bytes(os.urandom(128), KEY, chunk_size=64, **CTX)
    ha, ca = _split(a, 64)
    _, cb = _split(b, 64)
    with pytest.raises(DecryptionError):
        crypto.decrypt_bytes(ha + ca[0] + cb[1], KEY, **CTX)


@pytest.mark.parametrize("pos", [0, 6, crypto.HEADER_SIZE - 1, crypto.HEADER_SIZE + 5, -1])
def test_flipped_bit_anywhere_fails(pos: int) -> None:
    ct = bytearray(crypto.encrypt_bytes(os.urandom(100), KEY, chunk_size=64, **CTX))
    ct[pos] ^= 1
    with pytest.raises(DecryptionError):
        crypto.decrypt_bytes(bytes(ct), KEY, **CTX)


def test_short_or_foreign_input_has_clear_message() -> None:
    with pytest.raises(DecryptionError, match="shorter than the header"):
        crypto.decrypt_bytes(b"abc", KEY, **CTX)
    with pytest.raises(DecryptionError, match="bad magic"):
        crypto.decrypt_bytes(b"\0" * 100, KEY, **CTX)


def test_bad_key_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        crypto.encrypt_bytes(b"x", b"short", **CTX)


def test_file_roundtrip_streams(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "p").write_bytes(data)
    n = crypto.encrypt_file(tmp_path / "p", tmp_path / "c", KEY, chunk_size=4096, **CTX)
    assert n == (tmp_path / "c").stat().st_size == crypto.ciphertext_size(len(data), 4096)
    got = crypto.decrypt_file(tmp_path / "c", tmp_path / "out" / "p2", KEY, **CTX)
    assert got == len(data)
    assert (tmp_path / "out" / "p2").read_bytes() == data


def test_failed_file_decryption_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "p").write_bytes(os.urandom(10_000))
    crypto.encrypt_file(tmp_path / "p", tmp_path / "c", KEY, chunk_size=1024, **CTX)
    ct = (tmp_path / "c").read_bytes()
    (tmp_path / "c").write_bytes(ct[:-1])  # corrupt the LAST chunk: earlier chunks decrypt fine
    out = tmp_path / "plain"
    with pytest.raises(DecryptionError, match=str(tmp_path / "c")):
        crypto.decrypt_file(tmp_path / "c", out, KEY, **CTX)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "p"]


def test_failed_decryption_keeps_existing_destination(tmp_path: Path) -> None:
    (tmp_path / "c").write_bytes(b"garbage" * 10)
    (tmp_path / "plain").write_bytes(b"old")
    with pytest.raises(DecryptionError):
        crypto.decrypt_file(tmp_path / "c", tmp_path / "plain", KEY, **CTX)
    assert (tmp_path / "plain").read_bytes() == b"old"


def test_shard_keys_are_derived_per_job_and_index_and_open_only_their_shard() -> None:
    job_key = crypto.generate_data_key()
    k0, k1 = crypto.shard_key(job_key, "ab" * 32, 0), crypto.shard_key(job_key, "ab" * 32, 1)
    assert len(k0) == 32 and len({k0, k1, job_key, crypto.shard_key(job_key, "cd" * 32, 0)}) == 4
    assert crypto.shard_key(job_key, "ab" * 32, 0) == k0  # deterministic: the requester re-derives it
    ct = crypto.encrypt_bytes(b"shard one", k1, job_id="ab" * 32, shard_index=1)
    assert crypto.decrypt_bytes(ct, k1, job_id="ab" * 32, shard_index=1) == b"shard one"
    with pytest.raises(DecryptionError):
        crypto.decrypt_bytes(ct, k0, job_id="ab" * 32, shard_index=1)

"""The foundation's promise: contracts deploy through web3, bytes round-trip through IPFS."""

from __future__ import annotations

import base64
import hashlib

import ipfshttpclient

from veritrain.artifacts import abi
from veritrain.dev.accounts import dev_account
from veritrain.dev.deploy import deploy_local


def cidv1_raw(data: bytes) -> str:
    """CIDv1, raw codec, sha2-256, base32 — for a single block (< 256 KiB)."""
    digest = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(digest).decode().lower().rstrip("=")


def test_deploy_dev_token_and_mint(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    w3 = fresh_chain
    deployer, user = dev_account(0), dev_account(1)
    deployment = deploy_local(w3, deployer)
    assert deployment.chain_id == 31337
    token = w3.eth.contract(address=deployment.address("DevToken"), abi=abi("DevToken"))
    assert token.functions.symbol().call() == "VTD"
    before = token.functions.balanceOf(user.address).call()
    tx = token.functions.mint(user.address, 123).build_transaction(
        {"from": deployer.address, "nonce": w3.eth.get_transaction_count(deployer.address)})
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction))
    assert token.functions.balanceOf(user.address).call() == before + 123


def test_ipfs_roundtrip_cid_v1_raw_base32(ipfs) -> None:  # type: ignore[no-untyped-def]
    client = ipfshttpclient.Client(ipfs.url)
    data = b"veritrain foundation " + bytes(range(256)) * 10
    cid = client.add_bytes(data, opts={"cid-version": 1, "raw-leaves": True, "cid-base": "base32"})
    assert cid == cidv1_raw(data)
    assert client.cat(cid) == data

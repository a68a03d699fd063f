"""Shared fixtures: an isolated real stack (Anvil + IPFS) on free ports, torn down always.

The same code as `veritrain dev up` starts it (veritrain.dev.stack), under a temporary
home, so the suite runs twice in a row and beside a running `dev up` stack. Each service
starts only when a test asks for it. Fixture-level reuse: tests that change chain state
take an `evm_snapshot` and revert (see the `fresh_chain` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from veritrain.dev import procs
from veritrain.dev.stack import Service, Stack
from veritrain.settings import StackSettings

ROOT = Path(__file__).resolve().parents[1]


def _start(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Stack, Service]]:
    home = tmp_path_factory.mktemp(f"stack-{name}")
    settings = StackSettings(
        home=home,
        anvil_port=procs.free_port(),
        ipfs_api_port=procs.free_port(),
        anvil_state_interval=0,
        block_time=0,  # automine only: tests move time themselves (evm_increaseTime)
    )
    stack = Stack(settings)
    state = stack.up(services=(name,))
    try:
        yield stack, state.services[name]
    finally:
        stack.down()


@pytest.fixture(scope="session")
def anvil_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Service]]:
    yield from _start(tmp_path_factory, "anvil")


@pytest.fixture(scope="session")
def anvil(anvil_stack: tuple[Stack, Service]) -> Service:
    """The session's Anvil (chain id 31337, 20 funded dev accounts)."""
    return anvil_stack[1]


@pytest.fixture(scope="session")
def ipfs_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Service]]:
    yield from _start(tmp_path_factory, "ipfs")


@pytest.fixture(scope="session")
def ipfs(ipfs_stack: tuple[Stack, Service]) -> Service:
    """The session's IPFS daemon; ``ipfs.url`` is its RPC multiaddr."""
    return ipfs_stack[1]


@pytest.fixture(scope="session")
def w3(anvil: Service):  # type: ignore[no-untyped-def]
    from web3 import HTTPProvider, Web3

    return Web3(HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))


@pytest.fixture
def fresh_chain(w3):  # type: ignore[no-untyped-def]
    """Revert the chain to where it was when the test started."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield w3
    w3.provider.make_request("evm_revert", [snap])

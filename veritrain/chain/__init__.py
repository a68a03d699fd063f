"""The typed chain client.

``veritrain.chain.client`` imports web3 (~2 s), so the names below load on first use:
``from veritrain.chain import ChainClient`` costs the import, ``veritrain.chain.states``
(the contracts' enums) does not.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veritrain.chain.client import ChainClient
    from veritrain.chain.contracts import BoundContract, bind
    from veritrain.chain.events import Event, EventPoller

_LAZY = {
    "ChainClient": "veritrain.chain.client",
    "BoundContract": "veritrain.chain.contracts",
    "bind": "veritrain.chain.contracts",
    "Event": "veritrain.chain.events",
    "EventPoller": "veritrain.chain.events",
}

__all__ = ["BoundContract", "ChainClient", "Event", "EventPoller", "bind"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'veritrain.chain' has no attribute {name!r}")

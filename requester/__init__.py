"""Veritrain requester role. Imports veritrain, never the other roles.

``from requester import Requester`` is lazy: importing the package costs nothing (no web3,
no torch) until the SDK is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Job", "Requester"]


def __getattr__(name: str) -> Any:
    if name in ("Requester", "Job"):
        from requester import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'requester' has no attribute {name!r}")

"""Veritrain: the shared core every role (worker, requester, verifier) imports.

Nothing happens at import time: no logging setup, no network, no torch import.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Canonical bytes every format shares: RFC 8785 JSON (JCS) and seed derivation.

- :func:`jcs` is the JSON Canonicalization Scheme (RFC 8785): keys sorted by UTF-16 code
  units, no whitespace, strings with the minimal escapes, numbers as ECMAScript prints an
  IEEE 754 double (``1.0`` -> ``1``, ``1e-8`` -> ``1e-8``, ``1e21`` -> ``1e+21``). Integers
  beyond +-(2**53 - 1) and NaN/infinity have no JCS form and are refused. Every JSON that is
  hashed (the JobSpec digest, the job document, ``shardsRoot``, checkpoint headers, the
  manifest, seed labels) goes through it: docs/spec/README.md section 2.
- :func:`derive_seed` is the one seed derivation: the first 8 bytes of
  ``sha256(JCS([seed, *labels]))`` read big-endian, masked to 63 bits (docs/spec, section 4).
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1


def jcs(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (dict, list, str, int, float, bool, None).

    Raises ValueError (naming the value) for what JSON cannot say canonically: NaN or an
    infinity, an integer outside +-(2**53 - 1), a non-string key, another type.
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"not canonical JSON (RFC 8785): {exc}") from None


def derive_seed(seed: int, *labels: int | str) -> int:
    """A 63-bit seed: ``int.from_bytes(sha256(JCS([seed, *labels]))[:8], "big") & (2**63 - 1)``."""
    digest = hashlib.sha256(jcs([seed, *labels])).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)

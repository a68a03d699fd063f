"""One exception tree for the whole product.

Every error a user can cause or meet derives from :class:`VeritrainError`. Subclasses also
inherit the matching built-in (``SpecError`` is a ``ValueError``) so generic handlers still
work. Messages say what was wrong and what to do about it; the CLI prints them as one line.
"""

from __future__ import annotations


class VeritrainError(Exception):
    """Root of every error Veritrain raises on purpose."""


class ConfigError(VeritrainError, ValueError):
    """A setting, path or environment variable is missing or invalid."""


class SetupError(VeritrainError, RuntimeError):
    """A required tool (node_modules, the compiler, a binary) is not installed."""


class StackError(VeritrainError, RuntimeError):
    """The local development stack (Anvil, IPFS) could not be started, reached or stopped."""


class PortInUseError(StackError):
    """A port the stack needs is already taken by another process."""


class SpecError(VeritrainError, ValueError):
    """A JobSpec is malformed; ``problems`` lists every ``path: message`` found."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        body = "; ".join(self.problems) if self.problems else "unknown problem"
        super().__init__(f"invalid job spec{where}: {body}")


class DataError(VeritrainError, ValueError):
    """A dataset or shard is malformed (wrong shape, NaN, label out of range, bad format)."""


class IntegrityError(VeritrainError, ValueError):
    """Bytes do not match the hash, CID or authentication tag they were promised to match."""


class DecryptionError(IntegrityError):
    """Ciphertext failed authentication: tampered, truncated, reordered or a wrong key."""


class StorageError(VeritrainError, IOError):
    """The storage backend (IPFS) could not be reached or refused an operation."""


class ChainError(VeritrainError, RuntimeError):
    """The RPC node could not be reached, or a transaction failed outside the contract's rules."""


class ContractRevert(ChainError):
    """A contract call reverted with a custom error; ``name`` and ``args`` are the decoded error."""

    def __init__(self, name: str, args: dict[str, object] | None = None, tx: str | None = None):
        self.name = name
        self.args_ = dict(args or {})
        self.tx = tx
        inner = ", ".join(f"{k}={v}" for k, v in self.args_.items())
        super().__init__(f"contract reverted with {name}({inner})")


class ReplayProfileError(VeritrainError, RuntimeError):
    """This machine cannot honour a job's replay profile; the message names the setting."""


class CheckpointFormatError(VeritrainError, ValueError):
    """Bytes are not a canonical Veritrain checkpoint (bad magic, version, header or lengths)."""


class ManifestError(VeritrainError, ValueError):
    """A worker's manifest is malformed or inconsistent (e.g. its root is not the hashes' root)."""

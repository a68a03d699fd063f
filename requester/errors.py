"""The requester's user errors (all :class:`~veritrain.errors.VeritrainError`: the CLI prints
one line and exits 1)."""

from __future__ import annotations

from veritrain.errors import IntegrityError, VeritrainError


class UnknownJobError(VeritrainError, LookupError):
    """No such job on-chain, or none posted by this requester from this machine."""


class InsufficientFundsError(VeritrainError, ValueError):
    """The requester's token balance (or gas money) cannot pay the job's escrow."""


class JobNotReadyError(VeritrainError, RuntimeError):
    """The job has tasks without a final result yet (``result()`` before they finalize)."""


class JobTimeoutError(VeritrainError, TimeoutError):
    """``job.wait(timeout=...)`` ran out of time."""


class ResultIntegrityError(IntegrityError):
    """A worker's manifest or checkpoint does not match the root committed on-chain."""


class UnsupportedError(VeritrainError, NotImplementedError):
    """A spec asks for something this requester cannot run yet (it says what and why)."""


class DataWarning(UserWarning):
    """The dataset is usable but likely to train badly (e.g. unscaled features); the CLI prints
    it as one ``warning: ...`` line."""


class StakeWarning(UserWarning):
    """The stake per task is below what makes cheating unprofitable given the verifiers watching
    (docs/economics.md); the CLI prints it as one ``warning: ...`` line."""

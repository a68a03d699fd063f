"""``IpfsStorage``: the Kubo RPC API (also served by js-ipfs), through ipfshttpclient.

The client is constructed directly (``ipfshttpclient.Client(addr)``): ``connect()`` refuses
daemons newer than 0.7 (toolchain.md). Every add uses CIDv1, raw leaves and base32, so
the CIDs match :mod:`veritrain.storage.cid`; every read is verified by the base class.
Transient failures (connection refused or reset, timeouts — a restarting daemon) are
retried with exponential backoff for ``retry_seconds``, then raise StorageError naming the
API address.

Pins, as Kubo's RPC API has them: ``pin/add`` and ``pin/rm`` (``POST /api/v0/pin/add?arg=CID``,
``.../pin/rm?arg=CID``; every add pins too). With a remote pinning service
(:class:`veritrain.storage.pinning.PinningService`: given, or ``VERITRAIN_PINNING_ENDPOINT``
and ``VERITRAIN_PINNING_TOKEN``), everything added or pinned is also pinned there, and
:meth:`IpfsStorage.unpin` removes both pins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from veritrain.errors import StorageError
from veritrain.retry import with_backoff
from veritrain.storage.base import Storage, StorageUnreachableError, check_cid
from veritrain.storage.cid import CHUNK_SIZE, Cid

T = TypeVar("T")
#: HTTP body piece size for uploads (the library default, 8 KiB, costs CPU on large files).
UPLOAD_CHUNK = 1 << 20

ADD_OPTS = {
    "cid-version": 1,
    "raw-leaves": True,
    "cid-base": "base32",
    "chunker": f"size-{CHUNK_SIZE}",
    "pin": True,
}


class IpfsStorage(Storage):
    def __init__(
        self,
        api: str = "/ip4/127.0.0.1/tcp/5001/http",
        *,
        retry_seconds: float = 20.0,
        backoff: float = 0.1,
        fetch_timeout: float = 120.0,
        has_timeout: float = 1.0,
        pinning: Any = None,
    ) -> None:
        import warnings

        # ipfshttpclient passes urllib3 a `strict` argument it no longer needs: a FutureWarning
        # on every command that touches IPFS, which says nothing to a user
        warnings.filterwarnings("ignore", message=".*'strict' parameter is no longer needed",
                                category=FutureWarning)
        import ipfshttpclient  # lazy: keeps CLI start-up fast

        self.api = api
        self.where = f"IPFS node at {api}"
        self.retry_seconds = retry_seconds
        self.backoff = backoff
        self.fetch_timeout = fetch_timeout
        self.has_timeout = has_timeout
        try:
            self._client: Any = ipfshttpclient.Client(api, chunk_size=UPLOAD_CHUNK)
        except ipfshttpclient.exceptions.AddressError as exc:
            raise StorageError(f"invalid IPFS API address {api!r}: {exc}; use e.g. "
                               "/ip4/127.0.0.1/tcp/5001/http") from None
        self._exc = ipfshttpclient.exceptions
        from veritrain.storage.pinning import PinningService

        #: The remote pinning service, if any (see the module doc).
        self.pinning: PinningService | None = pinning if pinning is not None else PinningService.from_env()

    # ---------------------------------------------------------------------------- retry
    def _attempt(self, fn: Callable[[], T], what: str) -> T:
        def give_up(exc: BaseException, attempts: int) -> StorageError:
            if isinstance(exc, self._exc.ConnectionError):
                return StorageUnreachableError(
                    f"{what}: the IPFS node at {self.api} is unreachable (no answer after {attempts} "
                    f"attempts over {self.retry_seconds:.0f} s); start it (`veritrain dev up --only ipfs` "
                    "on the local stack) or set VERITRAIN_IPFS_API"
                )
            return StorageError(
                f"{what}: the IPFS node at {self.api} did not answer after {attempts} "
                f"attempts over {self.retry_seconds:.0f} s ({type(exc).__name__}); is the "
                "daemon running (`veritrain dev up`) and VERITRAIN_IPFS_API right?"
            )

        try:
            return with_backoff(
                fn,
                transient=(self._exc.ConnectionError, self._exc.TimeoutError, self._exc.ProtocolError),
                seconds=self.retry_seconds,
                backoff=self.backoff,
                give_up=give_up,
            )
        except self._exc.ErrorResponse as exc:
            raise self._error(exc, what) from exc

    def _error(self, exc: Exception, what: str) -> StorageError:
        msg = str(exc)
        if "timed out" in msg:
            return StorageError(
                f"{what}: the IPFS node at {self.api} could not find the content within "
                f"{self.fetch_timeout:.0f} s; check the CID and that the uploader still serves it"
            )
        return StorageError(f"{what}: the IPFS node at {self.api} refused: {msg}")

    # ----------------------------------------------------------------------- primitives
    def _add(self, chunks: Iterable[bytes]) -> str:
        data: Any = chunks if not isinstance(chunks, list) else b"".join(chunks)
        cid = str(self._client.add_bytes(data, opts=ADD_OPTS))
        if self.pinning is not None:
            self.pinning.ensure(cid)
        return cid

    def _cat(self, cid: Cid) -> Iterator[bytes]:
        opts = {"timeout": f"{self.fetch_timeout:g}s"}
        yield from self._client._client.request("/cat", (cid,), opts=opts, stream=True)

    def pin(self, cid: str) -> None:
        cid = check_cid(cid)
        self._attempt(lambda: self._client.pin.add(cid, opts={"timeout": f"{self.fetch_timeout:g}s"}),
                      f"pinning {cid}")
        if self.pinning is not None:
            self.pinning.ensure(cid)

    def unpin(self, cid: str) -> None:
        """Let ``cid`` be garbage-collected here (``pin/rm``; not pinned is no error) and remove
        its remote pins."""
        cid = check_cid(cid)

        def attempt() -> None:
            try:
                self._client.pin.rm(cid)
            except self._exc.ErrorResponse as exc:
                if "not pinned" not in str(exc):
                    raise

        self._attempt(attempt, f"unpinning {cid}")
        if self.pinning is not None:
            self.pinning.remove_all(cid)

    def pinned(self, cid: str) -> bool:
        """Whether ``cid`` is pinned here (``pin/ls --arg CID``)."""
        cid = check_cid(cid)

        def attempt() -> bool:
            try:  # asked for one CID, the node lists it (in its own base: js-ipfs says z...) or refuses
                return len(self._client.pin.ls(cid)["Keys"]) == 1
            except self._exc.ErrorResponse as exc:
                if "not pinned" in str(exc):
                    return False
                raise

        return self._attempt(attempt, f"listing the pin of {cid}")

    def has(self, cid: str) -> bool:
        cid = check_cid(cid)

        def attempt() -> bool:
            try:
                self._client._client.request(
                    "/block/stat", (cid,), opts={"timeout": f"{int(self.has_timeout * 1000)}ms",
                                                 "offline": "true"},
                    decoder="json", timeout=self.has_timeout + 10,
                )
            except self._exc.ErrorResponse:
                return False
            return True

        return self._attempt(attempt, f"checking {cid}")

    def version(self) -> str:
        """The daemon's version string (a cheap liveness probe)."""
        return str(self._attempt(lambda: self._client.version()["Version"], "asking the version"))

"""A client of the IPFS Pinning Service API (https://ipfs.github.io/pinning-services-api-spec/),
the standard hosted pinning services implement, for requesters and workers who do not keep a
node online all day.

    service = PinningService("https://pin.example/psa", token)      # or PinningService.from_env()
    status = service.add(cid, name="checkpoint 3")                 # POST /pins
    service.wait(status.requestid)                                 # GET /pins/{requestid}
    service.find(cid)                                              # GET /pins?cid=...&status=...
    service.remove(status.requestid)                               # DELETE /pins/{requestid}

Every request carries ``Authorization: Bearer <token>``; an error reply (``{"error": {"reason",
"details"}}``) raises one :class:`~veritrain.errors.StorageError` naming the service and the
reason. ``IpfsStorage`` uses it when given one, or when ``VERITRAIN_PINNING_ENDPOINT`` and
``VERITRAIN_PINNING_TOKEN`` are set: every CID it stores is pinned remotely as well, and
``unpin`` removes the remote pins too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import requests

from veritrain.errors import ConfigError, StorageError

#: Statuses of a pin request (the spec's ``Status``).
STATUSES = ("queued", "pinning", "pinned", "failed")


@dataclass(frozen=True)
class PinStatus:
    requestid: str
    status: str
    cid: str
    name: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> PinStatus:
        try:
            pin = body["pin"]
            return cls(str(body["requestid"]), str(body["status"]), str(pin["cid"]), pin.get("name"))
        except (KeyError, TypeError):
            raise StorageError(f"the pinning service answered a malformed PinStatus: "
                               f"{str(body)[:200]}") from None


class PinningService:
    def __init__(self, endpoint: str, token: str, *, timeout: float = 30.0) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"pinning service endpoint {endpoint!r} must be an http(s) URL")
        if not token:
            raise ConfigError("the pinning service needs an access token (VERITRAIN_PINNING_TOKEN)")
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_env(cls) -> PinningService | None:
        """The service named by ``VERITRAIN_PINNING_ENDPOINT`` (+ ``_TOKEN``), or None."""
        endpoint = os.environ.get("VERITRAIN_PINNING_ENDPOINT")
        if not endpoint:
            return None
        return cls(endpoint, os.environ.get("VERITRAIN_PINNING_TOKEN", ""))

    def _call(self, method: str, path: str, what: str, **kw: Any) -> Any:
        url = self.endpoint + path
        try:
            reply = self._session.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise StorageError(f"{what}: the pinning service at {self.endpoint} did not answer "
                               f"({type(exc).__name__})") from None
        if reply.status_code >= 400:
            try:
                err = reply.json()["error"]
                reason = f"{err['reason']}" + (f": {err['details']}" if err.get("details") else "")
            except (ValueError, KeyError, TypeError):
                reason = reply.text[:200]
            raise StorageError(f"{what}: the pinning service at {self.endpoint} refused "
                               f"(HTTP {reply.status_code} {reason})")
        return reply.json() if reply.content else None

    def add(self, cid: str, *, name: str | None = None, origins: list[str] | None = None) -> PinStatus:
        body: dict[str, Any] = {"cid": cid}
        if name:
            body["name"] = name
        if origins:
            body["origins"] = origins
        return PinStatus.from_json(self._call("POST", "/pins", f"pinning {cid} remotely", json=body))

    def status(self, requestid: str) -> PinStatus:
        what = f"reading pin request {requestid}"
        return PinStatus.from_json(self._call("GET", f"/pins/{requestid}", what))

    def find(self, cid: str, statuses: tuple[str, ...] = STATUSES) -> list[PinStatus]:
        """Every pin request of ``cid`` in one of ``statuses`` (the spec lists only ``pinned``
        when no status is given, so they are always named)."""
        params = {"cid": cid, "status": ",".join(statuses), "limit": 1000}
        body = self._call("GET", "/pins", f"listing the remote pins of {cid}", params=params)
        return [PinStatus.from_json(r) for r in body.get("results", [])]

    def remove(self, requestid: str) -> None:
        self._call("DELETE", f"/pins/{requestid}", f"removing pin request {requestid}")

    def wait(self, requestid: str, timeout: float = 120.0, poll: float = 0.5) -> PinStatus:
        """Poll until the request is ``pinned`` (returned) or ``failed`` (StorageError)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(requestid)
            if st.status == "pinned":
                return st
            if st.status == "failed":
                raise StorageError(f"the pinning service at {self.endpoint} failed to pin {st.cid}")
            if time.monotonic() > deadline:
                raise StorageError(f"the pinning service at {self.endpoint} has not pinned {st.cid} "
                                   f"within {timeout:.0f} s (status {st.status})")
            time.sleep(poll)

    def ensure(self, cid: str, *, name: str | None = None) -> PinStatus:
        """A live request for ``cid`` (an existing one, else a new one): pinning twice costs nothing."""
        live = [p for p in self.find(cid) if p.status != "failed"]
        return live[0] if live else self.add(cid, name=name)

    def remove_all(self, cid: str) -> int:
        """Remove every request of ``cid``; how many there were."""
        found = self.find(cid)
        for p in found:
            self.remove(p.requestid)
        return len(found)

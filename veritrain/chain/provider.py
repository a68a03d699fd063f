"""An HTTP JSON-RPC provider that behaves well against hosted providers.

- Several URLs, used in order: a connection that fails or times out moves to the next URL
  (a *failover*); the failed one is tried again only after the others.
- Rate limits (HTTP 429, or a JSON-RPC error saying "limit exceeded" / "rate limit", code
  -32005) are waited out with backoff and the same request is sent again, so no progress is lost.
- ``stats`` counts both, for reports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests
from web3 import HTTPProvider

_RATE_LIMIT_WORDS = ("limit exceeded", "rate limit", "too many requests")


def is_rate_limited(response: Any) -> bool:
    err = response.get("error") if isinstance(response, dict) else None
    if not isinstance(err, dict):
        return False
    msg = str(err.get("message", "")).lower()
    return err.get("code") == -32005 or any(w in msg for w in _RATE_LIMIT_WORDS)


class FailoverProvider(HTTPProvider):
    def __init__(self, urls: Sequence[str], *, request_timeout: float = 30.0,
                 rate_limit_seconds: float = 60.0, backoff: float = 0.1) -> None:
        self.urls = list(urls)
        super().__init__(self.urls[0], request_kwargs={"timeout": request_timeout},
                         exception_retry_configuration=None)  # we fail over instead
        self._index = 0
        self.rate_limit_seconds = rate_limit_seconds
        self.backoff = backoff
        self.stats = {"rate_limited": 0, "failovers": 0, "requests": 0}

    @property
    def url(self) -> str:
        return self.urls[self._index]

    def _fail_over(self) -> None:
        self._index = (self._index + 1) % len(self.urls)
        self.endpoint_uri = self.urls[self._index]  # type: ignore[assignment]
        self.stats["failovers"] += 1

    def make_request(self, method: Any, params: Any) -> Any:
        deadline = time.monotonic() + self.rate_limit_seconds
        delay = self.backoff
        tried = 0
        while True:
            self.stats["requests"] += 1
            try:
                response = super().make_request(method, params)
            except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError):
                tried += 1
                if len(self.urls) > 1:
                    self._fail_over()
                if tried >= len(self.urls):
                    raise  # every URL failed once: the caller's retry decides whether to wait
                continue
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status != 429 or time.monotonic() + delay > deadline:
                    raise
                response = {"error": {"code": 429, "message": "too many requests"}}
            if not is_rate_limited(response) or time.monotonic() + delay > deadline:
                return response
            self.stats["rate_limited"] += 1
            time.sleep(delay)
            delay = min(2 * delay, 2.0)

"""HTTP for the exporter: one client, retries per the OTLP specification, the embedded app.

429, 502, 503 and 504 answers and network errors are retried with exponential backoff
(``Retry-After`` honoured, capped); any other answer is final. Runs on the exporter thread (or
in the caller of ``flush()``), never on the application's hot path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from passerelle.core.settings import Settings

EMBEDDED_URL = "http://passerelle.embedded"
RETRYABLE = frozenset((429, 502, 503, 504))


class Sender:
    """POSTs to one server (or to the in-process app) with the API key and the retry policy."""

    def __init__(
        self,
        url: str | None,
        api_key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        transport_factory: Callable[[], httpx.BaseTransport] | None = None,
        timeout: float = 10.0,
        max_retries: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._transport = transport
        self._transport_factory = transport_factory
        self.timeout = timeout
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._http: httpx.Client | None = None

    def post(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float | None,
        stop: threading.Event,
    ) -> tuple[httpx.Response | None, str]:
        """The final answer (and ``""``), or ``None`` and the last reason when every attempt
        failed. Gives up early past ``deadline`` or once ``stop`` is set (shutting down)."""
        delay = self.initial_backoff
        attempt = 0
        while True:
            try:
                resp = self.client().post(path, content=body, headers=headers)
            except Exception as exc:  # network errors, and a transport that cannot be built
                reason = f"{type(exc).__name__}: {exc}"
                wait = delay
            else:
                if resp.status_code not in RETRYABLE:
                    return resp, ""
                reason = f"HTTP {resp.status_code}"
                wait = retry_after(resp, delay, self.max_backoff)
            attempt += 1
            late = deadline is not None and time.monotonic() + wait > deadline
            if attempt > self.max_retries or late or stop.is_set():
                return None, reason
            stop.wait(wait)
            delay = min(delay * 2, self.max_backoff)

    def client(self) -> httpx.Client:
        """The httpx client, built on first use (the embedded app is built here, off the
        application's thread)."""
        if self._http is None:
            transport = self._transport
            if transport is None and self._transport_factory is not None:
                transport = self._transport_factory()
            headers = {"User-Agent": "passerelle-sdk"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            self._http = httpx.Client(
                base_url=self.url or EMBEDDED_URL,
                headers=headers,
                transport=transport,
                timeout=self.timeout,
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def forget(self) -> None:
        """In a forked child: drop the parent's connections without closing them."""
        self._http = None


def retry_after(resp: httpx.Response, default: float, cap: float) -> float:
    value = resp.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), max(cap, 30.0))
    except ValueError:
        return default


def embedded_transport(settings: Settings) -> httpx.BaseTransport:
    """The in-process app, built on the exporter thread when the first batch leaves.

    The SDK's default client already runs one embedded app on these files: spans go to that
    same app rather than to a second one sharing its database and spool.
    """
    from passerelle.sdk.client import default_client

    try:
        client = default_client()
        shared = client.transport if client.embedded else None
        if shared is not None and client.settings.home.resolve() == settings.home.resolve():
            return shared
    except Exception:  # the default client cannot be built: build the app here instead
        pass
    from passerelle.app import create_app
    from passerelle.core.settings import AuthMode
    from passerelle.sdk.transport import InProcessTransport

    local = settings.model_copy(update={"host": "127.0.0.1", "auth": AuthMode.OFF})
    return InProcessTransport(create_app(local))

"""Background batching of metric values for one client.

``log_metric`` only appends to a list; a daemon thread sends batches every
``log_flush_interval`` seconds or as soon as ``log_batch_size`` values wait. Transient failures
(network, 5xx) keep the values for the next attempt; a rejection by the server (4xx) is kept and
raised when the run ends, so an error is never hidden and nothing is dropped silently.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from passerelle.core.errors import PasserelleError
from passerelle.sdk.client import Client


class MetricBatcher:
    def __init__(self, client: Client, run_id: str, *, interval: float, batch_size: int) -> None:
        self.client = client
        self.run_id = run_id
        self.interval = interval
        self.batch_size = batch_size
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.error: PasserelleError | None = None
        self._thread = threading.Thread(
            target=self._loop, name=f"passerelle-metrics-{run_id[:8]}", daemon=True
        )
        self._thread.start()

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending.extend(rows)
            full = len(self._pending) >= self.batch_size
        if full:
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._send_all()
            except Exception:  # transient: the values stay queued for the next attempt
                time.sleep(min(self.interval, 1.0))

    def _send_all(self) -> None:
        with self._send_lock:
            while True:
                with self._lock:
                    batch = self._pending[: self.batch_size]
                if not batch:
                    return
                try:
                    self.client.log_metric_batch(self.run_id, batch)
                except PasserelleError as exc:
                    if getattr(exc, "status", 500) >= 500:
                        raise
                    self.error = self.error or exc  # rejected: keep the first cause
                with self._lock:
                    del self._pending[: len(batch)]

    def flush(self, retries: int = 5) -> None:
        """Send everything queued now; retry transient failures, then give up loudly."""
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                self._send_all()
                break
            except (httpx.TransportError, PasserelleError) as exc:
                if attempt == retries:
                    with self._lock:
                        n = len(self._pending)
                    raise PasserelleError(
                        f"could not send {n} metric values of run {self.run_id}: {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()

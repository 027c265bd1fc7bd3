"""The span exporter: a bounded queue in memory, one background thread, OTLP over HTTP.

The application's side is ``export(obs)``: a lock, a length check and a ``deque.append``. It
never blocks and never raises; when the queue is full (by count or by bytes) the span is dropped
and counted, and a warning is logged once. The thread wakes every ``flush_interval`` seconds or
as soon as ``max_batch_size`` spans wait, encodes batches as OTLP protobuf and posts them to
``{url}/v1/traces``; 429/502/503/504 and network errors are retried with exponential backoff
(``Retry-After`` honoured), other refusals are counted as rejected. Scores go to
``/api/v1/scores`` the same way. ``flush()`` sends everything now; at interpreter exit the queue
is flushed for at most ``shutdown_timeout`` seconds.

The default queue holds 100,000 spans and 128 MiB of payload: a burst of tens of thousands of
small spans is kept whole while the thread catches up.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from passerelle.sdk.tracing.otlp_encode import encode_request, refusal_message, rejected_spans
from passerelle.sdk.tracing.sender import Sender, embedded_transport

if TYPE_CHECKING:
    from passerelle.core.settings import Settings
    from passerelle.sdk.tracing.span import Observation

log = logging.getLogger("passerelle.tracing")
PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class TracingStats:
    """What became of the spans and scores handed to one exporter."""

    queued: int  # waiting in memory now (including a batch being sent)
    exported: int  # accepted by the server
    dropped: int  # refused at the door: the queue was full
    failed: int  # given up after retries (server unreachable or overloaded), or at exit
    rejected: int  # refused by the server (4xx, or partial success)
    scores_sent: int
    scores_lost: int  # dropped, failed or rejected

    @property
    def lost(self) -> int:
        """Spans that will never reach the server."""
        return self.dropped + self.failed + self.rejected


class SpanExporter:
    """Batches ended observations to a passerelle server (or any OTLP/HTTP receiver).

    Args:
        url: the server's base URL; ``None`` with no ``transport``: the embedded app.
        api_key: sent as ``Authorization: Bearer``.
        transport: any httpx transport (tests, the in-process app); or ``transport_factory``,
            called on the exporter thread the first time something is sent.
        max_queue_size / max_queue_bytes: the bound of the queue (spans / payload bytes).
        max_batch_size: spans per request.
        flush_interval: seconds a span waits at most before the thread sends it.
        max_retries, initial_backoff, max_backoff: retry policy for retryable failures.
        timeout: seconds for one HTTP request.
        shutdown_timeout: seconds the interpreter's exit may wait for the last batches.
        resource: OTLP resource attributes (``service.name`` defaults to the script's name).
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        transport_factory: Callable[[], httpx.BaseTransport] | None = None,
        max_queue_size: int = 100_000,
        max_queue_bytes: int = 128 * 1024 * 1024,
        max_batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_scores: int = 10_000,
        max_retries: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 8.0,
        timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
        resource: dict[str, Any] | None = None,
    ) -> None:
        if max_queue_size < 1 or max_batch_size < 1:
            raise ValueError("max_queue_size and max_batch_size must be at least 1")
        self.url = (url or "").rstrip("/") or None
        self.sender = Sender(
            self.url,
            api_key,
            transport=transport,
            transport_factory=transport_factory,
            timeout=timeout,
            max_retries=max_retries,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
        )
        self.max_queue_size = max_queue_size
        self.max_queue_bytes = max_queue_bytes
        self.max_batch_size = max_batch_size
        self.flush_interval = flush_interval
        self.max_scores = max_scores
        self.shutdown_timeout = shutdown_timeout
        from passerelle import __version__

        self._version = __version__
        self.resource = {
            "service.name": _script_name(),
            "telemetry.sdk.name": "passerelle",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": __version__,
            **(resource or {}),
        }
        self._init_state()
        _EXPORTERS.add(self)

    def _init_state(self) -> None:
        self._queue: deque[Observation] = deque()
        self._scores: deque[dict[str, Any]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._in_flight = 0
        self._exported = self._dropped = self._failed = self._rejected = 0
        self._scores_sent = self._scores_lost = 0
        self._warned: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SpanExporter:
        """The exporter of ``PASSERELLE_URL`` / ``PASSERELLE_API_KEY``; embedded without a URL."""
        from passerelle.core.settings import Settings

        settings = settings or Settings()
        key = settings.api_key.get_secret_value() if settings.api_key else None
        factory = None if settings.url else (lambda: embedded_transport(settings))
        return cls(
            settings.url,
            key,
            transport_factory=factory,
            max_queue_size=settings.tracing_queue_size,
            resource={"passerelle.project": settings.project},
        )

    # -- the application's side --------------------------------------------------------------
    def export(self, obs: Observation) -> bool:
        """Queue an ended observation; ``False`` when it was dropped. Never blocks or raises."""
        size = obs.payload_size()
        with self._lock:
            queue = self._queue
            if (
                len(queue) < self.max_queue_size
                and self._bytes + size <= self.max_queue_bytes
                and not self._closed
            ):
                queue.append(obs)
                self._bytes += size
                waiting = len(queue)
                dropped = 0
            else:
                self._dropped += 1
                dropped = self._dropped
        if dropped:
            if dropped == 1:
                self._warn(
                    "drop",
                    "passerelle tracing: the span queue is full (%d spans or %d bytes): "
                    "spans are being dropped; tracing_stats().dropped counts them",
                    self.max_queue_size,
                    self.max_queue_bytes,
                )
            return False
        if waiting == self.max_batch_size:
            self._wake.set()
        if self._thread is None:
            self._start_thread()
        return True

    def add_score(self, score: dict[str, Any]) -> bool:
        with self._lock:
            if len(self._scores) >= self.max_scores or self._closed:
                self._scores_lost += 1
                return False
            self._scores.append(score)
        if self._thread is None:
            self._start_thread()
        return True

    def stats(self) -> TracingStats:
        with self._lock:
            return TracingStats(
                queued=len(self._queue) + self._in_flight,
                exported=self._exported,
                dropped=self._dropped,
                failed=self._failed,
                rejected=self._rejected,
                scores_sent=self._scores_sent,
                scores_lost=self._scores_lost,
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued now, in the calling thread; ``True`` when nothing is left."""
        deadline = time.monotonic() + timeout
        if not self._export_lock.acquire(timeout=max(timeout, 0)):
            return False
        try:
            return self._drain(deadline)
        except Exception as exc:  # never into the application
            self._warn("flush", "passerelle tracing: flush failed: %s", exc)
            return False
        finally:
            self._export_lock.release()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the thread, send what is left within ``timeout``; later spans are dropped."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        self.flush(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
            left, left_scores = len(self._queue), len(self._scores)
            self._queue.clear()
            self._scores.clear()
            self._bytes = 0
            self._failed += left
            self._scores_lost += left_scores
        if left:
            self._warn("exit", "passerelle tracing: %d spans not sent before exit", left)
        self.sender.close()

    # -- the exporter thread --------------------------------------------------------------------
    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._run, name="passerelle-tracing", daemon=True
            )
        # At interpreter shutdown no thread can start: the flush at exit sends instead.
        with contextlib.suppress(RuntimeError):
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._export_lock:
                try:
                    self._drain(None)
                except Exception as exc:  # a bug must not kill the thread silently
                    self._warn("thread", "passerelle tracing: export failed: %r", exc)

    def _drain(self, deadline: float | None) -> bool:
        """Send batches until the queues are empty (or the deadline passes). Lock held."""
        while True:
            with self._lock:  # held briefly: the application's export() waits on it
                n = min(len(self._queue), self.max_batch_size)
                batch = [self._queue.popleft() for _ in range(n)]
                self._in_flight = n
                scores = [self._scores.popleft() for _ in range(min(len(self._scores), 500))]
            size = sum(obs.payload_size() for obs in batch)
            with self._lock:
                self._bytes -= size
            try:
                if batch:
                    self._send_spans(batch, deadline)
                if scores:
                    self._send_scores(scores, deadline)
            finally:
                with self._lock:
                    self._in_flight = 0
            if not batch and not scores:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    return not self._queue and not self._scores

    def _send_spans(self, batch: list[Observation], deadline: float | None) -> None:
        n = len(batch)
        try:
            body, bad = encode_request(batch, self.resource, self._version)
        except Exception as exc:
            self._count(failed=n)
            self._warn("encode", "passerelle tracing: could not encode spans: %r", exc)
            return
        if bad:
            self._count(failed=bad)
            self._warn("encode", "passerelle tracing: %d spans could not be encoded", bad)
            n -= bad
        resp, reason = self.sender.post(
            "/v1/traces", body, {"Content-Type": PROTOBUF}, deadline, self._stop
        )
        if resp is None:
            self._count(failed=n)
            self._warn("unreachable", "passerelle tracing: giving up spans (%s)", reason)
            return
        if resp.status_code >= 300:
            self._count(rejected=n)
            self._warn(
                f"status{resp.status_code}",
                "passerelle tracing: the server refused %d spans (%d): %s",
                n,
                resp.status_code,
                refusal_message(resp.content, resp.headers.get("content-type", ""))[:300],
            )
            return
        refused, why = rejected_spans(resp.content, resp.headers.get("content-type", ""))
        refused = min(refused, n)
        self._count(exported=n - refused, rejected=refused)
        if refused:
            message = "passerelle tracing: the server refused %d spans: %s"
            self._warn("partial", message, refused, why)

    def _send_scores(self, scores: list[dict[str, Any]], deadline: float | None) -> None:
        import orjson

        body = orjson.dumps({"scores": scores})
        headers = {"Content-Type": "application/json"}
        resp, reason = self.sender.post("/api/v1/scores", body, headers, deadline, self._stop)
        if resp is not None and resp.status_code < 300:
            self._count(scores_sent=len(scores))
            return
        self._count(scores_lost=len(scores))
        if resp is None:
            self._warn("scores", "passerelle tracing: giving up scores (%s)", reason)
        else:
            self._warn(
                f"scores{resp.status_code}",
                "passerelle tracing: the server refused %d scores (%d): %s",
                len(scores),
                resp.status_code,
                resp.text[:300],
            )

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, f"_{name}", getattr(self, f"_{name}") + delta)

    def _warn(self, key: str, message: str, *args: Any) -> None:
        """Log a problem once per kind: visible, never a flood."""
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning(message, *args)


def _script_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if name in ("-c", "-m", "-"):  # an inline script or a REPL: no name to give
        name = ""
    return name.removesuffix(".py") or "unknown_service:python"


# -- process life: flush at exit, a fresh state in a forked child --------------------------------
_EXPORTERS: weakref.WeakSet[SpanExporter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for exporter in list(_EXPORTERS):
        with contextlib.suppress(Exception):
            exporter.shutdown()


def _after_fork() -> None:
    # The child has copies of the parent's queue and locks but not its thread: start afresh.
    for exporter in list(_EXPORTERS):
        exporter.sender.forget()
        exporter._init_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)

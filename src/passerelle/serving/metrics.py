"""Prometheus metrics of the serving gateway, at ``/metrics``.

Per endpoint and model version: requests, errors by status class, a latency histogram, and the
number of rows of every model call (micro-batches included). Requests are counted by a pure ASGI
middleware that only looks at the two prediction routes (``/v1/endpoints/{name}/predict`` and
``/v2/models/{name}/infer``) and reads the version from the ``X-Model-Version`` header of the
answer; any other request passes through after one string comparison.

Each app has its own registry, so several apps can live in one process (tests). With several
worker processes (``passerelle server --workers N``) prometheus_client's multiprocess mode is on
(``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor before the workers start): every worker
writes its values to memory-mapped files in that folder and ``/metrics``, whichever worker
answers it, adds up all of them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passerelle.core.web import PrincipalDep

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536)
# A name in a URL is chosen by the caller: past this many distinct endpoint labels, the rest are
# counted together as "(other)" so that a client cannot grow the metrics without bound.
MAX_ENDPOINT_LABELS = 1000
UNKNOWN = "(unknown)"  # no such endpoint, or a caller without access: the name is not kept
OTHER = "(other)"


def multiprocess_dir() -> str | None:
    """The multiprocess folder when prometheus_client writes values to files, else None."""
    from prometheus_client import values

    path = os.environ.get(MULTIPROC_ENV)
    if path and values.ValueClass is not values.MutexValue:
        return path
    return None


class ServingMetrics:
    """The metric families of one app, and cached children per label set (cheap updates)."""

    def __init__(self) -> None:
        self.multiprocess_dir = multiprocess_dir()
        # In multiprocess mode values live in files, not in a registry: the families are
        # registered nowhere and /metrics collects the files of every worker.
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess_dir else self.registry
        labels = ("endpoint", "version")
        self.requests = Counter(
            "passerelle_serving_requests",
            "Prediction requests answered, by endpoint and model version.",
            labels,
            registry=registry,
        )
        self.errors = Counter(
            "passerelle_serving_errors",
            "Prediction requests answered with an error, by status class (4xx, 5xx).",
            (*labels, "status_class"),
            registry=registry,
        )
        self.latency = Histogram(
            "passerelle_serving_request_duration_seconds",
            "Time from the request to the last byte of the answer, in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "passerelle_serving_batch_rows",
            "Rows per model call (micro-batches of concurrent requests count as one call).",
            labels,
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._request_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._batch_children: dict[tuple[str, int], Any] = {}
        self._labels: set[str] = set()

    def _endpoint_label(self, name: str) -> str:
        if name in self._labels:
            return name
        if len(self._labels) >= MAX_ENDPOINT_LABELS:
            return OTHER
        self._labels.add(name)
        return name

    def observe_request(self, endpoint: str, version: str, status: int, seconds: float) -> None:
        if not version and status in (401, 403, 404):
            endpoint = UNKNOWN  # no such endpoint, or not the caller's to know about
        label = self._endpoint_label(endpoint)
        children = self._request_children.get((label, version))
        if children is None:
            children = self._request_children[(label, version)] = (
                self.requests.labels(label, version),
                self.latency.labels(label, version),
            )
        children[0].inc()
        children[1].observe(seconds)
        if status >= 400:
            self.errors.labels(label, version, "5xx" if status >= 500 else "4xx").inc()

    def observe_batch(self, endpoint: str, version: int, rows: int) -> None:
        key = (endpoint, version)
        child = self._batch_children.get(key)
        if child is None:
            child = self._batch_children[key] = self.batch_rows.labels(
                self._endpoint_label(endpoint), str(version)
            )
        child.observe(rows)

    def render(self) -> bytes:
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry)


def prediction_endpoint(path: str) -> str | None:
    """The endpoint name of a prediction route, or None for any other path."""
    if path.startswith("/v1/endpoints/"):
        if path.endswith("/predict"):
            name = path[14:-8]
            return name if name and "/" not in name else None
    elif path.startswith("/v2/models/") and path.endswith("/infer"):
        name = path[11:-6]
        return name if name and "/" not in name else None
    return None


class MetricsMiddleware:
    """Counts prediction requests and times them up to the last byte of the answer.

    Background work that runs after the answer (shadow versions) is not part of the latency.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        endpoint = prediction_endpoint(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        version = ""
        done = False

        async def send_and_watch(message: Message) -> None:
            nonlocal status, version, done
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-model-version":
                        version = value.decode("latin-1")
                        break
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False) and not done:
                done = True
                self.metrics.observe_request(
                    endpoint, version, status, time.perf_counter() - started
                )

        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException:
            if not done:  # an unhandled error (a 500), or the answer could not be sent
                done = True
                self.metrics.observe_request(
                    endpoint, version, status or 500, time.perf_counter() - started
                )
            raise
        if not done:  # the app ended without a complete answer (the client went away)
            self.metrics.observe_request(
                endpoint, version, status or 499, time.perf_counter() - started
            )


def install_metrics(app: FastAPI) -> ServingMetrics:
    """Add the middleware, the batch observer and ``GET /metrics`` to ``app``."""
    metrics = ServingMetrics()
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    serving = getattr(app.state, "serving", None)
    if serving is not None:
        serving.on_batch.append(metrics.observe_batch)

    # A key is needed whenever the server requires keys (any role: these are counts and
    # timings, not data); give Prometheus one as a bearer token.
    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request, principal: PrincipalDep) -> Response:
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics

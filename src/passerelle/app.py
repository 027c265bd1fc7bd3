"""The app factory: one function builds a fully configured server, with no import-time state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from passerelle import __version__
from passerelle.core import auth
from passerelle.core.db import (
    make_engine,
    make_session_factory,
    migrate,
    refuse_calls_on_this_loop,
    session_scope,
)
from passerelle.core.errors import PasserelleError
from passerelle.core.settings import Settings
from passerelle.core.store import ObjectStore
from passerelle.core.web import BodyLimitMiddleware, install_error_handlers


class StartupRefused(PasserelleError):
    """The configuration is unsafe or unusable; the server must not start."""


def check_startup(settings: Settings, active_keys: int) -> None:
    """Refuse to listen beyond loopback without keys, or with auth explicitly off."""
    if settings.listens_on_loopback:
        return
    if not settings.auth_required:
        raise StartupRefused(
            f"refusing to listen on {settings.host} with PASSERELLE_AUTH=off: authentication "
            "may only be off on a loopback address (127.0.0.1, ::1, localhost)"
        )
    if active_keys == 0 and settings.admin_key is None:
        raise StartupRefused(
            f"refusing to listen on {settings.host} without API keys: set PASSERELLE_ADMIN_KEY "
            "(24+ characters) or create a key with `passerelle keys create`, or listen on "
            "127.0.0.1"
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    try:
        with session_scope(sessions) as session:
            auth.ensure_project(session, "default")
            check_startup(settings, auth.count_active_keys(session))
    except BaseException:
        engine.dispose()  # a refused start leaves no connection behind
        raise
    store = ObjectStore(
        settings.resolved_artifact_root,
        spool_dir=settings.home.resolve() / "spool",
        s3_endpoint_url=settings.s3_endpoint_url,
    )

    app = FastAPI(
        lifespan=_lifespan,
        title="passerelle",
        version=__version__,
        description="Tracking, registry, serving, monitoring and tracing in one loop.",
        docs_url="/docs",
        # FastAPI's own OpenTelemetry instrumentation would trace every request to whatever
        # tracer provider the process holds, and asks whether one is set on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.store = store
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        exempt=(r"/api/v1/runs/[^/]+/artifacts", r"/api/v1/blobs"),
    )

    from passerelle.admin.api import router as admin_router
    from passerelle.core.blobs_api import router as blobs_router
    from passerelle.core.health import router as health_router
    from passerelle.monitoring.api import router as monitoring_router
    from passerelle.monitoring.drift.api import router as drift_router
    from passerelle.registry.api import router as registry_router
    from passerelle.serving.api import data_router as predictions_router
    from passerelle.serving.api import router as serving_router
    from passerelle.tracing.api import router as tracing_router
    from passerelle.tracing.receiver import install as install_tracing
    from passerelle.tracking.api import router as tracking_router

    # Predictions are matched first, as plain routes of the app: behind the included routers,
    # matching cost every prediction about 0.1 ms (FastAPI tries them one by one).
    app.router.routes[:0] = predictions_router.routes
    app.include_router(health_router)
    app.include_router(admin_router)
    app.include_router(tracking_router)
    app.include_router(registry_router)
    app.include_router(serving_router)
    install_tracing(app)
    app.include_router(tracing_router)
    app.include_router(monitoring_router)
    app.include_router(drift_router)
    start_serving(app)
    start_monitoring(app)
    install_operations(app)
    app.include_router(blobs_router)
    try:
        from passerelle.web import mount_ui
    except ImportError:  # the UI package is optional while it is being built
        pass
    else:
        mount_ui(app)
        from passerelle.monitoring.pages import mount_pages

        mount_pages(app)
        from passerelle.monitoring.drift.pages import router as drift_pages

        app.include_router(drift_pages)
    return app


def guard_event_loop(app: FastAPI) -> Callable[[], None]:
    """Called on the loop that serves ``app``: with ``strict_event_loop``, every database
    statement sent from that loop fails from now on (see ``refuse_calls_on_this_loop``).
    Returns what lifts the ban."""
    settings = getattr(app.state, "settings", None)
    if settings is None or not settings.strict_event_loop:
        return lambda: None
    return refuse_calls_on_this_loop(app.state.engine)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, stop background work and compact the inference log one last time, so a
    stopped process (a pod deleted by a rolling update) leaves nothing in its spool."""
    from passerelle.serving.readiness import start_warming

    start_warming(app)  # /readyz says ready once every deployed version is loaded
    # Alerts and canary policies are evaluated while the app serves, not by every app built
    # (an embedded client, a test) for as long as its process lives.
    if app.state.settings.monitor_interval > 0:
        app.state.monitoring.start(app.state.stop_background)
    app.state.tracing.ingester.ensure_started()  # also recovers spans a crash left spooled
    start_log_merging(app)
    lift_ban = guard_event_loop(app)
    yield
    lift_ban()
    app.state.tracing.ingester.stop()  # at shutdown: ingest what is spooled, then stop
    stop = getattr(app.state, "stop_background", None)
    if stop is not None:
        stop.set()
    from starlette.concurrency import run_in_threadpool

    thread = getattr(getattr(app.state, "monitoring", None), "thread", None)
    if thread is not None:  # let an evaluation under way finish before the process exits
        await run_in_threadpool(thread.join, 30)
    serving = getattr(app.state, "serving", None)
    if serving is not None:
        serving.close()
        await run_in_threadpool(serving.log.compact)
        await run_in_threadpool(_stop_log_merging, app)


def _stop_log_merging(app: FastAPI) -> None:
    """Wait for a merge pass under way, then hand the merge lease over: another replica
    merges at its next pass rather than once the lease has run out."""
    thread = getattr(app.state, "log_merging", None)
    if thread is None:
        return
    thread.join(30)
    if thread.is_alive():  # a pass still running keeps its lease, which then runs out
        return
    try:
        app.state.serving.log.release_merge_lease()
    except Exception:  # the lease runs out on its own
        logging.getLogger(__name__).exception("could not release the merge lease")


def start_serving(app: FastAPI) -> None:
    """The inference log (recovering what a crashed process left) and the serving runtime."""
    import contextlib
    import threading

    from passerelle.serving.inference_log import InferenceLog
    from passerelle.serving.runtime import ServingRuntime

    settings: Settings = app.state.settings
    home = settings.home.resolve()
    log = InferenceLog(
        home / "spool" / "inference", app.state.store, app.state.sessions, fsync=settings.log_fsync
    )
    log.compact()
    app.state.serving = ServingRuntime(
        app.state.sessions,
        app.state.store,
        home,
        log,
        max_batch_rows=settings.serving_max_batch_rows,
        max_wait_ms=settings.serving_max_wait_ms,
    )
    stop = threading.Event()
    app.state.stop_background = stop

    def compact_forever() -> None:
        while not stop.wait(settings.log_compact_interval):
            with contextlib.suppress(Exception):  # logged inside; the loop must not die
                log.compact()

    threading.Thread(target=compact_forever, name="passerelle-log-compaction", daemon=True).start()


def start_log_merging(app: FastAPI) -> None:
    """Merge small inference log parts in the background while the server runs (one replica
    at a time: ``InferenceLog.merge`` takes a lease). Started with the lifespan, as the
    monitoring scheduler is: an app built for a test or a notebook leaves it to a server."""
    import threading

    log, stop = app.state.serving.log, app.state.stop_background
    interval = app.state.settings.log_merge_interval

    def merge_forever() -> None:
        while not stop.wait(interval):
            try:
                log.merge()
            except Exception:  # the next pass retries; the loop must not die
                logging.getLogger(__name__).exception("could not merge inference log parts")

    app.state.log_merging = threading.Thread(
        target=merge_forever, name="passerelle-log-merge", daemon=True
    )
    app.state.log_merging.start()


def start_monitoring(app: FastAPI) -> None:
    """The scheduler of canary policies and alert rules (one evaluating replica at a time)."""
    from passerelle.monitoring.scheduler import MonitorScheduler

    settings: Settings = app.state.settings
    scheduler = MonitorScheduler(
        app.state.sessions,
        app.state.serving.log,
        interval=settings.monitor_interval,
        lease_seconds=settings.monitor_lease_seconds,
        webhook_timeout=settings.monitor_webhook_timeout,
        on_change=app.state.serving.invalidate,
    )
    app.state.monitoring = scheduler  # started with the app's lifespan (see _lifespan)


def install_operations(app: FastAPI) -> None:
    """Prometheus metrics at /metrics and the models check of /readyz."""
    from passerelle.serving.metrics import install_metrics
    from passerelle.serving.readiness import install_readiness

    install_metrics(app)
    install_readiness(app)

"""Liveness and readiness probes (no auth: orchestrators call them).

Domains add their own readiness checks to ``app.state.readiness_checks``: callables returning
``(name, "ok" or why not, details)``, or None while they have nothing to check. Serving uses one
to hold traffic back until every deployed model version is loaded. Both probes name the
answering process in ``X-Process-Id``, which tells the workers of ``passerelle server --workers
N`` apart.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from sqlalchemy import text

from passerelle.core.web import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz():
    response = json_response({"status": "ok"})
    response.headers["X-Process-Id"] = str(os.getpid())
    return response


@router.get("/readyz")
def readyz(request: Request):
    """Ready when the database answers, the object store is reachable and every other check
    (every deployed model version loaded) passes."""
    checks: dict[str, str] = {}
    details: dict[str, object] = {}
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # the probe reports, never raises
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        store = request.app.state.store
        store.fs.exists(store.root)
        checks["object_store"] = "ok"
    except Exception as exc:
        checks["object_store"] = f"error: {type(exc).__name__}"
    if checks["database"] == "ok":
        for check in getattr(request.app.state, "readiness_checks", ()):
            try:
                result = check()
            except Exception as exc:
                result = (
                    getattr(check, "__qualname__", "check"),
                    f"error: {type(exc).__name__}",
                    {},
                )
            if result is None:  # nothing to check yet
                continue
            name, state, more = result
            checks[name] = state
            details.update(more)
    ready = all(v == "ok" for v in checks.values())
    response = json_response(
        {"status": "ready" if ready else "not ready", "checks": checks, **details},
        200 if ready else 503,
    )
    response.headers["X-Process-Id"] = str(os.getpid())
    return response

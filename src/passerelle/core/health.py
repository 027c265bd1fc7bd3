"""Liveness and readiness probes (no auth: orchestrators call them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from passerelle.core.web import json_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz():
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request):
    """Ready when the database answers and the object store is reachable."""
    checks: dict[str, str] = {}
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
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )

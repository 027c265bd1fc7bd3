"""The server-rendered web UI: shared layout, static files, sign-in, and each domain's pages.

No Node build and no CDN: the CSS is hand-written and plotly.js comes from the installed
``plotly`` Python package, so the UI works on an air-gapped network.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from passerelle.web.render import make_environment

STATIC = Path(__file__).parent / "static"


def plotly_js_path() -> Path | None:
    """``plotly.min.js`` inside the plotly package's ``package_data`` folder, when installed."""
    try:
        candidate = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        return None
    return candidate if candidate.is_file() else None


def _plotly_route(path: Path | None) -> Callable[[], Response]:
    def plotly_js() -> Response:
        if path is None:
            return Response("plotly is not installed", status_code=404, media_type="text/plain")
        return FileResponse(
            path,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    return plotly_js


def mount_ui(app: FastAPI) -> None:
    """Add the UI to an app built by ``create_app``: templates, static files and pages."""
    from passerelle.registry.pages import TEMPLATES as REGISTRY_TEMPLATES
    from passerelle.registry.pages import router as registry_pages
    from passerelle.serving.pages import TEMPLATES as SERVING_TEMPLATES
    from passerelle.serving.pages import router as serving_pages
    from passerelle.tracing.pages import TEMPLATES as TRACING_TEMPLATES
    from passerelle.tracing.pages import router as tracing_pages
    from passerelle.tracking.pages import TEMPLATES as TRACKING_TEMPLATES
    from passerelle.tracking.pages import router as tracking_pages
    from passerelle.web.login import router as login_router

    app.state.templates = make_environment(
        {
            "tracking": TRACKING_TEMPLATES,
            "registry": REGISTRY_TEMPLATES,
            "serving": SERVING_TEMPLATES,
            "tracing": TRACING_TEMPLATES,
        }
    )
    # Signs confirmations of changes made from pages when no key identifies the caller.
    app.state.confirm_secret = secrets.token_bytes(32)
    # The route goes first: the /static mount below would otherwise answer this path.
    app.add_api_route(
        "/static/plotly.min.js", _plotly_route(plotly_js_path()), include_in_schema=False
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(login_router)
    app.include_router(tracking_pages)
    app.include_router(registry_pages)
    app.include_router(serving_pages)
    app.include_router(tracing_pages)


__all__ = ["mount_ui"]

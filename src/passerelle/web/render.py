"""Rendering pages: the shared Jinja2 environment, display filters and the page error policy.

Pages and the JSON API share services and errors, but a person in a browser should get HTML:
``PageRoute`` turns the platform's errors into an HTML page (or a redirect to the login form
when no valid key was presented) instead of the API's JSON error shape.
"""

from __future__ import annotations

import logging
import math
import shlex
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from passerelle.core.auth import Principal
from passerelle.core.errors import PasserelleError, Unauthenticated
from passerelle.core.web import COOKIE_NAME

log = logging.getLogger("passerelle.web")

TEMPLATES = Path(__file__).parent / "templates"

# Pages load scripts and styles from this server only. plotly.js compiles WebGL shaders for
# parallel coordinates with ``new Function``, hence 'unsafe-eval'; inline scripts stay forbidden,
# so injected markup cannot run code even if escaping were ever missed.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


# -- display filters ---------------------------------------------------------------------------
def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as a UTC date and time (the server's and the SDK's unit)."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(start: int | None, end: int | None) -> str:
    """A human duration; a run with no end time is still going, so it has none yet."""
    if start is None or end is None:
        return "—"
    ms = max(0, end - start)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def format_number(value: Any) -> str:
    """Metric values: six significant digits is what a table can show and a person can compare."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return f"{value:.6g}"
    return str(value)


def format_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def short_digest(digest: str | None, length: int = 12) -> str:
    return digest[:length] if digest else "—"


def format_command(command: Any) -> str:
    """A recorded command line as a shell would show it (lists are quoted argument by argument)."""
    if isinstance(command, list | tuple):
        return shlex.join(str(part) for part in command)
    return "" if command is None else str(command)


def query_string(**params: Any) -> str:
    """``?a=1&b=2`` with empty values dropped, for links that keep the page's state."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept, doseq=True) if kept else ""


def _dumps(obj: Any, **_: Any) -> str:
    # orjson writes NaN and infinities as null (the stdlib writes invalid JSON), which plotly
    # draws as a gap in the line.
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def make_environment(folders: Mapping[str, Path]) -> jinja2.Environment:
    """One environment for every domain: ``base.html`` here, ``<domain>/<page>.html`` for theirs.

    Autoescaping is on for every template, and undefined names fail loudly in tests instead of
    rendering as empty strings.
    """
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(TEMPLATES),
            jinja2.PrefixLoader({k: jinja2.FileSystemLoader(v) for k, v in folders.items()}),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["json.dumps_function"] = _dumps
    env.filters.update(
        time=format_time,
        number=format_number,
        filesize=format_size,
        short=short_digest,
        command=format_command,
    )
    env.globals.update(duration=format_duration, qs=query_string)
    return env


# -- responses ---------------------------------------------------------------------------------
def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    """Render a page with what every page needs (who is signed in, the current path)."""
    env: jinja2.Environment = request.app.state.templates
    values = {
        "request_path": request.url.path,
        "principal": principal,
        "signed_in": bool(request.cookies.get(COOKIE_NAME)),
        **(context or {}),
    }
    html = env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def error_page(request: Request, status: int, message: str, title: str | None = None) -> Response:
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found", 413: "Too large"}
    heading = title or titles.get(status, "Error")
    return render(
        request,
        "error.html",
        {"status": status, "title": heading, "message": message},
        status_code=status,
    )


def safe_next(target: str | None) -> str:
    """Only same-site paths may follow a login, so the form cannot become an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    in_path = any(e.get("loc", ("",))[0] == "path" for e in errors)
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("path", "query", "body")]
        parts.append(f"{'.'.join(loc) or 'request'}: {e.get('msg')}")
    if in_path:
        return 404, "nothing here: " + "; ".join(parts)
    return 400, "; ".join(parts)


class PageRoute(APIRoute):
    """A route answering HTML whatever happens: errors become pages, missing keys a login form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                return login_redirect(request)
            except PasserelleError as exc:
                if exc.status >= 500:
                    log.error("page %s failed: %s", request.url.path, exc.message)
                return error_page(request, exc.status, exc.message)
            except RequestValidationError as exc:
                status, message = _validation_message(exc)
                return error_page(request, status, message)
            except Exception:
                log.exception("page %s failed", request.url.path)
                return error_page(request, 500, "internal error; see the server log")

        return page_handler

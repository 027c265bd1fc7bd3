"""Signing in to the web UI with an API key, kept in an HttpOnly cookie.

The browser holds the same API key the SDK uses, so pages and the API check access with the
same ``get_principal``. The cookie is HttpOnly (scripts cannot read it) and SameSite=Strict
(other sites cannot make the browser send it).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from passerelle.core.auth import authenticate
from passerelle.core.errors import Unauthenticated
from passerelle.core.web import COOKIE_NAME, SessionDep, SettingsDep
from passerelle.web.render import PageRoute, error_page, render, safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)

COOKIE_MAX_AGE = 7 * 24 * 3600  # a week: long enough for daily use, short enough to expire


@router.get("/login")
def login_form(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    return render(
        request,
        "login.html",
        {"next": safe_next(next), "error": None, "auth_required": settings.auth_required},
    )


def _same_origin(request: Request) -> bool:
    """Refuse cross-site form posts, so another site cannot sign a visitor in with its own key."""
    origin = request.headers.get("origin")
    if origin is None:  # not sent by older browsers and command-line clients
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if not _same_origin(request):
        return error_page(request, 403, "sign-in forms are only accepted from this site")
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    try:
        authenticate(session, key.strip(), admin)
    except Unauthenticated as exc:
        context = {"next": safe_next(next), "error": exc.message}
        context["auth_required"] = settings.auth_required
        return render(request, "login.html", context, status_code=401)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        key.strip(),
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response

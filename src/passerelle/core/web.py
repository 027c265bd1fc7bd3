"""What every router shares: request-scoped dependencies, the error shape, the body size limit."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passerelle.core.auth import ANONYMOUS_ADMIN, Principal, authenticate
from passerelle.core.errors import InvalidInput, PasserelleError, PayloadTooLarge
from passerelle.core.settings import Settings
from passerelle.core.store import ObjectStore

log = logging.getLogger("passerelle")

COOKIE_NAME = "passerelle_key"


class ORJSONResponse(JSONResponse):
    """JSON through orjson: several times faster than the standard library on big pages."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def json_response(content: Any, status_code: int = 200) -> Response:
    return ORJSONResponse(content, status_code=status_code)


# -- dependencies ------------------------------------------------------------------------------
def get_session(request: Request) -> Iterator[Session]:
    """One short transaction per request: committed when the handler returns normally."""
    session: Session = request.app.state.sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth.strip()
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE_NAME)


async def get_principal(request: Request) -> Principal:
    """The caller. With auth off and no key presented, the caller is an anonymous admin.

    Async, so the anonymous case costs no thread hop; a presented key is looked up on every
    request, so a key revoked by any process stops working at once.
    """
    settings: Settings = request.app.state.settings
    secret = presented_key(request)
    if not secret and not settings.auth_required:
        return ANONYMOUS_ADMIN
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None

    def lookup() -> Principal:
        with request.app.state.sessions() as session:
            return authenticate(session, secret, admin)

    return await run_in_threadpool(lookup)


# scope="function": commit before the response leaves, so a client that got 201 can read it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


# -- errors ------------------------------------------------------------------------------------
# An error a route's protocol says how to encode (OTLP answers a google.rpc.Status): the
# function takes the error and the request's content type, by the route's exact path.
ErrorEncoder = Callable[[PasserelleError, str | None], Response]
_error_encoders: dict[str, ErrorEncoder] = {}


def register_error_encoder(path: str, encoder: ErrorEncoder) -> None:
    _error_encoders[path] = encoder


def error_response(path: str, content_type: str | None, err: PasserelleError) -> Response:
    """The error in the shape the path's protocol expects: the JSON error shape by default."""
    encoder = _error_encoders.get(path)
    if encoder is not None:
        return encoder(err, content_type)
    return json_response(err.to_dict(), err.status)


def _scope_error(scope: Scope, err: PasserelleError) -> Response:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type")
    return error_response(
        scope["path"], content_type.decode("latin-1") if content_type else None, err
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PasserelleError)
    async def passerelle_error(request: Request, exc: PasserelleError) -> Response:
        if exc.status >= 500:
            log.error("server-side failure: %s", exc.message)
        return error_response(request.url.path, request.headers.get("content-type"), exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _field(tuple(first.get("loc", ())))
        message = "; ".join(f"{_field(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors)
        details = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg")} for e in errors
        ]
        body = {
            "error": {
                "code": "invalid",
                "message": message,
                "field": field,
                "details": details[:50],
            }
        }
        return json_response(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return json_response({"error": {"code": code, "message": str(exc.detail)}}, exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return json_response(
            {"error": {"code": "internal", "message": "internal error; see the server log"}}, 500
        )


# -- request checks ----------------------------------------------------------------------------
class BodyLimitMiddleware:
    """Check each request before the app reads it.

    - A body over ``max_bytes`` is refused with 413, whether its length is announced or not (a
      chunked body is read up to the limit, never further).
    - A NUL character in the URL or in a JSON body is refused with 422 naming the field:
      PostgreSQL cannot store it in text, so it would otherwise fail deep inside a query.

    ``PUT`` requests whose whole path matches one of the ``exempt`` patterns are streamed
    uploads: their size is limited by the object store as it writes, so their body is passed
    through untouched. Nothing else is exempt (a pattern must match the full path).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = tuple(re.compile(p) for p in exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (field := _nul_in_url(scope)) is not None:
            err = InvalidInput(
                f"'{field}' may not contain the NUL character (\\u0000)", field=field
            )
            await _scope_error(scope, err)(scope, receive, send)
            return
        if scope["method"] == "PUT" and any(p.fullmatch(scope["path"]) for p in self.exempt):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(scope, receive, send, int(length))
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        is_json = content_type == b"application/json" or content_type.endswith(b"+json")
        if length is not None and not is_json:
            await self.app(scope, receive, send)  # the server stops at the announced length
            return

        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its whole body
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._too_large(scope, receive, send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if is_json and b"\\u0000" in body and (field := _nul_in_json(body)) is not None:
            err = InvalidInput(
                f"'{field}' may not contain the NUL character (\\u0000)", field=field
            )
            await _scope_error(scope, err)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, size: int | None
    ) -> None:
        what = f"request body of {size} bytes" if size is not None else "request body"
        err = PayloadTooLarge(f"{what} is over the limit of {self.max_bytes} bytes", field="body")
        await _scope_error(scope, err)(scope, receive, send)


def _nul_in_url(scope: Scope) -> str | None:
    """The part of the URL holding a NUL character: ``url`` (the path) or a query parameter."""
    if "\x00" in scope["path"]:
        return "url"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return name.replace("\x00", "\\u0000") or "query"
    return None


def _nul_in_json(body: bytes) -> str | None:
    """Where a decoded JSON body holds a NUL character (``params.key``), if anywhere."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the app reports malformed JSON itself

    def walk(value: Any, loc: tuple[str, ...]) -> str | None:
        if isinstance(value, str):
            return (".".join(loc) or "body") if "\x00" in value else None
        if isinstance(value, dict):
            items: Any = value.items()
        elif isinstance(value, list):
            items = enumerate(value)
        else:
            return None
        for key, item in items:
            name = str(key)
            if "\x00" in name:
                return ".".join((*loc, name.replace("\x00", "\\u0000")))
            if (found := walk(item, (*loc, name))) is not None:
                return found
        return None

    return walk(data, ())

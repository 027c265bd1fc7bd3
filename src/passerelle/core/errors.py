"""One error type and one JSON error shape for the whole API.

Every failure a client can cause becomes a ``PasserelleError`` (or a subclass) and leaves the server
as ``{"error": {"code", "message", "field"}}`` with a 4xx status. Nothing else is allowed out,
except where a protocol fixes the shape: the OTLP receiver answers a ``google.rpc.Status``
(``core.web.register_error_encoder``).
"""

from __future__ import annotations

from typing import Any


class PasserelleError(Exception):
    """Base error; ``status`` and ``code`` say how the API reports it."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(PasserelleError):
    status = 422
    code = "invalid"


class NotFound(PasserelleError):
    status = 404
    code = "not_found"


class Conflict(PasserelleError):
    status = 409
    code = "conflict"


class Unauthenticated(PasserelleError):
    status = 401
    code = "unauthenticated"


class Forbidden(PasserelleError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(PasserelleError):
    status = 413
    code = "payload_too_large"


class IntegrityFailure(PasserelleError):
    """Stored bytes no longer match their recorded hash: never served, never loaded."""

    status = 500
    code = "integrity"


ERROR_TYPES: dict[str, type[PasserelleError]] = {
    cls.code: cls
    for cls in (
        PasserelleError,
        InvalidInput,
        NotFound,
        Conflict,
        Unauthenticated,
        Forbidden,
        PayloadTooLarge,
        IntegrityFailure,
    )
}


def error_from_response(status: int, body: Any) -> PasserelleError:
    """Rebuild the server's error on the client side, keeping its class, message and field."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        cls = ERROR_TYPES.get(str(err.get("code")), PasserelleError)
        exc = cls(str(err.get("message", "")), field=err.get("field"), details=err.get("details"))
        exc.status = status
        return exc
    exc = PasserelleError(f"server answered HTTP {status}: {str(body)[:500]}")
    exc.status = status
    return exc

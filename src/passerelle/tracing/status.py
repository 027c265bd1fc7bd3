"""OTLP/HTTP errors as the protocol wants them: a ``google.rpc.Status``, encoded like the request.

An OTLP exporter reads the body of a 4xx or 5xx answer as a Status (protobuf for a protobuf
export, its JSON mapping for a JSON one) and logs its message; the platform's own JSON error shape
would reach it as undecodable bytes. The field at fault goes in a ``google.rpc.BadRequest``
detail, so nothing the JSON shape said is lost.
"""

from __future__ import annotations

from fastapi.responses import Response
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2

from passerelle.core.errors import PasserelleError
from passerelle.tracing import otlp
from passerelle.tracing.otlp import JSON, PROTOBUF

# The HTTP status decides whether an exporter retries; the code only names the failure.
_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    422: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def status_of(err: PasserelleError) -> status_pb2.Status:
    status = status_pb2.Status(code=_CODES.get(err.status, code_pb2.INTERNAL), message=err.message)
    if err.field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=err.field, description=err.message
        )
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return status


def otlp_error(err: PasserelleError, content_type: str | None) -> Response:
    """The Status in JSON for a JSON export, in protobuf for anything else (the OTLP default)."""
    status = status_of(err)
    try:
        as_json = otlp.media_type(content_type) == "json"
    except otlp.UnsupportedMediaType:
        as_json = False  # the refusal of that very content type: in the protocol's default
    if as_json:
        body = json_format.MessageToJson(status, indent=None).encode()
        return Response(body, status_code=err.status, media_type=JSON)
    return Response(status.SerializeToString(), status_code=err.status, media_type=PROTOBUF)

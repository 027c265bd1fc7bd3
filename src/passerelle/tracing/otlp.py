"""OTLP over HTTP: decoding ``ExportTraceServiceRequest`` bodies and encoding the answers.

Both encodings of the OTLP/HTTP specification are read through the ``opentelemetry-proto``
messages: binary protobuf, and JSON (where, unlike protobuf's own JSON mapping, trace and span
ids are hex strings; they are turned into base64 before ``ParseDict``). Unknown JSON fields are
ignored, as the specification asks of receivers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from passerelle.core.errors import InvalidInput, PasserelleError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class MalformedExport(InvalidInput):
    """A body that is not an export request at all: 400, which OTLP exporters do not retry."""

    status = 400


class ExportUnavailable(PasserelleError):
    """The spans could not be made durable (the spool's disk failed): 503, which OTLP exporters
    retry, so nothing is acknowledged that was not kept."""

    status = 503
    code = "unavailable"


class UnsupportedMediaType(PasserelleError):
    status = 415
    code = "unsupported_media_type"


def media_type(content_type: str | None) -> str:
    """``protobuf`` or ``json`` for an OTLP body; anything else is refused with 415."""
    value = (content_type or PROTOBUF).split(";")[0].strip().lower()
    if value in (PROTOBUF, "application/protobuf"):
        return "protobuf"
    if value == JSON:
        return "json"
    raise UnsupportedMediaType(
        f"unsupported content type {value!r}: OTLP over HTTP is sent as {PROTOBUF} or {JSON}",
        field="content-type",
    )


def decode_request(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse an export request, or raise ``InvalidInput`` saying what is wrong with the body."""
    message = ExportTraceServiceRequest()
    if kind == "protobuf":
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise MalformedExport(
                f"the body is not a valid OTLP ExportTraceServiceRequest protobuf: {exc}",
                field="body",
            ) from None
        return message
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedExport(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise MalformedExport(
            'an OTLP JSON export is an object: {"resourceSpans": [...]}', field="body"
        )
    try:
        json_format.ParseDict(_hex_ids_to_base64(data), message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise MalformedExport(
            f"the body is not a valid OTLP JSON ExportTraceServiceRequest: {str(exc)[:300]}",
            field="body",
        ) from None
    return message


def _hex_ids_to_base64(value: Any, depth: int = 0) -> Any:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping expects bytes as base64. A value
    that is not hex is passed on unchanged, so the id check names it later."""
    if depth > 64:
        raise ValueError("the JSON body is nested too deeply")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ID_FIELDS and isinstance(item, str):
                try:
                    item = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    item = _invalid_id_marker(item)
            else:
                item = _hex_ids_to_base64(item, depth + 1)
            out[key] = item
        return out
    if isinstance(value, list):
        return [_hex_ids_to_base64(v, depth + 1) for v in value]
    return value


def _invalid_id_marker(text: str) -> str:
    """Bytes no valid id has (length 1), so the span is refused by the id check, not the
    whole request by the parser; ``text`` was not hex."""
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return base64.b64encode(b"\x00").decode()
    return text


def encode_response(rejected: int, message: str, kind: str) -> tuple[bytes, str]:
    """The ``ExportTraceServiceResponse`` body and its media type, in the request's encoding.

    ``partial_success`` is set only when some spans were refused or a warning is due.
    """
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if kind == "json":
        data = json_format.MessageToDict(response)
        return orjson.dumps(data), JSON
    return response.SerializeToString(), PROTOBUF


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value (bytes as hex, nesting bounded)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "bytes_value":
        return value.bytes_value.hex()
    if depth > 32:
        return None
    if which == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}

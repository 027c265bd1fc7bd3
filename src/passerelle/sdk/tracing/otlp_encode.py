"""Observations to an OTLP ``ExportTraceServiceRequest`` (protobuf), on the exporter thread.

Attribute names are those of docs/tracing-sdk.md: ``passerelle.observation.type``,
``input.value`` / ``output.value`` with their mime types, ``passerelle.level``, and whatever the
observation set (``gen_ai.*``, ``session.id``...). An error becomes status ERROR with its message
and an ``exception`` event, as the OpenTelemetry SDK records it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

if TYPE_CHECKING:
    from passerelle.sdk.tracing.span import Observation

_KIND = {"generation": Span.SPAN_KIND_CLIENT}
_INTERNAL = Span.SPAN_KIND_INTERNAL
_ERROR = Status.STATUS_CODE_ERROR


def encode_request(
    observations: Iterable[Observation], resource: Mapping[str, Any], scope_version: str
) -> tuple[bytes, int]:
    """One request: one resource (this process), one scope (passerelle), every span.

    Returns the body and how many spans could not be encoded (left out: one odd value must
    not cost the rest of the batch).
    """
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _set_attributes(resource_spans.resource.attributes, resource)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "passerelle"
    scope_spans.scope.version = scope_version
    spans = scope_spans.spans
    bad = 0
    for obs in observations:
        try:
            _fill_span(spans.add(), obs)
        except Exception:
            del spans[-1]
            bad += 1
    return request.SerializeToString(), bad


def _fill_span(span: Span, obs: Observation) -> None:
    has_input, has_output = obs.input is not None, obs.output is not None
    span.MergeFromString(
        _prefix(
            obs.name,
            obs.type,
            obs.level,
            has_input and obs.input_mime,
            has_output and obs.output_mime,
        )
    )
    span.trace_id = obs.trace_id.to_bytes(16, "big")
    span.span_id = obs.span_id.to_bytes(8, "big")
    if obs.parent_id:
        span.parent_span_id = obs.parent_id.to_bytes(8, "big")
    span.start_time_unix_nano = obs.start_ns
    span.end_time_unix_nano = obs.end_ns
    attrs = span.attributes
    if has_input:
        _add_str(attrs, "input.value", _text(obs.input))  # type: ignore[arg-type]
    if has_output:
        _add_str(attrs, "output.value", _text(obs.output))  # type: ignore[arg-type]
    if obs.attributes:
        _set_attributes(attrs, obs.attributes)
    if obs.error is not None:
        exc_type, message, stack = obs.error
        span.status.code = _ERROR
        span.status.message = obs.status_message or message
        event = span.events.add()
        event.name = "exception"
        event.time_unix_nano = obs.end_ns
        _add_str(event.attributes, "exception.type", exc_type)
        _add_str(event.attributes, "exception.message", message)
        _add_str(event.attributes, "exception.stacktrace", stack)
    elif obs.status_message:
        _add_str(attrs, "passerelle.status_message", obs.status_message)


_PREFIXES: dict[tuple[Any, ...], bytes] = {}


def _prefix(name: str, type: str, level: str, input_mime: Any, output_mime: Any) -> bytes:
    """The serialised part that spans of one function share (name, kind, type, level, mime
    types), merged in one call: a third less encoding time than setting each field."""
    key = (name, type, level, input_mime, output_mime)
    prefix = _PREFIXES.get(key)
    if prefix is None:
        if len(_PREFIXES) > 4096:  # many distinct names: keep the cache bounded
            _PREFIXES.clear()
        span = Span(name=name, kind=_KIND.get(type, _INTERNAL))
        attrs = span.attributes
        _add_str(attrs, "passerelle.observation.type", type)
        _add_str(attrs, "passerelle.level", level)
        if input_mime:
            _add_str(attrs, "input.mime_type", input_mime)
        if output_mime:
            _add_str(attrs, "output.mime_type", output_mime)
        prefix = _PREFIXES[key] = span.SerializeToString()
    return prefix


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _add_str(attrs: Any, key: str, value: str) -> None:
    kv = attrs.add()
    kv.key = key
    kv.value.string_value = value


def _set_attributes(attrs: Any, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        kv = attrs.add()
        kv.key = key
        _set_value(kv.value, value)


def _set_value(target: Any, value: Any) -> None:
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            target.int_value = value
        else:  # past OTLP's 64 bits: the digits
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, (list, tuple)):
        array = target.array_value.values
        for item in value:
            _set_value(array.add(), item)
    elif isinstance(value, bytes):
        target.bytes_value = value
    else:  # anything else travels as JSON text
        try:
            target.string_value = orjson.dumps(value, default=repr).decode()
        except (TypeError, ValueError):
            target.string_value = repr(value)


def rejected_spans(content: bytes, content_type: str) -> tuple[int, str]:
    """The ``partial_success`` of a server's answer: spans refused and why (0, "" when none)."""
    if not content:
        return 0, ""
    if "json" in content_type:
        try:
            body = orjson.loads(content)
            partial = body.get("partialSuccess") or body.get("partial_success") or {}
            count = partial.get("rejectedSpans") or partial.get("rejected_spans") or 0
            message = partial.get("errorMessage") or partial.get("error_message") or ""
            return int(count), str(message)
        except (ValueError, AttributeError, TypeError):
            return 0, ""
    try:
        response = ExportTraceServiceResponse.FromString(content)
    except Exception:
        return 0, ""
    partial = response.partial_success
    return partial.rejected_spans, partial.error_message


def refusal_message(content: bytes, content_type: str) -> str:
    """Why a server refused an export: the message of the ``google.rpc.Status`` an OTLP server
    answers 4xx and 5xx with, or the body's text when it is not one."""
    if "json" in content_type:
        try:
            body = orjson.loads(content)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"]
    elif "protobuf" in content_type:
        from google.rpc import status_pb2

        try:
            return status_pb2.Status.FromString(content).message
        except Exception:  # a body that is not a Status: shown as text
            pass
    return content.decode("utf-8", "replace")

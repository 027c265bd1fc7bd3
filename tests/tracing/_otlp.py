"""Build OTLP export requests by hand (the ``opentelemetry-proto`` messages), for the receiver
tests that need spans no SDK would send: bad ids, missing parents, huge attributes."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

PROTOBUF = {"content-type": "application/x-protobuf"}


def trace_id() -> bytes:
    return os.urandom(16)


def span_id() -> bytes:
    return os.urandom(8)


def value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    return AnyValue(string_value=str(v))


def span(
    name: str,
    trace: bytes,
    sid: bytes,
    parent: bytes = b"",
    *,
    attributes: dict[str, Any] | None = None,
    start_ns: int | None = None,
    duration_ms: float = 10.0,
    error: str | None = None,
) -> Span:
    start = start_ns or time.time_ns()
    s = Span(
        trace_id=trace,
        span_id=sid,
        parent_span_id=parent,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_ms * 1e6),
        attributes=[KeyValue(key=k, value=value(v)) for k, v in (attributes or {}).items()],
    )
    if error is not None:
        s.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
    return s


def request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])
    for k, v in (resource or {"service.name": "test"}).items():
        rs.resource.attributes.append(KeyValue(key=k, value=value(v)))
    return ExportTraceServiceRequest(resource_spans=[rs])


def parse_response(body: bytes) -> ExportTraceServiceResponse:
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(body)
    return answer

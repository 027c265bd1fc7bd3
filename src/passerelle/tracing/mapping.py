"""OTLP spans to observation rows, span by span, so one bad span never costs the others.

A span is refused (and counted in the OTLP partial-success answer, with the reason) when its
ids are not valid OpenTelemetry ids, its times are missing or reversed, an attribute is over
the size limit, or a text holds a NUL character (PostgreSQL cannot store one). Everything else
is kept: attributes the conventions do not name go to the observation's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from passerelle.core.ids import INT64_MAX
from passerelle.tracing import attributes as at
from passerelle.tracing import conventions as cv
from passerelle.tracing.models import LEVELS
from passerelle.tracing.otlp import any_value

MAX_PROBLEMS_SHOWN = 5


class SpanRefused(Exception):
    """Why one span cannot be stored; the message names the span and the field."""


@dataclass
class MappedBatch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def message(self) -> str:
        """The partial-success message: the first problems, and how many there were."""
        if not self.problems:
            return ""
        shown = "; ".join(self.problems[:MAX_PROBLEMS_SHOWN])
        more = len(self.problems) - MAX_PROBLEMS_SHOWN
        return shown + (f"; and {more} more" if more > 0 else "")


def map_request(
    request: ExportTraceServiceRequest, project_id: int, *, max_attribute_bytes: int
) -> MappedBatch:
    """Every span of ``request`` as an observation row of ``project_id``, or a problem."""
    batch = MappedBatch()
    for resource_spans in request.resource_spans:
        try:
            resource = _attributes(
                resource_spans.resource.attributes, max_attribute_bytes, "resource"
            )
        except SpanRefused as exc:  # every span of this resource is refused with it
            count = sum(len(s.spans) for s in resource_spans.scope_spans)
            batch.rejected += count
            batch.problems.append(f"{exc} ({count} spans refused)")
            continue
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_info = {"name": scope.name, "version": scope.version} if scope.name else None
            for span in scope_spans.spans:
                try:
                    row = span_row(span, project_id, resource, scope_info, max_attribute_bytes)
                except SpanRefused as exc:
                    batch.rejected += 1
                    batch.problems.append(str(exc))
                else:
                    batch.rows.append(row)
    return batch


def _label(span: Span) -> str:
    return f"span {span.name[:80]!r} ({span.span_id.hex() or 'no id'})"


def _check_id(value: bytes, size: int, what: str, span: Span, *, optional: bool = False) -> str:
    if optional and not value:
        return ""
    if len(value) != size or not any(value):
        shown = value.hex()[:64] or "empty"
        raise SpanRefused(
            f"{_label(span)}: invalid {what} '{shown}': {size} bytes ({size * 2} hex characters), "
            "not all zeros"
        )
    return value.hex()


def _attributes(items: Any, limit: int, where: str) -> dict[str, Any]:
    """Attributes as a dict, refusing values over ``limit`` bytes and NUL characters."""
    out: dict[str, Any] = {}
    kv: KeyValue
    for kv in items:
        which = kv.value.WhichOneof("value")
        if which == "string_value":
            size = len(kv.value.string_value)
        elif which in ("array_value", "kvlist_value", "bytes_value"):
            size = kv.value.ByteSize()
        else:
            size = 0
        if size > limit:
            raise SpanRefused(
                f"{where}: attribute '{kv.key[:200]}' is {size} bytes, over the limit of "
                f"{limit} bytes (PASSERELLE_TRACING_MAX_ATTRIBUTE_BYTES)"
            )
        value = any_value(kv.value)
        if "\x00" in kv.key or _has_nul(value):
            shown = kv.key[:200].replace("\x00", "\\u0000")
            raise SpanRefused(
                f"{where}: attribute '{shown}' holds a NUL "
                "character (\\u0000), which cannot be stored"
            )
        out[kv.key] = value
    return out


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    return False


def span_row(
    span: Span,
    project_id: int,
    resource: dict[str, Any],
    scope: dict[str, Any] | None,
    max_attribute_bytes: int,
) -> dict[str, Any]:
    """One observation row (every column of ``observations``), or ``SpanRefused``."""
    trace_id = _check_id(span.trace_id, 16, "trace id", span)
    span_id = _check_id(span.span_id, 8, "span id", span)
    parent_id = _check_id(span.parent_span_id, 8, "parent span id", span, optional=True)
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0 or start > INT64_MAX:
        raise SpanRefused(f"{_label(span)}: start_time_unix_nano is missing or out of range")
    if end == 0:
        end = start
    if end < start or end > INT64_MAX:
        raise SpanRefused(f"{_label(span)}: end_time_unix_nano is before the start")
    if "\x00" in span.name or "\x00" in span.status.message:
        raise SpanRefused(f"{_label(span)}: the name or status message holds a NUL character")
    attrs = _attributes(span.attributes, max_attribute_bytes, _label(span))
    events = [
        (e.name, e.time_unix_nano, _attributes(e.attributes, max_attribute_bytes, _label(span)))
        for e in span.events
    ]
    return build_row(
        attrs,
        events,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id or None,
        name=span.name,
        start_ns=start,
        end_ns=end,
        status_error=span.status.code == Status.STATUS_CODE_ERROR,
        status_message=span.status.message or None,
        project_id=project_id,
        resource=resource,
        scope=scope,
    )


CONSUMED = {
    *cv.MODEL,
    *cv.PROVIDER,
    *cv.INPUT_TOKENS,
    *cv.OUTPUT_TOKENS,
    *cv.CACHED_TOKENS,
    *cv.TOTAL_TOKENS,
    *cv.COST,
    *cv.TTFT,
    *cv.PROMPT_NAME,
    *cv.PROMPT_VERSION,
    *cv.LEVEL,
    *cv.TYPE,
    *cv.INPUT,
    *cv.OUTPUT,
    *cv.INPUT_MESSAGES,
    *cv.OUTPUT_MESSAGES,
    *cv.SYSTEM_INSTRUCTIONS,
    *cv.LEGACY_PROMPT,
    *cv.LEGACY_COMPLETION,
    *cv.MODEL_PARAMETERS_JSON,
    *cv.TRACE_NAME,
    *cv.SESSION,
    *cv.USER,
    *cv.TAGS,
    *cv.TRACE_METADATA,
    *cv.RELEASE,
    cv.OBSERVATION_METADATA,
    *cv.CONSUMED_WITHOUT_FIELD,
}


def build_row(
    attrs: dict[str, Any],
    events: list[tuple[str, int, dict[str, Any]]],
    *,
    trace_id: str,
    span_id: str,
    parent_id: str | None,
    name: str,
    start_ns: int,
    end_ns: int,
    status_error: bool,
    status_message: str | None,
    project_id: int,
    resource: dict[str, Any],
    scope: dict[str, Any] | None,
) -> dict[str, Any]:
    obs_type = at.observation_type(attrs, start_ns, end_ns)
    text_in, text_out, exception, other_events = at.conversation(attrs, events)
    params = at.model_parameters(attrs)
    level = at.first(attrs, cv.LEVEL)
    level = level.upper() if isinstance(level, str) and level.upper() in LEVELS else "DEFAULT"
    if status_error:
        level = "ERROR"
    if status_message is None and exception is not None:
        status_message = ": ".join(
            str(exception[k]) for k in ("type", "message") if exception.get(k) is not None
        )
    input_tokens = at.as_int(at.first(attrs, cv.INPUT_TOKENS))
    output_tokens = at.as_int(at.first(attrs, cv.OUTPUT_TOKENS))
    total_tokens = at.as_int(at.first(attrs, cv.TOTAL_TOKENS))
    if total_tokens is None and (input_tokens is not None or output_tokens is not None):
        total_tokens = (input_tokens or 0) + (output_tokens or 0)
    cost = at.as_float(at.first(attrs, cv.COST))
    metadata: dict[str, Any] = {}
    declared = at.json_obj(attrs.get(cv.OBSERVATION_METADATA))
    if isinstance(declared, dict):
        metadata.update(declared)
    metadata.update({k: v for k, v in attrs.items() if k not in CONSUMED})
    if resource:
        metadata["resource"] = resource
    if scope:
        metadata["scope"] = scope
    if exception is not None:
        metadata["exception"] = exception
    if other_events:
        metadata["events"] = other_events
    model = at.first(attrs, cv.MODEL)
    provider = at.first(attrs, cv.PROVIDER)
    prompt_version = at.first(attrs, cv.PROMPT_VERSION)
    return {
        "trace_id": trace_id,
        "id": span_id,
        "project_id": project_id,
        "parent_id": parent_id,
        "type": obs_type,
        "name": name[:1000],
        "start_time": start_ns // 1_000_000,
        "end_time": end_ns // 1_000_000,
        "start_ns": start_ns,
        "latency_ms": (end_ns - start_ns) / 1e6,
        "level": level,
        "status_message": status_message,
        "input": text_in,
        "output": text_out,
        "metadata": metadata,
        "model": str(model)[:500] if model is not None else None,
        "provider": str(provider)[:200] if provider is not None else None,
        "model_parameters": params,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": at.as_int(at.first(attrs, cv.CACHED_TOKENS)),
        "total_tokens": total_tokens,
        "cost": cost,
        "cost_source": "provided" if cost is not None else None,
        "ttft_ms": at.as_float(at.first(attrs, cv.TTFT)),
        "prompt_name": (at.as_text(at.first(attrs, cv.PROMPT_NAME)) or "")[:500] or None,
        "prompt_version": str(prompt_version)[:100] if prompt_version is not None else None,
        "trace_attributes": at.trace_attributes(attrs, resource),
    }

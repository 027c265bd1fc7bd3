"""Reading span attributes: typed values, the conversation (input and output) in whichever
convention carries it, model parameters, trace-level attributes and the observation type.

Helpers that pop what they consume (flattened message attributes, request parameters) do so on
purpose: what is left over becomes the observation's metadata.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import orjson

from passerelle.core.ids import INT64_MAX
from passerelle.tracing import conventions as cv
from passerelle.tracing.models import OBSERVATION_TYPES


def first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in attrs:
            return attrs[key]
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(float(value)) if isinstance(value, str) else int(value)
    except (ValueError, OverflowError):
        return None
    return number if 0 <= number <= INT64_MAX else None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def json_obj(value: Any) -> Any:
    """A JSON text decoded, other values as they are (an attribute may be either)."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def flat_messages(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Messages spread over ``<prefix>.<n>.<field>`` attributes, as two ordered lists."""
    found: dict[bool, dict[int, dict[str, Any]]] = {
        True: defaultdict(dict),
        False: defaultdict(dict),
    }
    for key in [k for k in attrs if k[:4] in ("gen_", "llm.")]:
        match = cv.FLAT_MESSAGE.match(key)
        if match is None:
            continue
        prefix, index, name = match.groups()
        found[prefix in cv.FLAT_INPUT][int(index)][name] = attrs.pop(key)
    return (
        [found[True][i] for i in sorted(found[True])],
        [found[False][i] for i in sorted(found[False])],
    )


def from_events(
    events: list[tuple[str, int, dict[str, Any]]],
) -> tuple[list[Any], list[Any], dict[str, Any] | None, list[dict[str, Any]]]:
    """Conversation events of the GenAI conventions, the exception, and the other events."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    exception = None
    others = []
    for name, time_ns, attrs in events:
        if name in cv.INPUT_MESSAGE_EVENTS:
            message = {"role": attrs.pop("role", cv.INPUT_MESSAGE_EVENTS[name])}
            message.update({k.removeprefix("gen_ai.event."): json_obj(v) for k, v in attrs.items()})
            inputs.append(message)
        elif name == cv.CHOICE_EVENT:
            outputs.append({k: json_obj(v) for k, v in attrs.items()})
        elif name == cv.LEGACY_PROMPT_EVENT and "gen_ai.prompt" in attrs:
            inputs.append(json_obj(attrs["gen_ai.prompt"]))
        elif name == cv.LEGACY_COMPLETION_EVENT and "gen_ai.completion" in attrs:
            outputs.append(json_obj(attrs["gen_ai.completion"]))
        elif cv.INPUT_MESSAGES[0] in attrs or cv.OUTPUT_MESSAGES[0] in attrs:
            if cv.INPUT_MESSAGES[0] in attrs:
                inputs.extend(as_list(json_obj(attrs[cv.INPUT_MESSAGES[0]])))
            if cv.OUTPUT_MESSAGES[0] in attrs:
                outputs.extend(as_list(json_obj(attrs[cv.OUTPUT_MESSAGES[0]])))
        elif name == cv.EXCEPTION_EVENT:
            exception = {k.removeprefix("exception."): v for k, v in attrs.items()}
        else:
            others.append({"name": name, "time_unix_nano": time_ns, "attributes": attrs})
    return inputs, outputs, exception, others


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def observation_type(attrs: dict[str, Any], start_ns: int, end_ns: int) -> str:
    declared = first(attrs, cv.TYPE)
    if declared in OBSERVATION_TYPES:
        return declared
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in cv.OPENINFERENCE_KINDS:
        return cv.OPENINFERENCE_KINDS[kind.upper()]
    operation = attrs.get("gen_ai.operation.name")
    if operation in cv.GENAI_OPERATIONS:
        return cv.GENAI_OPERATIONS[operation]
    if first(attrs, cv.MODEL) is not None or first(attrs, cv.INPUT_TOKENS) is not None:
        return "generation"
    return "span"


def model_parameters(attrs: dict[str, Any]) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    for key in [k for k in attrs if k.startswith(cv.MODEL_PARAMETER_PREFIX)]:
        if key != "gen_ai.request.model":
            params[key.removeprefix(cv.MODEL_PARAMETER_PREFIX)] = attrs.pop(key)
    declared = json_obj(first(attrs, cv.MODEL_PARAMETERS_JSON))
    if isinstance(declared, dict):
        params.update(declared)
    return params or None


def trace_attributes(attrs: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for name, keys in (
        ("name", cv.TRACE_NAME),
        ("session_id", cv.SESSION),
        ("user_id", cv.USER),
        ("release", cv.RELEASE),
    ):
        value = first(attrs, keys)
        if value is None:
            value = first(resource, keys)
        if value is not None:
            found[name] = str(value)
    if "release" not in found and resource.get(cv.RESOURCE_RELEASE) is not None:
        found["release"] = str(resource[cv.RESOURCE_RELEASE])
    tags = json_obj(first(attrs, cv.TAGS))
    if tags is not None:
        found["tags"] = [str(t) for t in as_list(tags)]
    metadata = json_obj(first(attrs, cv.TRACE_METADATA))
    if metadata is not None:
        found["metadata"] = metadata if isinstance(metadata, dict) else {"value": metadata}
    return found or None


def conversation(
    attrs: dict[str, Any], events: list[tuple[str, int, dict[str, Any]]]
) -> tuple[str | None, str | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """Input and output texts from whichever convention carries them."""
    flat_in, flat_out = flat_messages(attrs)
    ev_in, ev_out, exception, others = from_events(events)
    text_in = first(attrs, cv.INPUT)
    text_out = first(attrs, cv.OUTPUT)
    if text_in is None:
        messages = json_obj(first(attrs, cv.INPUT_MESSAGES))
        messages = as_list(messages) if messages is not None else flat_in or ev_in
        system = json_obj(first(attrs, cv.SYSTEM_INSTRUCTIONS))
        if system is not None:
            messages = [{"role": "system", "content": system}, *messages]
        if not messages and first(attrs, cv.LEGACY_PROMPT) is not None:
            messages = as_list(json_obj(first(attrs, cv.LEGACY_PROMPT)))
        text_in = as_text(messages) if messages else None
    if text_out is None:
        messages = json_obj(first(attrs, cv.OUTPUT_MESSAGES))
        messages = as_list(messages) if messages is not None else flat_out or ev_out
        if not messages and first(attrs, cv.LEGACY_COMPLETION) is not None:
            messages = as_list(json_obj(first(attrs, cv.LEGACY_COMPLETION)))
        text_out = as_text(messages) if messages else None
    return as_text(text_in), as_text(text_out), exception, others

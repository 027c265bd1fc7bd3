"""The observation: the record the exporter sends, and the handle the application holds.

One small ``__slots__`` object per span, filled in the application's thread with plain values
(ints, str, bytes of JSON) and handed to the exporter when it ends; the OTLP protobuf message is
built from it later, on the exporter thread. Attribute names follow docs/tracing-sdk.md.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Any, Literal

from passerelle.sdk.tracing.capture import to_json_text, to_text

if TYPE_CHECKING:
    from passerelle.sdk.tracing.tracer import Tracer

ObservationType = Literal["span", "generation", "retrieval", "tool", "event"]
Level = Literal["DEBUG", "DEFAULT", "WARNING", "ERROR"]
TYPES = frozenset(("span", "generation", "retrieval", "tool", "event"))
LEVELS = frozenset(("DEBUG", "DEFAULT", "WARNING", "ERROR"))
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
_USAGE_KEYS = {
    "input": "gen_ai.usage.input_tokens",
    "prompt_tokens": "gen_ai.usage.input_tokens",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output": "gen_ai.usage.output_tokens",
    "completion_tokens": "gen_ai.usage.output_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cached": "gen_ai.usage.cache_read.input_tokens",
    "cached_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_read_input_tokens": "gen_ai.usage.cache_read.input_tokens",
    "total": "passerelle.usage.total_tokens",
    "total_tokens": "passerelle.usage.total_tokens",
}
_PARAM_ATTRIBUTES = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
}


class Observation:
    """A span of work in a trace: a function call, a retrieval, a model generation...

    Held by the application through ``with psl.span(...) as obs`` or
    ``psl.get_current_observation()``; ``update()`` adds what is known so far. Once ended it
    belongs to the exporter and further updates are ignored.
    """

    __slots__ = (
        "attributes",
        "end_ns",
        "ended",
        "error",
        "input",
        "input_mime",
        "level",
        "name",
        "output",
        "output_mime",
        "parent_id",
        "span_id",
        "start_ns",
        "status_message",
        "trace_id",
        "tracer",
        "type",
    )
    recording = True

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        type: str,
        trace_id: int,
        span_id: int,
        parent_id: int,
        start_ns: int,
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.type = type
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.start_ns = start_ns
        self.end_ns = 0
        self.attributes: dict[str, Any] | None = None
        self.input: str | bytes | None = None
        self.input_mime = ""
        self.output: str | bytes | None = None
        self.output_mime = ""
        self.level = "DEFAULT"
        self.status_message: str | None = None
        self.error: tuple[str, str, str] | None = None
        self.ended = False

    # -- identity ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The span id, 16 hex characters (the ``observation_id`` of scores)."""
        return f"{self.span_id:016x}"

    @property
    def trace_id_hex(self) -> str:
        """The trace id, 32 hex characters."""
        return f"{self.trace_id:032x}"

    # -- recording -----------------------------------------------------------------------------
    def set_input(self, value: Any) -> None:
        self.input, self.input_mime = to_text(value, self.tracer.mask, self.tracer.max_field_bytes)

    def set_output(self, value: Any) -> None:
        self.output, self.output_mime = to_text(
            value, self.tracer.mask, self.tracer.max_field_bytes
        )

    def set_attribute(self, key: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {}
        self.attributes[key] = value

    def update(
        self,
        *,
        name: str | None = None,
        input: Any = UNSET,
        output: Any = UNSET,
        metadata: Any = None,
        level: Level | None = None,
        status_message: str | None = None,
        model: str | None = None,
        model_parameters: dict[str, Any] | None = None,
        usage: dict[str, int] | None = None,
        cost: float | None = None,
        prompt_name: str | None = None,
        prompt_version: int | str | None = None,
        ttft_ms: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Observation:
        """Record what is known; generation fields (model, usage, cost...) on any observation.

        ``usage`` takes ``input`` / ``output`` / ``cached`` / ``total`` token counts (OpenAI's
        ``prompt_tokens`` / ``completion_tokens`` / ``total_tokens`` names are accepted too).
        """
        if self.ended:
            return self
        if name is not None:
            self.name = name
        if input is not UNSET:
            self.set_input(input)
        if output is not UNSET:
            self.set_output(output)
        if metadata is not None:
            self.set_attribute("passerelle.metadata", to_json_text(metadata, self.tracer.mask))
        if level is not None:
            if level not in LEVELS:
                raise ValueError(f"level must be one of {sorted(LEVELS)}, not {level!r}")
            self.level = level
        if status_message is not None:
            self.status_message = status_message
        if model is not None:
            self.set_attribute("gen_ai.request.model", model)
        if model_parameters:
            self.set_model_parameters(model_parameters)
        if usage:
            for key, count in usage.items():
                attr = _USAGE_KEYS.get(key)
                if attr is not None and isinstance(count, int):
                    self.set_attribute(attr, count)
        if cost is not None:
            self.set_attribute("passerelle.cost.total", float(cost))
        if prompt_name is not None:
            self.set_attribute("passerelle.prompt.name", prompt_name)
        if prompt_version is not None:
            self.set_attribute("passerelle.prompt.version", str(prompt_version))
        if ttft_ms is not None:
            self.set_attribute("passerelle.ttft_ms", float(ttft_ms))
        if attributes:
            for key, value in attributes.items():
                self.set_attribute(key, value)
        return self

    def set_model_parameters(self, params: dict[str, Any]) -> None:
        for key, value in params.items():
            attr = _PARAM_ATTRIBUTES.get(key)
            if attr is not None and isinstance(value, (int, float)) and value is not None:
                self.set_attribute(attr, value)
        self.set_attribute("passerelle.model_parameters", to_json_text(params))

    def update_trace(
        self,
        *,
        name: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: list[str] | None = None,
        metadata: Any = None,
        release: str | None = None,
    ) -> Observation:
        """Set trace-level fields; they ride on this span and the server merges them."""
        if name is not None:
            self.set_attribute("passerelle.trace.name", name)
        if session_id is not None:
            self.set_attribute("session.id", str(session_id))
        if user_id is not None:
            self.set_attribute("user.id", str(user_id))
        if tags is not None:
            tags = [tags] if isinstance(tags, str) else tags  # one tag, not its letters
            self.set_attribute("passerelle.trace.tags", [str(t) for t in tags])
        if metadata is not None:
            self.set_attribute(
                "passerelle.trace.metadata", to_json_text(metadata, self.tracer.mask)
            )
        if release is not None:
            self.set_attribute("passerelle.release", release)
        return self

    def record_exception(self, exc: BaseException) -> None:
        """Status ERROR with the message, and the stack for the ``exception`` event."""
        message = str(exc)
        self.level = "ERROR"
        self.status_message = message or type(exc).__name__
        try:
            stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        except Exception:
            stack = ""
        self.error = (_qualified_name(type(exc)), message, stack)

    def record_interruption(self, exc: BaseException) -> None:
        """Cancelled or interrupted (not a failure of the traced code): a warning, no error."""
        self.level = "WARNING"
        self.status_message = f"interrupted: {type(exc).__name__}"

    def score(
        self,
        name: str,
        value: float | str | bool,
        *,
        data_type: str | None = None,
        source: str = "api",
        comment: str | None = None,
    ) -> None:
        """Score this observation (sent to the server in the background)."""
        self.tracer.score(
            name,
            value,
            trace_id=self.trace_id_hex,
            observation_id=self.id,
            data_type=data_type,
            source=source,
            comment=comment,
        )

    def score_trace(
        self,
        name: str,
        value: float | str | bool,
        *,
        data_type: str | None = None,
        source: str = "api",
        comment: str | None = None,
    ) -> None:
        """Score the whole trace this observation belongs to."""
        self.tracer.score(
            name,
            value,
            trace_id=self.trace_id_hex,
            data_type=data_type,
            source=source,
            comment=comment,
        )

    def end(self, end_ns: int | None = None) -> None:
        """Close the observation and hand it to the exporter; a second call does nothing."""
        if self.ended:
            return
        self.ended = True
        self.end_ns = end_ns or time.time_ns()
        self.tracer.exporter.export(self)

    def payload_size(self) -> int:
        """Approximate bytes held in memory while queued (the exporter bounds their sum)."""
        size = 200
        if self.input is not None:
            size += len(self.input)
        if self.output is not None:
            size += len(self.output)
        if self.attributes:
            size += 40 * len(self.attributes)
        return size

    def __repr__(self) -> str:
        return f"<Observation {self.type} {self.name!r} {self.id} trace={self.trace_id_hex}>"


class Trace(Observation):
    """The root observation opened by ``psl.trace()``: its ``score()`` scores the trace."""

    __slots__ = ()

    def score(
        self,
        name: str,
        value: float | str | bool,
        *,
        data_type: str | None = None,
        source: str = "api",
        comment: str | None = None,
    ) -> None:
        self.score_trace(name, value, data_type=data_type, source=source, comment=comment)


class NoopObservation:
    """Stands in when tracing is off or the trace was not sampled: accepts every call, records
    nothing. Held in the context so that children of an unsampled trace stay unsampled."""

    recording = False
    id = None
    trace_id_hex = None
    ended = True

    def update(self, **_: Any) -> NoopObservation:
        return self

    def update_trace(self, **_: Any) -> NoopObservation:
        return self

    def score(self, *_: Any, **__: Any) -> None:
        return None

    score_trace = score

    def set_input(self, value: Any) -> None:
        return None

    set_output = set_input
    record_exception = set_input
    record_interruption = set_input

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def end(self, end_ns: int | None = None) -> None:
        return None

    def __repr__(self) -> str:
        return "<Observation (not recorded)>"


NOOP = NoopObservation()


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"

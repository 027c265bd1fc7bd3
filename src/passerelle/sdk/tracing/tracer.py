"""The tracer: where spans go (the exporter), which traces are kept (sampling), what is hidden
(masking). Module-level ``psl.trace`` / ``psl.flush`` / ``psl.score`` use the default tracer,
built from the ``PASSERELLE_*`` settings on first use; ``set_default_tracer`` injects another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from passerelle.sdk.tracing.capture import Mask
from passerelle.sdk.tracing.context import CURRENT, _rng, new_span_id, new_trace_id
from passerelle.sdk.tracing.span import (
    NOOP,
    TYPES,
    UNSET,
    NoopObservation,
    Observation,
    Trace,
)

if TYPE_CHECKING:
    from passerelle.sdk.tracing.exporter import SpanExporter, TracingStats

_SCORE_SOURCES = frozenset(("api", "human", "judge"))
_DATA_TYPES = frozenset(("numeric", "categorical", "boolean"))


class Tracer:
    """Configuration of tracing, and the factory of observations.

    Args:
        exporter: where ended spans go; default: a ``SpanExporter`` built from the settings
            (``PASSERELLE_URL`` / ``PASSERELLE_API_KEY``, embedded when no URL).
        enabled: ``False`` records nothing (every call still works).
        sample_rate: fraction of traces kept, decided once at the root of each trace so a
            trace is whole or absent.
        mask: called with every input, output and metadata value before it is recorded; returns
            what may be recorded (see ``redact_keys``).
        release: recorded on every trace (``passerelle.release``), e.g. a git sha.
        max_field_bytes: inputs and outputs longer than this are cut (and marked truncated).
    """

    def __init__(
        self,
        exporter: SpanExporter | None = None,
        *,
        enabled: bool = True,
        sample_rate: float = 1.0,
        mask: Mask | None = None,
        release: str | None = None,
        max_field_bytes: int = 1_000_000,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, not {sample_rate!r}")
        self._exporter = exporter
        self.enabled = enabled
        self.sample_rate = sample_rate
        self.mask = mask
        self.release = release
        self.max_field_bytes = max_field_bytes
        self._lock = threading.Lock()

    @property
    def exporter(self) -> SpanExporter:
        exporter = self._exporter
        if exporter is None:
            with self._lock:
                if self._exporter is None:
                    from passerelle.sdk.tracing.exporter import SpanExporter

                    self._exporter = SpanExporter.from_settings()
                exporter = self._exporter
        return exporter

    # -- observations --------------------------------------------------------------------------
    def start(
        self,
        name: str,
        as_type: str = "span",
        *,
        parent: Any = UNSET,
        cls: type[Observation] = Observation,
    ) -> Observation | NoopObservation:
        """Open an observation under ``parent`` (default: the current one); the caller ends it.

        Returns ``NOOP`` when tracing is off or the trace is not sampled. Does not change the
        current context: ``span()`` and ``@observe`` do that.
        """
        if parent is UNSET:
            parent = CURRENT.get()
        if parent is None:
            if not self.enabled or (self.sample_rate < 1.0 and _rng.random() >= self.sample_rate):
                return NOOP
            obs = cls(self, name, as_type, new_trace_id(), new_span_id(), 0, time.time_ns())
            obs.attributes = {"passerelle.trace.name": name}
            if self.release is not None:
                obs.attributes["passerelle.release"] = self.release
            return obs
        if not parent.recording:
            return parent
        return cls(
            self, name, as_type, parent.trace_id, new_span_id(), parent.span_id, time.time_ns()
        )

    def span(
        self,
        name: str,
        *,
        as_type: str = "span",
        input: Any = UNSET,
        metadata: Any = None,
    ) -> ObservationScope:
        """``with tracer.span("retrieve", as_type="retrieval") as obs: ...``"""
        _check_type(as_type)
        return ObservationScope(self, name, as_type, input, metadata, None)

    def trace(
        self,
        name: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: list[str] | None = None,
        metadata: Any = None,
        release: str | None = None,
        input: Any = UNSET,
    ) -> ObservationScope:
        """``with tracer.trace("ask", session_id=..., user_id=..., tags=[...]) as t: ...``

        Opens a new trace whose root span carries the trace-level fields. Inside an active
        trace it opens a child span that carries them (the server merges trace fields from
        any span of the trace).
        """
        fields = {
            "name": name,
            "session_id": session_id,
            "user_id": user_id,
            "tags": tags,
            "metadata": metadata,
            "release": release,
        }
        return ObservationScope(self, name, "span", input, None, fields)

    def observe(self, func: Callable[..., Any] | None = None, **options: Any) -> Any:
        """``@tracer.observe(...)``: the decorator bound to this tracer."""
        from passerelle.sdk.tracing.observe import observe

        return observe(func, tracer=self, **options)

    # -- scores, flushing ------------------------------------------------------------------------
    def score(
        self,
        name: str,
        value: float | str | bool,
        *,
        trace_id: str | None = None,
        observation_id: str | None = None,
        data_type: str | None = None,
        source: str = "api",
        comment: str | None = None,
    ) -> None:
        """Queue a score for a trace (default: the current one) or one of its observations.

        Raises ``ValueError`` on a malformed score (a programming error, caught at the call),
        never on delivery; outside a recorded trace without ``trace_id`` it does nothing.
        """
        if source not in _SCORE_SOURCES:
            raise ValueError(f"source must be one of {sorted(_SCORE_SOURCES)}, not {source!r}")
        if data_type is not None and data_type not in _DATA_TYPES:
            raise ValueError(f"data_type must be one of {sorted(_DATA_TYPES)}, not {data_type!r}")
        if not isinstance(value, (int, float, str, bool)):
            raise ValueError(f"a score value is a number, a string or a bool, not {value!r}")
        if trace_id is None:
            current = CURRENT.get()
            if current is None or not current.recording:
                return
            trace_id = current.trace_id_hex
        score: dict[str, Any] = {
            "trace_id": trace_id,
            "observation_id": observation_id,
            "name": name,
            "value": value,
            "source": source,
            "comment": comment,
        }
        if data_type is not None:
            score["data_type"] = data_type
        self.exporter.add_score(score)

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued; ``True`` when all of it was handed over within ``timeout``."""
        return self.exporter.flush(timeout)

    def stats(self) -> TracingStats:
        return self.exporter.stats()

    def shutdown(self, timeout: float = 5.0) -> None:
        self.exporter.shutdown(timeout)


class ObservationScope:
    """The context manager behind ``span()`` and ``trace()`` (``with`` and ``async with``)."""

    __slots__ = (
        "_fields",
        "_input",
        "_metadata",
        "_parent",
        "_token",
        "as_type",
        "name",
        "obs",
        "tracer",
    )

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        as_type: str,
        input: Any,
        metadata: Any,
        trace_fields: dict[str, Any] | None,
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.as_type = as_type
        self._input = input
        self._metadata = metadata
        self._fields = trace_fields
        self._token: Any = None
        self._parent: Any = None
        self.obs: Observation | NoopObservation = NOOP

    def __enter__(self) -> Any:
        cls = Trace if self._fields is not None else Observation
        self._parent = CURRENT.get()
        obs = self.tracer.start(self.name, self.as_type, parent=self._parent, cls=cls)
        self.obs = obs
        if obs.recording:
            if self._fields is not None:
                obs.update_trace(**self._fields)
            if self._input is not UNSET or self._metadata is not None:
                obs.update(input=self._input, metadata=self._metadata)
        self._token = CURRENT.set(obs)
        return obs

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        obs = self.obs
        try:
            CURRENT.reset(self._token)
        except ValueError:  # exited in another context than entered: restore the parent
            CURRENT.set(self._parent)
        if obs.recording and exc is not None:
            if isinstance(exc, Exception):
                obs.record_exception(exc)
            else:
                obs.record_interruption(exc)
        obs.end()

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def _check_type(as_type: str) -> None:
    if as_type not in TYPES:
        raise ValueError(f"as_type must be one of {sorted(TYPES)}, not {as_type!r}")


# -- the default tracer ----------------------------------------------------------------------------
_default: Tracer | None = None
_default_lock = threading.Lock()


def default_tracer() -> Tracer:
    """The tracer module-level functions use, built from the settings on first use."""
    global _default
    tracer = _default
    if tracer is None:
        with _default_lock:
            if _default is None:
                _default = _tracer_from_settings()
            tracer = _default
    return tracer


def set_default_tracer(tracer: Tracer | None) -> None:
    """Use ``tracer`` for ``psl.observe``, ``psl.trace``...; ``None``: rebuild from settings."""
    global _default
    with _default_lock:
        _default = tracer


def _tracer_from_settings() -> Tracer:
    from passerelle.core.settings import Settings

    settings = Settings()
    return Tracer(
        enabled=settings.tracing_enabled,
        sample_rate=settings.tracing_sample_rate,
        release=settings.tracing_release,
    )


# -- module-level functions (``psl.trace`` ...) --------------------------------------------------
def trace(
    name: str,
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    tags: list[str] | None = None,
    metadata: Any = None,
    release: str | None = None,
    input: Any = UNSET,
) -> ObservationScope:
    """``with psl.trace("ask", session_id=sid, user_id=uid, tags=["beta"]) as t: ...``"""
    return default_tracer().trace(
        name,
        session_id=session_id,
        user_id=user_id,
        tags=tags,
        metadata=metadata,
        release=release,
        input=input,
    )


def span(
    name: str, *, as_type: str = "span", input: Any = UNSET, metadata: Any = None
) -> ObservationScope:
    """``with psl.span("retrieve", as_type="retrieval") as obs: obs.update(output=docs)``"""
    current = CURRENT.get()
    tracer = current.tracer if current is not None and current.recording else default_tracer()
    return tracer.span(name, as_type=as_type, input=input, metadata=metadata)


def score(
    name: str,
    value: float | str | bool,
    *,
    trace_id: str | None = None,
    observation_id: str | None = None,
    data_type: str | None = None,
    source: str = "api",
    comment: str | None = None,
) -> None:
    """Score the current trace, or the one named by ``trace_id`` (and ``observation_id``)."""
    current = CURRENT.get()
    tracer = current.tracer if current is not None and current.recording else default_tracer()
    tracer.score(
        name,
        value,
        trace_id=trace_id,
        observation_id=observation_id,
        data_type=data_type,
        source=source,
        comment=comment,
    )


def flush(timeout: float = 10.0) -> bool:
    """Send every queued span and score of the default tracer now (blocks up to ``timeout``)."""
    return default_tracer().flush(timeout)


def tracing_stats() -> TracingStats:
    """Counters of the default tracer's exporter: queued, exported, dropped, failed..."""
    return default_tracer().stats()

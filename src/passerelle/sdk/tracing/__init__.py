"""LLM tracing in the SDK: ``@observe``, ``trace()``, scores and the OpenAI client wrapper.

The application-side work of a span is a few microseconds: the span's data goes into a small
object on a bounded queue; a background thread encodes batches as OTLP protobuf and sends them.
Modules: ``context`` (the current observation, ids), ``span`` (the observation record and the
handle the user holds), ``capture`` (inputs and outputs to text, masking), ``tracer`` (the
configuration and the module-level functions), ``observe`` (the decorator), ``exporter`` (queue,
thread, drop counting), ``sender`` (HTTP, retries, the embedded app), ``otlp_encode`` (the
protobuf messages), ``openai`` (the wrapper).

Nothing here is imported by ``import passerelle``; ``passerelle.openai`` loads ``.openai`` on first
use, and the ``openai`` package itself is never imported by passerelle.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "openai":  # ``passerelle.openai`` resolves here, lazily
        return import_module(".openai", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

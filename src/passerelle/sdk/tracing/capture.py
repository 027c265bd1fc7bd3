"""Inputs, outputs and metadata to text, in the application's thread, once.

Values are serialised when the observation records them, not later on the exporter thread: a
chat history appended to after the call must be recorded as it was. orjson does it in about a
microsecond for small values. The masking hook sees the Python value first; an object orjson
does not know becomes its ``model_dump()`` (pydantic), ``to_dict()`` or ``repr``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

log = logging.getLogger("passerelle.tracing")

Mask = Callable[[Any], Any]
JSON = "application/json"
TEXT = "text/plain"
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
MASK_FAILED = "<masking failed: value withheld>"
_mask_warned = False


def _fallback(value: Any) -> Any:
    for method in ("model_dump", "to_dict", "dict"):
        fn = getattr(value, method, None)
        if callable(fn):
            try:
                return fn()
            except Exception:
                break
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return repr(value)


def apply_mask(mask: Mask | None, value: Any) -> Any:
    """``mask(value)``; a failing mask withholds the value rather than leak it or raise."""
    if mask is None:
        return value
    try:
        return mask(value)
    except Exception:
        global _mask_warned
        if not _mask_warned:
            _mask_warned = True
            log.warning("passerelle tracing: the masking function raised; values withheld")
        return MASK_FAILED


def to_text(value: Any, mask: Mask | None, limit: int) -> tuple[str | bytes, str]:
    """The value as text (``str``) or JSON (``bytes``) and its mime type, cut at ``limit`` bytes."""
    value = apply_mask(mask, value)
    if isinstance(value, str):
        if len(value) > limit:
            return value[:limit] + "…[truncated]", TEXT
        return value, TEXT
    try:
        data = orjson.dumps(value, default=_fallback, option=_OPTIONS)
    except Exception:  # e.g. a circular structure or an integer past 64 bits
        try:
            return repr(value)[:limit], TEXT
        except Exception:
            return "<unrepresentable value>", TEXT
    if len(data) > limit:
        # Cut JSON is no longer JSON: say so through the mime type.
        return data[:limit].decode("utf-8", "ignore") + "…[truncated]", TEXT
    return data, JSON


def to_json_text(value: Any, mask: Mask | None = None) -> str:
    """Metadata and similar attributes: JSON text, masked."""
    value = apply_mask(mask, value)
    try:
        return orjson.dumps(value, default=_fallback, option=_OPTIONS).decode()
    except Exception:
        return orjson.dumps(repr(value)).decode()


def redact_keys(*keys: str, replacement: str = "***") -> Mask:
    """A mask that replaces the value of any dict key named in ``keys`` (case-insensitive), at
    any depth, e.g. ``Tracer(mask=redact_keys("password", "api_key"))``."""
    wanted = {k.lower() for k in keys}

    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: replacement if isinstance(k, str) and k.lower() in wanted else mask(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [mask(v) for v in value]
        return value

    return mask


def join_text(chunks: Iterable[Any]) -> Any:
    """A stream's output: its text chunks joined, or the list of items when not all text."""
    items = list(chunks)
    if items and all(isinstance(c, str) for c in items):
        return "".join(items)
    return items

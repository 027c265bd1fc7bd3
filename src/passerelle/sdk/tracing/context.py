"""The current observation, carried by a context variable, and the ids of traces and spans.

A ``ContextVar`` follows asyncio tasks (each task starts with a copy of its creator's context)
and ``asyncio.to_thread``; a plain thread or an executor starts empty, so work handed to one is
propagated with ``contextvars.copy_context().run`` (see docs/tracing-sdk.md).
"""

from __future__ import annotations

import os
import random
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from passerelle.sdk.tracing.span import Observation

CURRENT: ContextVar[Observation | None] = ContextVar("passerelle_observation", default=None)

_rng = random.Random()
_bits = _rng.getrandbits


def _reseed() -> None:
    # A forked child would otherwise draw the same ids as its parent.
    _rng.seed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


def new_trace_id() -> int:
    """128 random bits, never zero (OTLP treats an all-zero id as invalid)."""
    return _bits(128) or 1


def new_span_id() -> int:
    """64 random bits, never zero."""
    return _bits(64) or 1


def get_current_observation() -> Observation | None:
    """The observation the calling code runs inside, or ``None`` (also when not sampled)."""
    obs = CURRENT.get()
    return obs if obs is not None and obs.recording else None


def get_current_trace_id() -> str | None:
    """The current trace id as 32 hex characters, or ``None`` outside a recorded trace."""
    obs = get_current_observation()
    return None if obs is None else f"{obs.trace_id:032x}"


def get_current_observation_id() -> str | None:
    """The current observation (span) id as 16 hex characters, or ``None``."""
    obs = get_current_observation()
    return None if obs is None else f"{obs.span_id:016x}"

"""Identifiers and time, in one place so every domain agrees on them."""

from __future__ import annotations

import time
import uuid


def new_id() -> str:
    """32 hex characters, the shape MLflow clients expect of a run id."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch (the unit of every timestamp)."""
    return time.time_ns() // 1_000_000

"""Identifiers and time, in one place so every domain agrees on them."""

from __future__ import annotations

import time
import uuid

# Integers are stored as 64-bit columns: larger ones must be refused as input, not crash the
# database driver (SQLite raises OverflowError, PostgreSQL "bigint out of range").
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def new_id() -> str:
    """32 hex characters, the shape MLflow clients expect of a run id."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch (the unit of every timestamp)."""
    return time.time_ns() // 1_000_000

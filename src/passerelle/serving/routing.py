"""Which version answers a request: sticky by request key, random without one."""

from __future__ import annotations

import hashlib
import random
from typing import Any


def bucket(endpoint: str, key: str) -> float:
    """A stable number in [0, 100) for a request key: the same key, the same side of a split."""
    digest = hashlib.blake2b(f"{endpoint}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1_000_000 / 10_000


def choose(config: dict[str, Any], key: str | None, rng: random.Random) -> tuple[int, str]:
    """``(version, route)`` for one request; route is ``primary`` or ``canary``."""
    canary, weight = config.get("canary_version"), config.get("canary_weight") or 0.0
    if canary is not None and weight > 0:
        point = bucket(config["name"], key) if key is not None else rng.random() * 100
        if point < weight:
            return canary, "canary"
    return config["primary_version"], "primary"

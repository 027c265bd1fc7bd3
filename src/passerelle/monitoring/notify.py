"""Webhooks: one JSON POST per event, with a timeout; a failure is returned, never raised.

A webhook that is down must not stop the scheduler nor the other rules: the caller records the
error and delivery is tried again on a later evaluation.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger("passerelle.monitoring")


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    timeout: float = 5.0,
    transport: httpx.BaseTransport | None = None,
) -> str | None:
    """Send ``payload``; ``None`` when the receiver answered 2xx, else what went wrong."""
    try:
        with httpx.Client(timeout=timeout, transport=transport) as http:
            resp = http.post(url, json=payload, headers={"User-Agent": "passerelle-monitoring"})
    except httpx.HTTPError as exc:
        log.warning("webhook %s failed: %s", url, exc)
        return f"{type(exc).__name__}: {exc}"[:1000]
    if resp.status_code >= 300:
        log.warning("webhook %s answered HTTP %s", url, resp.status_code)
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
    return None

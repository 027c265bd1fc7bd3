"""Signed confirmations for changes made from the UI (alias moves, deployments).

The first POST shows what would change and a token: an HMAC over exactly those fields and the
time it was issued. Only a second POST carrying a valid, recent token applies the change, so a
stale page or a forged form changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import orjson

CONFIRM_TTL_MS = 15 * 60 * 1000


class TokenCheck(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


def sign(key: bytes, purpose: str, fields: Sequence[Any], issued_ms: int) -> str:
    """``<issued>.<hmac>``; the fields are a JSON list, so no value can shift into another."""
    message = orjson.dumps([purpose, issued_ms, *fields])
    return f"{issued_ms}.{hmac.new(key, message, hashlib.sha256).hexdigest()}"


def check(key: bytes, purpose: str, fields: Sequence[Any], token: str, now_ms: int) -> TokenCheck:
    """Whether ``token`` was issued by ``sign`` for exactly these fields, recently."""
    issued_text, _, _ = token.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 15:
        return TokenCheck.INVALID
    issued = int(issued_text)
    if not hmac.compare_digest(sign(key, purpose, fields, issued), token):
        return TokenCheck.INVALID
    if not now_ms - CONFIRM_TTL_MS <= issued <= now_ms + 60_000:
        return TokenCheck.EXPIRED
    return TokenCheck.VALID

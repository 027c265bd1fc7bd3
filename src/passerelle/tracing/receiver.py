"""The OTLP receiver's work for one export: decode, check access, map, spool, answer.

The answer is sent only after the mapped spans are in the spool (one write), so an acknowledged
span survives a crash of the process; the ingester makes it queryable moments later.
"""

from __future__ import annotations

import logging
import threading
import zlib
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, PayloadTooLarge
from passerelle.core.settings import Settings
from passerelle.core.web import register_error_encoder
from passerelle.tracing import otlp
from passerelle.tracing.ingest import TraceIngester
from passerelle.tracing.mapping import map_request
from passerelle.tracing.service import project_for
from passerelle.tracing.status import otlp_error

PROJECT_HEADER = "x-passerelle-project"
OTLP_PATH = "/v1/traces"
log = logging.getLogger("passerelle.tracing")


@dataclass
class ExportResult:
    accepted: int
    rejected: int
    message: str
    body: bytes
    media_type: str


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A ``gzip`` or ``deflate`` body inflated, never past ``limit`` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise InvalidInput(
            f"unsupported content encoding {encoding!r}: send gzip, deflate or none",
            field="content-encoding",
        )
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise otlp.MalformedExport(
            f"the {encoding} body cannot be inflated: {exc}", field="body"
        ) from None
    if len(out) > limit:
        raise PayloadTooLarge(
            f"the inflated request body is over the limit of {limit} bytes", field="body"
        )
    return out


class Receiver:
    """Per app: the ingester, the limits, and project ids already resolved (by key and name)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ingester: TraceIngester,
        *,
        max_attribute_bytes: int,
        max_body_bytes: int,
    ) -> None:
        self.sessions = sessions
        self.ingester = ingester
        self.max_attribute_bytes = max_attribute_bytes
        self.max_body_bytes = max_body_bytes
        self._projects: dict[tuple[str, int | None, str | None], int] = {}
        self._lock = threading.Lock()

    def project_id(self, principal: Principal, name: str | None) -> int:
        key = (principal.role.value, principal.project_id, name)
        with self._lock:
            found = self._projects.get(key)
        if found is not None:
            principal.require(Action.WRITE, found)
            return found
        with self.sessions() as session, session.begin():
            project = project_for(session, principal, name, Action.WRITE)
            found = project.id
        with self._lock:
            self._projects[key] = found
        return found

    def export(
        self,
        body: bytes,
        *,
        content_type: str | None,
        content_encoding: str | None,
        principal: Principal,
        project: str | None,
    ) -> ExportResult:
        kind = otlp.media_type(content_type)
        raw = decompress(body, content_encoding, self.max_body_bytes)
        request = otlp.decode_request(raw, kind)
        project_id = self.project_id(principal, project)
        batch = map_request(request, project_id, max_attribute_bytes=self.max_attribute_bytes)
        try:
            self.ingester.append(batch.rows)
        except OSError as exc:
            log.error("span spool write failed: %s", exc)
            raise otlp.ExportUnavailable(
                "the spans could not be written to the spool; retry later", field="body"
            ) from None
        message = batch.message()
        answer, media_type = otlp.encode_response(batch.rejected, message, kind)
        return ExportResult(len(batch.rows), batch.rejected, message, answer, media_type)


def install(app: FastAPI) -> Receiver:
    """The span spool, its ingester and the receiver, on ``app.state.tracing``. The ingestion
    thread starts with the app's lifespan (or the first export), not here: building an app
    starts no thread."""
    settings: Settings = app.state.settings
    ingester = TraceIngester(
        settings.home.resolve() / "spool" / "spans",
        app.state.sessions,
        fsync=settings.tracing_fsync,
        interval=settings.tracing_ingest_interval,
    )
    receiver = Receiver(
        app.state.sessions,
        ingester,
        max_attribute_bytes=settings.tracing_max_attribute_bytes,
        max_body_bytes=settings.max_request_bytes,
    )
    app.state.tracing = receiver
    register_error_encoder(OTLP_PATH, otlp_error)  # 4xx and 5xx answered as google.rpc.Status
    return receiver

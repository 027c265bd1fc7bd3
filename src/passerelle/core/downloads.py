"""Streaming a stored object to a client without ever sending a complete corrupted copy."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from passerelle.core.store import ObjectStore


def verified_download(
    store: ObjectStore, sha256: str, size: int | None = None, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """A response streaming ``sha256``, verified as it is read.

    The first chunk is read before answering, so an object that fails verification before any
    byte leaves (every object of one chunk) gets an error status, not a 200; a larger one is cut
    short, which its client sees as an incomplete transfer. The digest goes out as the ``ETag``
    so the client checks it too.
    """
    chunks = store.iter_verified(sha256)
    first = next(chunks, b"")

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    out = {"ETag": f'"{sha256}"', **(headers or {})}
    if size is not None:
        out["Content-Length"] = str(size)
    return StreamingResponse(
        iterate_in_threadpool(body()), media_type="application/octet-stream", headers=out
    )

"""Run the server's ASGI app inside this process, behind a synchronous httpx transport.

Embedded mode (no server) then goes through exactly the same handlers, validation and errors as
a remote server: the SDK has one code path, not two. The app runs on a private event loop in a
daemon thread, so it never keeps a notebook or script from exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx


class InProcessTransport(httpx.BaseTransport):
    """An httpx transport that calls an ASGI app on a private event-loop thread."""

    def __init__(self, app: Any) -> None:
        # App failures become the same 500 answer a remote client gets, not a raw exception.
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._app = app
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="passerelle-embedded", daemon=True
                ).start()
                self._loop = loop
                asyncio.run_coroutine_threadsafe(self._on_loop_start(), loop).result()
            return self._loop

    async def _on_loop_start(self) -> None:
        from passerelle.app import guard_event_loop

        guard_event_loop(self._app)  # as a served app's lifespan does

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        loop = self._get_loop()
        chunks: Iterator[bytes] = iter(request.stream)  # type: ignore[arg-type]

        async def body() -> AsyncIterator[bytes]:
            # Pull the (possibly large, file-backed) body chunk by chunk, off the event loop.
            while (chunk := await loop.run_in_executor(None, next, chunks, None)) is not None:
                yield chunk

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            areq = httpx.Request(
                request.method, request.url, headers=request.headers, content=body()
            )
            resp = await self._asgi.handle_async_request(areq)
            content = b"".join([part async for part in resp.stream])  # type: ignore[union-attr]
            return resp.status_code, resp.headers.raw, content

        try:
            status, headers, content = asyncio.run_coroutine_threadsafe(call(), loop).result()
        except Exception as exc:
            # What a remote client sees when a server fails mid-response: a broken transfer.
            raise httpx.RemoteProtocolError(f"server failed mid-response: {exc}") from exc
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Cancel what still runs on the loop (the micro-batchers' tasks wait there for work),
        wait for it to end, then stop the loop: a task left pending on a stopped loop is
        destroyed with a warning when the loop is collected."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return

        async def cancel_the_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):  # a loop already gone has nothing left to end
            asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)

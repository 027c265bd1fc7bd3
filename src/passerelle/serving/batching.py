"""Adaptive micro-batching: concurrent requests to one version share one model call.

A request alone is predicted at once (no added latency). While others are waiting for the same
version, the batch collects whatever is queued, and waits at most ``max_wait`` for more, up to
``max_rows``. One vectorised ``predict`` and one spool write then serve them all. A batch that
fails is retried request by request, so one bad request cannot fail its neighbours.

A model call that has been measured to take less than ``INLINE_SECONDS`` runs on the event loop
itself: handing it to a worker thread costs more than the call (a thread hop and the GIL changing
hands twice), and while it runs, requests arriving meanwhile queue up for the next, larger batch.
Slower calls (and any call not yet measured) run in a worker thread so that the loop keeps
accepting requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from starlette.concurrency import run_in_threadpool

from passerelle.core.errors import InvalidInput, PasserelleError

INLINE_SECONDS = 0.002


@dataclass
class Pending:
    config: dict[str, Any]  # the endpoint's settings when this request arrived
    records: list[dict[str, Any]]
    table: pa.Table | None  # the validated input, or None when ``matrix`` holds it
    matrix: np.ndarray | None  # the numeric fast path's input (see registry.matrix)
    request_key: str | None
    route: str
    future: asyncio.Future[Any] = field(repr=False)
    batch_id: str | None = None  # set by batch scoring: the rows of one file share it

    @property
    def rows(self) -> int:
        return len(self.records)


class PredictionFailed(InvalidInput):
    code = "prediction_failed"


# predict_many(pending list) -> list of answers (one per pending), run in a worker thread
PredictMany = Callable[[list[Pending]], list[Any]]


class Batcher:
    def __init__(self, predict_many: PredictMany, *, max_rows: int, max_wait: float) -> None:
        self.predict_many = predict_many
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        self.waiting = 0
        self.call_seconds: float | None = None  # moving average of a model call, once measured
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(
        self,
        config: dict[str, Any],
        records: list[dict[str, Any]],
        table: pa.Table | None,
        matrix: np.ndarray | None,
        request_key: str | None,
        route: str,
        batch_id: str | None = None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a queue and a task belong to one event loop
            self._loop, self.queue, self._task = loop, asyncio.Queue(), None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        item = Pending(
            config, records, table, matrix, request_key, route, loop.create_future(), batch_id
        )
        self.waiting += 1
        try:
            await self.queue.put(item)
            return await item.future
        finally:
            self.waiting -= 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            batch, rows = [first], first.rows
            deadline = loop.time() + self.max_wait
            while rows < self.max_rows:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if self.waiting <= len(batch) or remaining <= 0:
                        break  # nobody else is coming now: do not make this batch wait
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                batch.append(item)
                rows += item.rows
            await self._serve(batch)

    def _timed(self, batch: list[Pending]) -> list[Any]:
        started = time.perf_counter()
        try:
            return self.predict_many(batch)
        finally:
            took = time.perf_counter() - started
            known = self.call_seconds
            self.call_seconds = took if known is None else 0.8 * known + 0.2 * took

    async def _call(self, batch: list[Pending]) -> list[Any]:
        known = self.call_seconds
        if known is not None and known < INLINE_SECONDS:
            return self._timed(batch)
        return await run_in_threadpool(self._timed, batch)

    async def _serve(self, batch: list[Pending]) -> None:
        try:
            answers = await self._call(batch)
        except Exception:
            if len(batch) == 1:
                self._fail(batch[0])
                return
            for item in batch:  # isolate the request that broke the batch
                try:
                    answer = (await self._call([item]))[0]
                except Exception:
                    self._fail(item)
                else:
                    if not item.future.done():
                        item.future.set_result(answer)
            return
        for item, answer in zip(batch, answers, strict=True):
            if not item.future.done():
                item.future.set_result(answer)

    @staticmethod
    def _fail(item: Pending) -> None:
        import sys

        exc = sys.exc_info()[1] or RuntimeError("prediction failed")
        if not isinstance(exc, PasserelleError):
            # the input passed the signature, so the model refused it: the caller's request
            # cannot be scored, which is not a server fault
            exc = PredictionFailed(
                f"the model could not score this input: {type(exc).__name__}: {exc}"[:2000],
                field="inputs",
            )
        if not item.future.done():
            item.future.set_exception(exc)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception):
                self._task = None

"""``@observe()``: one observation per call of a sync, async, generator or async-generator
function; a plain function that returns a generator is traced until the generator is consumed.

The wrapper records the arguments by name (``self`` and ``cls`` left out) and the return value,
makes the observation current while the function body runs (so nested calls nest), records an
exception on the observation and re-raises the very same exception object.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from passerelle.sdk.tracing.capture import join_text
from passerelle.sdk.tracing.context import CURRENT
from passerelle.sdk.tracing.span import TYPES, Observation
from passerelle.sdk.tracing.tracer import Tracer, default_tracer

F = TypeVar("F", bound=Callable[..., Any])


def observe(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    as_type: str = "span",
    capture_input: bool = True,
    capture_output: bool = True,
    tracer: Tracer | None = None,
) -> Any:
    """Trace every call of the decorated function.

    Args:
        name: the observation's name (default: the function's ``__qualname__``).
        as_type: ``span``, ``generation``, ``retrieval``, ``tool`` or ``event`` (an event is
            recorded with zero duration).
        capture_input / capture_output: record the arguments / the return value (off for
            large or sensitive values; the ``mask`` of the tracer applies otherwise).
        tracer: the tracer to use; default: the current observation's, else the default one.

    Use as ``@observe`` or ``@observe(...)``.
    """
    if as_type not in TYPES:
        raise ValueError(f"as_type must be one of {sorted(TYPES)}, not {as_type!r}")

    def decorate(fn: F) -> F:
        label = name or fn.__qualname__
        return _Decorator(fn, label, as_type, capture_input, capture_output, tracer).wrap()

    return decorate(func) if func is not None else decorate


class _Decorator:
    """What every call of one decorated function shares, computed once at decoration."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        as_type: str,
        capture_input: bool,
        capture_output: bool,
        tracer: Tracer | None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.as_type = as_type
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.tracer = tracer
        self.names, self.skip_first, self.simple = _parameters(fn)

    # -- shared steps ------------------------------------------------------------------------
    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A new observation (or NOOP) under the current one; never raises."""
        parent = CURRENT.get()
        if parent is not None and not parent.recording:
            return parent  # inside an unsampled trace: nothing to record
        tracer = self.tracer
        if tracer is None:
            tracer = parent.tracer if parent is not None else default_tracer()
        try:
            obs = tracer.start(self.name, self.as_type, parent=parent)
            if obs.recording and self.capture_input:
                obs.set_input(self.arguments(args, kwargs))
        except Exception:  # tracing must not break the call
            return None
        return obs

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.skip_first and args:
            args = args[1:]
        names = self.names
        if self.simple and len(args) <= len(names):
            bound = dict(zip(names, args, strict=False))
            if kwargs:
                bound.update(kwargs)
            return bound
        try:
            # The slow, exact path (``*args`` in the signature); ``self`` bound to a placeholder.
            full = (None, *args) if self.skip_first else args
            out = dict(inspect.signature(self.fn).bind_partial(*full, **kwargs).arguments)
            if self.skip_first:
                out.pop(next(iter(out)), None)
            return out
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}

    def finish(self, obs: Observation, output: Any, has_output: bool) -> None:
        try:
            if has_output and self.capture_output:
                obs.set_output(output)
            if self.as_type == "event":
                obs.end(obs.start_ns)
            else:
                obs.end()
        except Exception:
            pass

    def fail(self, obs: Observation, exc: BaseException) -> None:
        try:
            if isinstance(exc, Exception):
                obs.record_exception(exc)
            else:
                obs.record_interruption(exc)
            obs.end()
        except Exception:
            pass

    # -- wrappers ------------------------------------------------------------------------------
    # An unsampled call runs with the NOOP observation current (so that its children are not
    # recorded either) and goes through the same steps, which do nothing on NOOP.
    def wrap(self) -> Any:
        fn = self.fn
        if inspect.isasyncgenfunction(fn):
            wrapper = self._async_gen_wrapper()
        elif inspect.isgeneratorfunction(fn):
            wrapper = self._gen_wrapper()
        elif inspect.iscoroutinefunction(fn):
            wrapper = self._async_wrapper()
        else:
            wrapper = self._sync_wrapper()
        return functools.wraps(fn)(wrapper)

    def _sync_wrapper(self) -> Callable[..., Any]:
        fn, start, finish, fail = self.fn, self.start, self.finish, self.fail

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            obs = start(args, kwargs)
            if obs is None:
                return fn(*args, **kwargs)
            token = CURRENT.set(obs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                fail(obs, exc)
                raise
            finally:
                CURRENT.reset(token)
            if inspect.isgenerator(result):
                return self._trace_generator(obs, result)
            if inspect.isasyncgen(result):
                return self._trace_async_generator(obs, result)
            finish(obs, result, True)
            return result

        return wrapper

    def _async_wrapper(self) -> Callable[..., Any]:
        fn, start, finish, fail = self.fn, self.start, self.finish, self.fail

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            obs = start(args, kwargs)
            if obs is None:
                return await fn(*args, **kwargs)
            token = CURRENT.set(obs)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                fail(obs, exc)
                raise
            finally:
                CURRENT.reset(token)
            if inspect.isasyncgen(result):
                return self._trace_async_generator(obs, result)
            finish(obs, result, True)
            return result

        return wrapper

    def _gen_wrapper(self) -> Callable[..., Any]:
        fn, start = self.fn, self.start

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            obs = start(args, kwargs)
            if obs is None:
                return (yield from fn(*args, **kwargs))
            token = CURRENT.set(obs)
            try:
                gen = fn(*args, **kwargs)
            except BaseException as exc:
                self.fail(obs, exc)
                raise
            finally:
                CURRENT.reset(token)
            return (yield from self._trace_generator(obs, gen))

        return wrapper

    def _async_gen_wrapper(self) -> Callable[..., Any]:
        fn, start = self.fn, self.start

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            obs = start(args, kwargs)
            if obs is None:
                async for item in fn(*args, **kwargs):
                    yield item
                return
            token = CURRENT.set(obs)
            try:
                agen = fn(*args, **kwargs)
            finally:
                CURRENT.reset(token)
            inner = self._trace_async_generator(obs, agen)
            try:
                async for item in inner:
                    yield item
            finally:  # left early (break, aclose): end the observation now, not at GC
                await inner.aclose()

        return wrapper

    # -- streams ---------------------------------------------------------------------------------
    def _trace_generator(self, obs: Observation, gen: Any) -> Any:
        """Run ``gen`` step by step inside ``obs``; end it when the stream ends or is closed."""
        items: list[Any] = []
        recording = obs.recording
        to_send: Any = None
        to_throw: BaseException | None = None
        first_ns = 0
        while True:
            token = CURRENT.set(obs)
            try:
                item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
            except StopIteration as stop:
                self._finish_stream(obs, items, first_ns, stop.value)
                return stop.value
            except BaseException as exc:
                self.fail(obs, exc)
                raise
            finally:
                CURRENT.reset(token)
            to_throw = None
            if recording:
                if not first_ns:
                    first_ns = time.time_ns()
                items.append(item)
            try:
                to_send = yield item
            except GeneratorExit:  # the consumer stopped early: record what it got
                gen.close()
                self._finish_stream(obs, items, first_ns, None)
                raise
            except BaseException as exc:
                to_throw = exc

    async def _trace_async_generator(self, obs: Observation, agen: Any) -> Any:
        items: list[Any] = []
        recording = obs.recording
        to_send: Any = None
        to_throw: BaseException | None = None
        first_ns = 0
        while True:
            token = CURRENT.set(obs)
            try:
                if to_throw is not None:
                    item = await agen.athrow(to_throw)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                self._finish_stream(obs, items, first_ns, None)
                return
            except BaseException as exc:
                self.fail(obs, exc)
                raise
            finally:
                CURRENT.reset(token)
            to_throw = None
            if recording:
                if not first_ns:
                    first_ns = time.time_ns()
                items.append(item)
            try:
                to_send = yield item
            except GeneratorExit:
                await agen.aclose()
                self._finish_stream(obs, items, first_ns, None)
                raise
            except BaseException as exc:
                to_throw = exc

    def _finish_stream(self, obs: Observation, items: list[Any], first_ns: int, value: Any) -> None:
        if not obs.recording:
            return
        if first_ns and self.as_type == "generation":
            obs.set_attribute("passerelle.ttft_ms", (first_ns - obs.start_ns) / 1e6)
        output = join_text(items) if value is None else {"items": items, "return": value}
        self.finish(obs, output, True)


def _parameters(fn: Callable[..., Any]) -> tuple[list[str], bool, bool]:
    """Positional parameter names, whether the first is ``self``/``cls``, and whether the fast
    path (zip positional args with names) is exact: no ``*args`` and no positional-only tricks."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [], False, False
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    simple = not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    skip_first = bool(positional) and positional[0].name in ("self", "cls")
    names = [p.name for p in positional[1:]] if skip_first else [p.name for p in positional]
    return names, skip_first, simple

"""``psl.openai.wrap(OpenAI(...))``: every chat completion becomes a generation observation.

Recorded: the model asked for and the model that answered, the parameters (temperature,
max_tokens, top_p... and all of them as JSON), the prompt (the messages), the completion (the
assistant message), token usage, latency, and for streams the time to first token. Streams
(``stream=True``) come back wrapped: the observation ends when the stream is exhausted, closed,
fails or is dropped. Streamed usage needs ``stream_options={"include_usage": True}``: the wrapper
does not add it, since it changes the chunks the application receives.

Works with ``OpenAI`` and ``AsyncOpenAI`` (and any OpenAI-compatible server behind
``base_url``); this module never imports the ``openai`` package. Three optional keyword
arguments are taken out of the call before it reaches the client: ``passerelle_name``,
``passerelle_metadata`` and ``passerelle_prompt`` (``{"name": ..., "version": ...}``).
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, TypeVar

from passerelle.sdk.tracing.context import CURRENT
from passerelle.sdk.tracing.span import NOOP, Observation
from passerelle.sdk.tracing.tracer import Tracer, default_tracer

C = TypeVar("C")
_NOT_PARAMETERS = frozenset(
    (
        "messages",
        "model",
        "stream",
        "stream_options",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
        "user",
        "metadata",
        "store",
    )
)
_MARK = "__passerelle_wrapped__"


def wrap(client: C, *, tracer: Tracer | None = None) -> C:
    """Trace ``client.chat.completions.create`` of an OpenAI or AsyncOpenAI client.

    Returns the same client (wrapping twice does nothing). ``tracer``: default, the current
    observation's, else the default tracer.
    """
    completions = client.chat.completions  # type: ignore[attr-defined]
    original = completions.create
    if getattr(original, _MARK, False):
        return client
    wrapped = _traced_create(original, tracer)
    setattr(wrapped, _MARK, True)
    completions.create = wrapped
    return client


def _traced_create(original: Any, tracer: Tracer | None) -> Any:
    """One wrapper for both clients: the async client's ``create`` returns an awaitable (it is
    not always a coroutine function), which is then awaited inside the observation."""

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        obs = _start(tracer, kwargs)
        try:
            response = original(*args, **kwargs)
        except BaseException as exc:
            _fail(obs, exc)
            raise
        stream = kwargs.get("stream") is True
        if inspect.isawaitable(response):
            return _complete_async(response, obs, stream)
        if not obs.recording:
            return response
        if stream:
            return TracedStream(response, obs)
        _finish_response(obs, response)
        return response

    return create


async def _complete_async(awaitable: Any, obs: Any, stream: bool) -> Any:
    try:
        response = await awaitable
    except BaseException as exc:
        _fail(obs, exc)
        raise
    if not obs.recording:
        return response
    if stream:
        return AsyncTracedStream(response, obs)
    _finish_response(obs, response)
    return response


# -- recording -------------------------------------------------------------------------------
def _start(tracer: Tracer | None, kwargs: dict[str, Any]) -> Any:
    """Open the generation; takes the passerelle_* arguments out. Never raises."""
    name = kwargs.pop("passerelle_name", None) or "openai.chat.completions"
    metadata = kwargs.pop("passerelle_metadata", None)
    prompt = kwargs.pop("passerelle_prompt", None) or {}
    try:
        parent = CURRENT.get()
        if tracer is None:
            tracer = parent.tracer if parent is not None and parent.recording else default_tracer()
        obs = tracer.start(name, "generation", parent=parent)
        if not obs.recording:
            return obs
        params = {k: v for k, v in kwargs.items() if k not in _NOT_PARAMETERS and _given(v)}
        obs.set_attribute("gen_ai.provider.name", "openai")
        obs.set_attribute("gen_ai.operation.name", "chat")
        obs.update(
            model=kwargs.get("model"),
            model_parameters=params or None,
            input=kwargs.get("messages"),
            metadata=metadata,
            prompt_name=prompt.get("name"),
            prompt_version=prompt.get("version"),
        )
        return obs
    except Exception:
        return NOOP


def _given(value: Any) -> bool:
    # openai's NOT_GIVEN / omit sentinels mean "not passed".
    return type(value).__name__ not in ("NotGiven", "Omit")


def _fail(obs: Any, exc: BaseException) -> None:
    if not obs.recording:
        return
    try:
        if isinstance(exc, Exception):
            obs.record_exception(exc)
        else:
            obs.record_interruption(exc)
        obs.end()
    except Exception:
        pass


def _finish_response(obs: Observation, response: Any) -> None:
    try:
        messages = [_dump(choice.message) for choice in response.choices]
        reasons = [c.finish_reason for c in response.choices if c.finish_reason]
        _record(obs, response.model, getattr(response, "id", None), messages, reasons)
        _record_usage(obs, getattr(response, "usage", None))
        obs.end()
    except Exception:
        obs.end()


def _record(
    obs: Observation, model: Any, response_id: Any, messages: list[Any], reasons: list[str]
) -> None:
    if model:
        obs.set_attribute("gen_ai.response.model", str(model))
    if response_id:
        obs.set_attribute("gen_ai.response.id", str(response_id))
    if reasons:
        obs.set_attribute("gen_ai.response.finish_reasons", reasons)
    obs.set_output(messages[0] if len(messages) == 1 else messages)


def _record_usage(obs: Observation, usage: Any) -> None:
    if usage is None:
        return
    counts = {
        "input": getattr(usage, "prompt_tokens", None),
        "output": getattr(usage, "completion_tokens", None),
        "total": getattr(usage, "total_tokens", None),
    }
    details = getattr(usage, "prompt_tokens_details", None)
    if details is not None:
        counts["cached"] = getattr(details, "cached_tokens", None)
    obs.update(usage={k: v for k, v in counts.items() if isinstance(v, int)})


def _dump(message: Any) -> Any:
    dump = getattr(message, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else message


# -- streams ---------------------------------------------------------------------------------
class _Accumulator:
    """Rebuilds the completion from a stream's chunks, and notes when the first token came."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.first_ns = 0
        self.model: str | None = None
        self.response_id: str | None = None
        self.usage: Any = None
        self.choices: dict[int, dict[str, Any]] = {}
        self.done = False

    def add(self, chunk: Any) -> None:
        try:
            self.model = getattr(chunk, "model", None) or self.model
            self.response_id = getattr(chunk, "id", None) or self.response_id
            if getattr(chunk, "usage", None) is not None:
                self.usage = chunk.usage
            for choice in getattr(chunk, "choices", None) or ():
                self._add_choice(choice)
        except Exception:
            pass

    def _add_choice(self, choice: Any) -> None:
        state = self.choices.setdefault(
            choice.index, {"role": "assistant", "content": [], "tool_calls": {}, "finish": None}
        )
        delta = choice.delta
        if delta is not None:
            if delta.role:
                state["role"] = delta.role
            if delta.content:
                self._first_token()
                state["content"].append(delta.content)
            for call in delta.tool_calls or ():
                self._first_token()
                slot = state["tool_calls"].setdefault(
                    call.index, {"id": None, "type": "function", "name": "", "arguments": ""}
                )
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
        if choice.finish_reason:
            state["finish"] = choice.finish_reason

    def _first_token(self) -> None:
        if not self.first_ns:
            self.first_ns = time.time_ns()

    def finish(self, exc: BaseException | None) -> None:
        """End the generation once, with what arrived so far."""
        if self.done:
            return
        self.done = True
        obs = self.obs
        try:
            messages = []
            for _, state in sorted(self.choices.items()):
                message: dict[str, Any] = {
                    "role": state["role"],
                    "content": "".join(state["content"]) or None,
                }
                if state["tool_calls"]:
                    message["tool_calls"] = [
                        {
                            "id": c["id"],
                            "type": c["type"],
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for _, c in sorted(state["tool_calls"].items())
                    ]
                messages.append(message)
            reasons = [s["finish"] for _, s in sorted(self.choices.items()) if s["finish"]]
            _record(obs, self.model, self.response_id, messages, reasons)
            _record_usage(obs, self.usage)
            if self.first_ns:
                obs.update(ttft_ms=(self.first_ns - obs.start_ns) / 1e6)
            if exc is not None:
                if isinstance(exc, Exception):
                    obs.record_exception(exc)
                else:
                    obs.record_interruption(exc)
        except Exception:
            pass
        obs.end()


class TracedStream:
    """The application's stream, unchanged, with the generation recorded as it is consumed."""

    def __init__(self, stream: Any, obs: Observation) -> None:
        self._stream = stream
        self._iterator = iter(stream)
        self._acc = _Accumulator(obs)

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._acc.finish(None)
            raise
        except BaseException as exc:
            self._acc.finish(exc)
            raise
        self._acc.add(chunk)
        return chunk

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._acc.finish(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:  # dropped before the end: record what arrived
        acc = self.__dict__.get("_acc")
        if acc is not None:
            acc.finish(None)


class AsyncTracedStream:
    """The async twin of ``TracedStream``."""

    def __init__(self, stream: Any, obs: Observation) -> None:
        self._stream = stream
        self._iterator = stream.__aiter__()
        self._acc = _Accumulator(obs)

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._acc.finish(None)
            raise
        except BaseException as exc:
            self._acc.finish(exc)
            raise
        self._acc.add(chunk)
        return chunk

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._acc.finish(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        acc = self.__dict__.get("_acc")
        if acc is not None:
            acc.finish(None)

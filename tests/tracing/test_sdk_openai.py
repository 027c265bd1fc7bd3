"""The OpenAI wrapper, through the real ``openai`` package against a local server that speaks
the chat completions protocol (JSON and SSE streams)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest

import passerelle as psl
from passerelle.sdk.tracing.tracer import Tracer
from tests.tracing._sdk_servers import (  # noqa: F401 (fixtures)
    ChatServer,
    OtlpServer,
    exporter_fixture,
    otlp_fixture,
    tracer_fixture,
)

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Capital of France?"},
]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer().start()
    yield server
    server.stop()


def sync_client(chat: ChatServer, tracer: Tracer) -> openai.OpenAI:
    client = openai.OpenAI(base_url=chat.url + "/v1", api_key="sk-test", max_retries=0)
    return psl.openai.wrap(client, tracer=tracer)


def async_client(chat: ChatServer, tracer: Tracer) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(base_url=chat.url + "/v1", api_key="sk-test", max_retries=0)
    return psl.openai.wrap(client, tracer=tracer)


def generation(otlp: OtlpServer) -> dict:
    [span] = [
        s for s in otlp.spans if s["attributes"]["passerelle.observation.type"] == "generation"
    ]
    return span


def test_a_completion_is_recorded(chat: ChatServer, tracer: Tracer, otlp: OtlpServer) -> None:
    client = sync_client(chat, tracer)
    with tracer.trace("ask") as t:
        resp = client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            temperature=0.3,
            max_tokens=64,
            top_p=0.9,
            seed=42,
            passerelle_name="answer",
            passerelle_prompt={"name": "qa", "version": 4},
            passerelle_metadata={"team": "search"},
        )
    assert resp.choices[0].message.content == chat.reply
    assert not any(k.startswith("passerelle") for k in chat.requests[0])  # taken out
    tracer.flush()
    span = generation(otlp)
    a = span["attributes"]
    assert span["name"] == "answer" and span["parent_id"] == t.id
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-test"
    assert a["gen_ai.response.model"] == chat.served_model
    assert a["gen_ai.request.temperature"] == 0.3
    assert a["gen_ai.request.max_tokens"] == 64 and a["gen_ai.request.top_p"] == 0.9
    assert json.loads(a["passerelle.model_parameters"]) == {
        "temperature": 0.3,
        "max_tokens": 64,
        "top_p": 0.9,
        "seed": 42,
    }
    assert json.loads(a["input.value"]) == MESSAGES
    assert json.loads(a["output.value"]) == {"role": "assistant", "content": chat.reply}
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 6
    assert a["passerelle.usage.total_tokens"] == 18
    assert a["gen_ai.usage.cache_read.input_tokens"] == 4
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["passerelle.prompt.name"] == "qa" and a["passerelle.prompt.version"] == "4"
    assert json.loads(a["passerelle.metadata"]) == {"team": "search"}
    assert span["end"] > span["start"]  # the latency


def test_a_stream_is_recorded_with_time_to_first_token(
    chat: ChatServer, tracer: Tracer, otlp: OtlpServer
) -> None:
    chat.first_token_delay = 0.05
    client = sync_client(chat, tracer)
    stream = client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == chat.reply
    tracer.flush()
    a = generation(otlp)["attributes"]
    assert json.loads(a["output.value"]) == {"role": "assistant", "content": chat.reply}
    assert a["gen_ai.usage.output_tokens"] == 6 and a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.response.model"] == chat.served_model
    # the first content chunk comes after the server's pause, the role chunk before it
    assert a["passerelle.ttft_ms"] >= 50
    assert "passerelle.model_parameters" not in a  # stream and stream_options are not any


def test_a_stream_left_early_is_recorded_as_far_as_it_went(
    chat: ChatServer, tracer: Tracer, otlp: OtlpServer
) -> None:
    client = sync_client(chat, tracer)
    with client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True) as s:
        for chunk in s:
            if chunk.choices and chunk.choices[0].delta.content:
                break  # the first word is enough
    tracer.flush()
    a = generation(otlp)["attributes"]
    assert json.loads(a["output.value"])["content"] == "Paris"
    assert "gen_ai.usage.input_tokens" not in a  # no usage without include_usage


def test_async_client_plain_and_streaming(
    chat: ChatServer, tracer: Tracer, otlp: OtlpServer
) -> None:
    client = async_client(chat, tracer)

    @tracer.observe(name="pipeline")
    async def pipeline() -> str:
        resp = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return resp.choices[0].message.content + "|" + "".join(parts)

    assert asyncio.run(pipeline()) == chat.reply + "|" + chat.reply
    tracer.flush()
    spans = otlp.spans
    [parent] = [s for s in spans if s["name"] == "pipeline"]
    gens = [s for s in spans if s["name"] == "openai.chat.completions"]
    assert len(gens) == 2 and all(g["parent_id"] == parent["span_id"] for g in gens)
    for g in gens:
        assert json.loads(g["attributes"]["output.value"])["content"] == chat.reply
        assert g["attributes"]["passerelle.usage.total_tokens"] == 18
    assert sum("passerelle.ttft_ms" in g["attributes"] for g in gens) == 1  # the stream only


def test_a_provider_error_is_recorded_and_reraised(
    chat: ChatServer, tracer: Tracer, otlp: OtlpServer
) -> None:
    chat.fail_with = 400
    client = sync_client(chat, tracer)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert info.value.status_code == 400
    tracer.flush()
    span = generation(otlp)
    assert span["status"][0] == 2
    assert span["events"][0]["attributes"]["exception.type"] == "openai.BadRequestError"
    assert json.loads(span["attributes"]["input.value"]) == MESSAGES


def test_wrapping_twice_records_once(chat: ChatServer, tracer: Tracer, otlp: OtlpServer) -> None:
    client = psl.openai.wrap(sync_client(chat, tracer), tracer=tracer)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    tracer.flush()
    assert len(otlp.spans) == 1


def test_the_wrapper_does_not_import_openai() -> None:
    code = "import sys, passerelle as psl; psl.openai; psl.observe; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

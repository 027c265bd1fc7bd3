"""What the tracing pages show, computed from service results (pure functions, no HTTP).

Prompts and completions arrive in many shapes (a plain text, OpenAI chat messages, GenAI
messages with ``parts``, a list of choices); ``chat_messages`` turns whichever it recognises into
role + text pairs so a page can show a conversation rather than a JSON dump.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

TIME_FORMAT = "%Y-%m-%dT%H:%M"


def _text_of(content: Any) -> str | None:
    """The text of a message's content: a string, OpenAI content parts, or GenAI parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        for key in ("content", "text"):
            if isinstance(content.get(key), str):
                return content[key]
        return None
    if isinstance(content, list):
        texts = [_text_of(part) for part in content]
        known = [t for t in texts if t is not None]
        return "\n".join(known) if known else None
    return None


def chat_messages(text: str | None) -> list[dict[str, str]] | None:
    """``[{"role", "content"}]`` when ``text`` is a JSON list of chat messages, else ``None``."""
    if not text or text[:1] not in "[{":
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, dict):
        value = value.get("messages") if isinstance(value.get("messages"), list) else [value]
    if not isinstance(value, list) or not value:
        return None
    messages = []
    for item in value:
        if not isinstance(item, dict):
            return None
        message = item.get("message") if isinstance(item.get("message"), dict) else item
        content = _text_of(message.get("content", message.get("parts")))
        if content is None:
            return None
        messages.append({"role": str(message.get("role") or "assistant"), "content": content})
    return messages


def pretty(text: str | None) -> str:
    """JSON indented for reading; any other text as it is."""
    if not text:
        return ""
    if text[:1] in "[{":
        try:
            return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            pass
    return text


def waterfall(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each observation with its bar on the trace's timeline, in percent of the whole."""
    if not observations:
        return []
    start = min(o["start_ns"] for o in observations)
    end = max(o["start_ns"] + o["latency_ms"] * 1e6 for o in observations)
    total = max(end - start, 1.0)
    rows = []
    for o in observations:
        left = (o["start_ns"] - start) / total * 100
        width = max(o["latency_ms"] * 1e6 / total * 100, 0.4)
        rows.append(
            {
                **o,
                "bar_left": round(min(left, 99.6), 2),
                "bar_width": round(min(width, 100 - left), 2),
                "offset_ms": (o["start_ns"] - start) / 1e6,
                "messages_in": chat_messages(o["input"]) if o["type"] == "generation" else None,
                "messages_out": chat_messages(o["output"]) if o["type"] == "generation" else None,
                "input_pretty": pretty(o["input"]),
                "output_pretty": pretty(o["output"]),
                "metadata_pretty": pretty(orjson.dumps(o["metadata"]).decode())
                if o["metadata"]
                else "",
            }
        )
    return rows


def parse_local_time(value: str | None) -> int | None:
    """A ``datetime-local`` form value (UTC) as milliseconds, ``None`` when empty or invalid."""
    if not value:
        return None
    try:
        moment = dt.datetime.strptime(value[:16], TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def money(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def latency(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def cost_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A stacked bar chart of cost per day, one series per model (a plotly figure)."""
    from passerelle.web.charts import CONFIG, FONT, PALETTE

    models = sorted({r["model"] for r in rows})
    days = sorted({r["day"] for r in rows})
    data = []
    for i, model in enumerate(models):
        by_day = {r["day"]: r["cost"] for r in rows if r["model"] == model}
        data.append(
            {
                "type": "bar",
                "name": model,
                "x": days,
                "y": [by_day.get(d, 0.0) for d in days],
                "marker": {"color": PALETTE[i % len(PALETTE)]},
            }
        )
    layout = {
        "barmode": "stack",
        "font": FONT,
        "height": 280,
        "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
        "xaxis": {"type": "category"},  # one bar per day, even for a single day
        "yaxis": {"title": {"text": "USD"}},
        "legend": {"orientation": "h"},
    }
    return {"data": data, "layout": layout, "config": CONFIG}

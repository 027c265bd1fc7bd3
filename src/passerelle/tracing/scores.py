"""Scores of traces and observations, and a project's own model prices.

A score is stored as soon as it arrives, whether or not its trace has been received yet: the
SDK exports spans in the background, so a score sent right after a trace often wins the race.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.ids import now_ms
from passerelle.core.upsert import upsert
from passerelle.tracing.costs import Price, default_prices, project_overrides
from passerelle.tracing.models import ModelPrice, Score
from passerelle.tracing.schemas import ScoreIn


def _infer(score: ScoreIn, index: int) -> tuple[str, float | None, str | None]:
    """(data type, numeric value, text value), or ``InvalidInput`` naming the score."""
    value = score.value
    kind = score.data_type or (
        "boolean"
        if isinstance(value, bool)
        else "categorical"
        if isinstance(value, str)
        else "numeric"
    )
    field = f"scores.{index}.value"
    if kind == "boolean":
        if not isinstance(value, bool) and value not in (0, 1):
            raise InvalidInput("a boolean score is true, false, 0 or 1", field=field)
        return kind, float(bool(value)), None
    if kind == "numeric":
        if isinstance(value, bool | str):
            raise InvalidInput("a numeric score needs a number", field=field)
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput("a numeric score must be finite", field=field)
        return kind, float(value), None
    text = value if isinstance(value, str) else str(value).lower()
    if len(text) > 1000 or "\x00" in text:
        raise InvalidInput("a category is up to 1,000 characters, without NUL", field=field)
    return kind, None, text


def create_scores(session: Session, project_id: int, scores: list[ScoreIn]) -> int:
    now = now_ms()
    rows: list[dict[str, Any]] = []
    for i, s in enumerate(scores):
        kind, number, text = _infer(s, i)
        if s.comment is not None and "\x00" in s.comment:
            raise InvalidInput("the comment holds a NUL character", field=f"scores.{i}.comment")
        rows.append(
            {
                "project_id": project_id,
                "trace_id": s.trace_id.lower(),
                "observation_id": s.observation_id.lower() if s.observation_id else None,
                "name": s.name,
                "data_type": kind,
                "value": number,
                "string_value": text,
                "source": s.source,
                "comment": s.comment,
                "created_at": now,
            }
        )
    session.execute(insert(Score), rows)
    return len(rows)


# -- prices ------------------------------------------------------------------------------------
def _price_public(model: str, price: Price, source: str) -> dict[str, Any]:
    return {
        "model": model,
        "input_per_mtok": price.input,
        "output_per_mtok": price.output,
        "cached_input_per_mtok": price.cached_input,
        "source": source,
    }


def list_prices(session: Session, project_id: int) -> list[dict[str, Any]]:
    """The project's price table: its own prices, then the shipped ones it does not override."""
    own = project_overrides(session, project_id)
    table = [_price_public(m, p, "project") for m, p in sorted(own.items())]
    table += [
        _price_public(m, p, "default") for m, p in sorted(default_prices().items()) if m not in own
    ]
    return table


def check_model_name(model: str) -> str:
    name = model.strip().lower()
    if not name or len(name) > 500 or "\x00" in name:
        raise InvalidInput("a model name has 1 to 500 characters", field="model")
    return name


def set_price(session: Session, project_id: int, model: str, price: Price) -> dict[str, Any]:
    name = check_model_name(model)
    upsert(
        session,
        ModelPrice,
        [
            {
                "project_id": project_id,
                "model": name,
                "input_per_mtok": price.input,
                "output_per_mtok": price.output,
                "cached_input_per_mtok": price.cached_input,
                "updated_at": now_ms(),
            }
        ],
        ["project_id", "model"],
        ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "updated_at"],
    )
    return _price_public(name, price, "project")


def delete_price(session: Session, project_id: int, model: str) -> None:
    name = check_model_name(model)
    found = session.scalar(
        select(ModelPrice.id).where(ModelPrice.project_id == project_id, ModelPrice.model == name)
    )
    if found is None:
        raise NotFound(f"the project has no price of its own for '{name}'", field="model")
    session.execute(delete(ModelPrice).where(ModelPrice.id == found))

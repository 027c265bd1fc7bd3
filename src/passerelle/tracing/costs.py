"""What a generation cost: the shipped price table, a project's own prices over it, the formula.

A model name is matched exactly first, then by the longest known name it starts with, so dated
releases (``gpt-4o-2024-08-06``) and provider prefixes (``openai/gpt-4o``) find their price while
``gpt-4o-mini`` never takes ``gpt-4o``'s. Cached input tokens are part of the input tokens (as
providers count them) and are charged at the cached price when the model has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.tracing.models import ModelPrice

PER = 1_000_000


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int) -> float:
        cached = min(cached_tokens, input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return (
            (input_tokens - cached) * self.input
            + cached * cached_rate
            + output_tokens * self.output
        ) / PER


@cache
def default_prices() -> dict[str, Price]:
    """The table shipped in ``prices.json``."""
    raw = json.loads(files("passerelle.tracing").joinpath("prices.json").read_text())
    return {name: Price(*values) for name, values in raw["models"].items()}


class PriceTable:
    """The shipped prices with one project's own prices on top."""

    def __init__(self, overrides: dict[str, Price] | None = None) -> None:
        self.prices = {**default_prices(), **{k.lower(): v for k, v in (overrides or {}).items()}}
        self._names = sorted(self.prices, key=len, reverse=True)

    def find(self, model: str) -> tuple[str, Price] | None:
        """The price entry for ``model``: exact, then longest prefix, with or without a
        ``provider/`` prefix."""
        wanted = model.strip().lower()
        for candidate in dict.fromkeys((wanted, wanted.rsplit("/", 1)[-1])):
            if candidate in self.prices:
                return candidate, self.prices[candidate]
            for name in self._names:
                if candidate.startswith(name):
                    return name, self.prices[name]
        return None

    def cost(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_tokens: int | None,
    ) -> float | None:
        """The cost in USD, or ``None`` when the model or its usage is unknown."""
        if not model or (input_tokens is None and output_tokens is None):
            return None
        found = self.find(model)
        if found is None:
            return None
        return found[1].cost(input_tokens or 0, output_tokens or 0, cached_tokens or 0)


def project_overrides(session: Session, project_id: int) -> dict[str, Price]:
    rows = session.scalars(select(ModelPrice).where(ModelPrice.project_id == project_id))
    return {
        r.model: Price(r.input_per_mtok, r.output_per_mtok, r.cached_input_per_mtok) for r in rows
    }


def price_table(session: Session, project_id: int) -> PriceTable:
    return PriceTable(project_overrides(session, project_id))

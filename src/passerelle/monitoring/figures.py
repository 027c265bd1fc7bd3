"""Figures alert rules watch, looked up by name in a small registry of providers.

A provider computes one figure of an endpoint over a time range and says on how many samples
it rests. Live-traffic figures (``requests``, ``error_rate``, ``latency_p95``...) and
performance figures (``accuracy``, ``f1_macro``, ``mae``..., and ``estimated_accuracy``...)
are built in. Another kind of figure plugs in by name or by prefix, e.g. drift::

    from passerelle.monitoring.figures import Figure, register_figure_family

    def drift_figure(ctx, name):          # name: "drift.age", "drift.share"...
        ...                               # read ctx.frame() / ctx.since / ctx.until
        return Figure(value=0.31, samples=5000)

    register_figure_family("drift.", drift_figure)

after which ``passerelle alerts add churn --metric drift.age --above 0.2`` is accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.orm import Session

from passerelle.core.errors import InvalidInput
from passerelle.monitoring import estimate, performance
from passerelle.monitoring.service import Labelled, detect_task, group_figures, load, version_models
from passerelle.serving.inference_log import InferenceLog


@dataclass
class Figure:
    value: float | None
    samples: int


@dataclass
class FigureContext:
    """What a provider may read: the endpoint's predictions in the range, loaded once and
    shared by every rule of the same endpoint, window and version in one evaluation."""

    session: Session
    log: InferenceLog
    endpoint_id: int
    endpoint_name: str
    since: int
    until: int
    version: int | None = None
    _loaded: Labelled | None = field(default=None, repr=False)
    _performance: dict[str, Any] | None = field(default=None, repr=False)
    cache: dict[str, Any] = field(default_factory=dict, repr=False)  # a family's shared work

    def loaded(self) -> Labelled:
        if self._loaded is None:
            self._loaded = load(
                self.session, self.log, self.endpoint_id, self.endpoint_name, self.since, self.until
            )
        return self._loaded

    def frame(self) -> pl.DataFrame:
        """Rows watched: one version's (any route) when the rule names one, else every
        prediction answered to callers (shadow copies left out)."""
        frame = self.loaded().frame
        if self.version is not None:
            return frame.filter(pl.col("version") == self.version)
        return frame.filter(pl.col("route") != "shadow")

    def performance(self) -> dict[str, Any]:
        if self._performance is None:
            loaded = self.loaded()
            rows = self.frame()["row"].to_numpy()
            task = detect_task(loaded)
            classes, calibrator = version_models(loaded, rows)
            self._performance = group_figures(loaded, rows, task, classes, calibrator)
        return self._performance


FigureProvider = Callable[[FigureContext, str], Figure]
FigureCheck = Callable[..., None]
_PROVIDERS: dict[str, FigureProvider] = {}
_FAMILIES: dict[str, FigureProvider] = {}
_CHECKS: dict[str, FigureCheck] = {}
ALIASES = {
    "f1": "f1_macro",
    "precision": "precision_macro",
    "recall": "recall_macro",
    "auc": "roc_auc",
    "latency": "latency_p95",
    "error": "error_rate",
}


def register_figure(name: str, provider: FigureProvider) -> None:
    """Make ``name`` a figure alert rules may watch."""
    _PROVIDERS[name] = provider


def register_figure_family(
    prefix: str, provider: FigureProvider, check: FigureCheck | None = None
) -> None:
    """Make every name starting with ``prefix`` a figure; the provider gets the full name.

    ``check(app_state, session, principal, endpoint, project, name)``, when given, is called
    as a rule is created and raises ``InvalidInput`` for a name the family cannot compute
    (a column the endpoint does not have), so a typo is refused instead of never firing.
    """
    _FAMILIES[prefix] = provider
    if check is not None:
        _CHECKS[prefix] = check


def check_new_rule(
    app_state: Any,
    session: Session,
    principal: Any,
    endpoint: str,
    project: str | None,
    name: str,
) -> None:
    """Run the family's check, if any, on a metric a new rule is about to watch (an unknown
    name is left to the rule's creation, which refuses it after checking the endpoint)."""
    name = ALIASES.get(name, name)
    for prefix, check in _CHECKS.items():
        if name.startswith(prefix):
            check(app_state, session, principal, endpoint, project, name)


def canonical(name: str) -> str:
    """The figure's registered name, or ``InvalidInput`` naming the field ``metric``."""
    name = ALIASES.get(name, name)
    if name in _PROVIDERS or any(name.startswith(p) for p in _FAMILIES):
        return name
    raise InvalidInput(
        f"unknown metric '{name[:100]}': choose one of {', '.join(known_figures())}",
        field="metric",
    )


def known_figures() -> list[str]:
    return sorted(_PROVIDERS) + [f"{p}<name>" for p in sorted(_FAMILIES)]


def compute(ctx: FigureContext, name: str) -> Figure:
    if name in _PROVIDERS:
        return _PROVIDERS[name](ctx, name)
    for prefix, provider in _FAMILIES.items():
        if name.startswith(prefix):
            return provider(ctx, name)
    raise InvalidInput(f"unknown metric '{name[:100]}'", field="metric")


# -- built-in figures ----------------------------------------------------------------------------
def _requests(ctx: FigureContext, _: str) -> Figure:
    n = ctx.frame().height
    return Figure(float(n), n)


def _error_rate(ctx: FigureContext, _: str) -> Figure:
    frame = ctx.frame()
    if frame.height == 0:
        return Figure(None, 0)
    return Figure(frame.filter(pl.col("status") != "ok").height / frame.height, frame.height)


def _latency(ctx: FigureContext, name: str) -> Figure:
    """Per model call (rows of one call share their time and latency)."""
    calls = ctx.frame().filter(pl.col("status") == "ok").unique(subset=["ts", "latency_ms"])
    values = calls["latency_ms"].drop_nulls().to_numpy()
    if len(values) == 0:
        return Figure(None, 0)
    stat = {"latency_p50": 50, "latency_p95": 95, "latency_p99": 99}.get(name)
    value = float(np.percentile(values, stat)) if stat else float(values.mean())
    return Figure(value, len(values))


def _measured(ctx: FigureContext, name: str) -> Figure:
    perf = ctx.performance()
    return Figure(perf["metrics"].get(name), perf["labelled"])


def _estimated(ctx: FigureContext, name: str) -> Figure:
    found = ctx.performance().get("estimate")
    if not found:
        return Figure(None, 0)
    return Figure(found["metrics"].get(name.removeprefix("estimated_")), found["predictions"])


register_figure("requests", _requests)
register_figure("error_rate", _error_rate)
for _name in ("latency_mean", "latency_p50", "latency_p95", "latency_p99"):
    register_figure(_name, _latency)
for _name in (*performance.CLASSIFICATION, *performance.REGRESSION):
    register_figure(_name, _measured)
for _name in estimate.ESTIMATED:
    register_figure(f"estimated_{_name}", _estimated)

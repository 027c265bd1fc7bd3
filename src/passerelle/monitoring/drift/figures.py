"""Drift figures alert rules may watch: ``drift.share``, ``drift.drifted``,
``drift.prediction`` and ``drift.<column>``.

Each is read from the same drift computation as the drift page, over the rule's trailing
window of the inference log, split in aligned windows (hours for a day, days beyond) whose
summaries are cached once finished: an evaluation every 30 seconds reads only the current
window from the log. Every rule of one endpoint and window shares one computation.

- ``drift.share``: the share of the reference's features flagged as drifted (0 to 1).
- ``drift.drifted``: how many features are flagged.
- ``drift.prediction``: the statistic of the prediction's drift test.
- ``drift.multivariate``: the domain classifier's ROC AUC (0.5: the window's rows cannot be told
  from the reference's; its own verdict flags 0.55 and above). Only rules on it train the
  classifier, on up to 5,000 rows per side: about a third of a second of CPU per evaluation.
- ``drift.<column>``: the statistic of that feature's drift test (its scale depends on the
  test, as on the drift page: a distance for large samples, KS's D or chi-squared below).

The samples of a figure are the rows of the window (of the column, for one column). A rule
that names a model version watches that version's answers alone, a shadow's included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from passerelle.core.errors import InvalidInput, NotFound
from passerelle.monitoring.drift import reference, service, windows
from passerelle.monitoring.drift.compare import PREDICTION
from passerelle.monitoring.figures import Figure, FigureContext, register_figure_family
from passerelle.serving.models import Endpoint

PREFIX = "drift."
SUMMARIES = ("share", "drifted", "prediction", "multivariate")  # names that are not columns
_LADDER = (windows.DAY_MS, 3_600_000, 900_000, 300_000, 60_000)


def granularity(window_ms: int) -> int:
    """The window length the rule's window is split in: hours for a day (the drift page's
    cached windows), days beyond, shorter for short rules so the first aligned window adds
    at most a quarter to the rule's window."""
    if window_ms > windows.DAY_MS:
        return windows.DAY_MS
    for length in _LADDER[1:]:
        if 4 * length <= window_ms:
            return length
    return window_ms


def _answer(ctx: FigureContext, multivariate: bool = False) -> dict[str, Any] | None:
    """The drift answer for the context's range, computed once per context (and once more with
    the domain classifier, for a rule on it); None while the endpoint has no reference (it is
    set when a rule on drift is created)."""
    key = "drift+multivariate" if multivariate else "drift"
    if key in ctx.cache:
        return ctx.cache[key]
    store = ctx.log.store
    endpoint = ctx.session.get(Endpoint, ctx.endpoint_id)
    found = reference.load_reference(store, ctx.endpoint_id) if endpoint else None
    answer = None
    if endpoint is not None and found is not None:
        ctx.log.compact()  # this process's latest predictions are in the parts
        spans = windows.bounds(ctx.since, ctx.until, granularity(ctx.until - ctx.since))
        answer = service.drift_of(
            store,
            endpoint,
            found[0],
            found[1],
            spans,
            ctx.until,
            multivariate=multivariate,
            version=ctx.version,
        )
    ctx.cache[key] = answer
    return answer


def drift_figure(ctx: FigureContext, name: str) -> Figure:
    what = name.removeprefix(PREFIX)
    answer = _answer(ctx, multivariate=what == "multivariate")
    if answer is None:
        return Figure(None, 0)
    rows = int(answer["rows"]["current"])
    if what == "multivariate":
        found = answer.get("multivariate")
        if not found or found["statistic"] is None:
            return Figure(None, rows)
        return Figure(float(found["statistic"]), rows)
    features = answer["columns"]
    if what in ("share", "drifted"):
        if not rows or not features:
            return Figure(None, rows)
        flagged = sum(1 for c in features if c["drifted"])
        return Figure(flagged / len(features) if what == "share" else float(flagged), rows)
    column = answer["prediction"] if what == "prediction" else None
    column = column or next((c for c in features if c["column"] == what), None)
    if column is None or column["statistic"] is None:
        return Figure(None, 0)
    return Figure(float(column["statistic"]), int(column["rows"]["current"]))


def check_drift_metric(
    app_state: Any,
    session: Session,
    principal: Any,
    endpoint: str,
    project: str | None,
    name: str,
) -> None:
    """Refuse a column the reference does not have; set the reference (the primary version's
    training snapshot, with its predictions) if the endpoint has none yet."""
    what = name.removeprefix(PREFIX)
    try:
        _, table, _ = service.get_reference(
            session,
            principal,
            app_state.store,
            getattr(app_state, "serving", None),
            endpoint,
            project,
        )
    except NotFound as exc:
        if exc.field != "reference":
            raise
        return  # no version yet: the rule waits for a reference
    columns = [c for c in table.column_names if c != PREDICTION]
    if what not in SUMMARIES and what not in columns:
        shown = ", ".join([*(PREFIX + s for s in SUMMARIES), *(PREFIX + c for c in columns)])
        raise InvalidInput(
            f"unknown metric '{name[:100]}': the reference of '{endpoint}' has no column "
            f"'{what[:80]}'; drift figures are {shown[:400]}",
            field="metric",
        )


register_figure_family(PREFIX, drift_figure, check_drift_metric)

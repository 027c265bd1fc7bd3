"""Multivariate drift: can a classifier tell current rows from reference rows?

A gradient-boosted classifier learns to separate a sample of each side; its out-of-fold scores
give an ROC AUC (0.5: indistinguishable) and, through the Mann-Whitney U test of those scores,
a p-value. This catches changes no single column shows (a correlation that broke).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from passerelle.monitoring.drift.detectors import Detector, DriftScore
from passerelle.monitoring.drift.sketches import as_float_array, as_text_array

MAX_ROWS = 5000  # per side: enough for an AUC within about 0.01, fast on one core


BINS = 64  # quantiles per numeric column: the booster then finds its few distinct values at once
MAX_LEVELS = 250  # the booster's limit of categories per column; rarer ones count as missing


def _quantile_bins(values: np.ndarray) -> np.ndarray:
    """Each value's quantile bin over the pooled rows (NaN stays NaN)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return values
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
    binned = np.searchsorted(edges, values, side="right").astype(np.float64)
    binned[np.isnan(values)] = np.nan
    return binned


def _level_ranks(text: pa.Array) -> np.ndarray:
    """Each value's level, numbered commonest first; missing and rarer than the booster's
    limit of levels as NaN."""
    encoded = pc.dictionary_encode(text)
    codes = encoded.indices.to_numpy(zero_copy_only=False)  # NaN where missing
    known = ~np.isnan(codes)
    index = codes[known].astype(np.int64)
    counts = np.bincount(index, minlength=len(encoded.dictionary))
    rank = np.empty(len(counts), dtype=np.float64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    rank[rank >= MAX_LEVELS] = np.nan
    out = np.full(len(codes), np.nan)
    out[known] = rank[index]
    return out


def _matrix(ref: pa.Table, cur: pa.Table, kinds: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Both samples stacked as one float matrix the booster takes as is: each numeric column
    replaced by its quantile bin over the pooled rows, each categorical one by its level's rank,
    missing values as NaN; and the mask of categorical columns.

    Binning once here, rather than in each of the booster's fits, and handing it numbers rather
    than a DataFrame to encode, halves the classifier's time; 64 quantiles keep any shift of a
    tenth of a deviation visible."""
    x = np.empty((ref.num_rows + cur.num_rows, len(kinds)), dtype=np.float64)
    categorical = np.array([kind != "numeric" for kind in kinds.values()], dtype=bool)
    for j, name in enumerate(kinds):
        sides = [
            t.column(name) if name in t.column_names else pa.nulls(t.num_rows) for t in (ref, cur)
        ]
        if categorical[j]:
            x[:, j] = _level_ranks(
                pa.chunked_array([as_text_array(c) for c in sides]).combine_chunks()
            )
        else:
            x[:, j] = _quantile_bins(np.concatenate([as_float_array(c) for c in sides]))
    return x, categorical


def _sample(table: pa.Table, limit: int, seed: int) -> pa.Table:
    if table.num_rows <= limit:
        return table
    rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, limit, replace=False))
    return table.take(pa.array(rows))


class DomainClassifier(Detector):
    """Flag drift when the out-of-fold AUC reaches ``threshold`` and is significant at
    ``alpha``. ``fit`` and ``score`` take tables (pandas, Polars or Arrow) of the columns in
    ``kinds`` (column name to ``numeric`` or ``categorical``; inferred when ``None``)."""

    test = "domain_classifier"
    applies_to = ("table",)
    uses_p_value = True
    default_threshold = 0.55

    def __init__(
        self,
        threshold: float | None = None,
        alpha: float = 0.05,
        kinds: dict[str, str] | None = None,
        max_rows: int = MAX_ROWS,
        random_state: int = 0,
    ) -> None:
        self.threshold = threshold
        self.alpha = alpha
        self.kinds = kinds
        self.max_rows = max_rows
        self.random_state = random_state

    def decide(self, statistic: float | None, p_value: float | None) -> bool:
        return (
            statistic is not None
            and statistic >= self.threshold_
            and p_value is not None
            and p_value < self.alpha
        )

    def fit(self, reference: Any) -> DomainClassifier:
        from passerelle.monitoring.drift.defaults import as_table, infer_kinds

        table = as_table(reference)
        self.kinds_ = dict(self.kinds) if self.kinds else infer_kinds(table)
        self.reference_ = _sample(table, self.max_rows, self.random_state)
        return self

    def score(self, current: Any) -> DriftScore:
        from passerelle.monitoring.drift.defaults import as_table

        cur = _sample(as_table(current), self.max_rows, self.random_state + 1)
        ref = self.reference_
        if cur.num_rows < 10 or ref.num_rows < 10 or not self.kinds_:
            return DriftScore(self.test, None, None, self.threshold_, False, {"rows": 0})
        return self._fit_and_score(ref, cur)

    def _fit_and_score(self, ref: pa.Table, cur: pa.Table) -> DriftScore:
        from scipy.stats import mannwhitneyu
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from threadpoolctl import threadpool_limits

        x, categorical = _matrix(ref, cur, self.kinds_)
        y = np.r_[np.zeros(ref.num_rows, int), np.ones(cur.num_rows, int)]
        model = HistGradientBoostingClassifier(
            max_iter=30,
            learning_rate=0.2,
            max_leaf_nodes=15,
            early_stopping=False,
            categorical_features=categorical if categorical.any() else None,
            random_state=self.random_state,
        )
        folds = StratifiedKFold(3, shuffle=True, random_state=self.random_state)
        # One OpenMP thread: on a busy machine the booster's threads fight each other (and
        # the server's) and a fit takes ten times longer than on one core.
        with threadpool_limits(1):
            scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
        u, p = mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater")
        auc = float(u) / (ref.num_rows * cur.num_rows)
        return self._result(auc, float(p), rows=int(ref.num_rows + cur.num_rows))

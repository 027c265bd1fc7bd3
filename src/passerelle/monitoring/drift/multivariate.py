"""Multivariate drift: can a classifier tell current rows from reference rows?

A gradient-boosted classifier learns to separate a sample of each side; its out-of-fold scores
give an ROC AUC (0.5: indistinguishable) and, through the Mann-Whitney U test of those scores,
a p-value. This catches changes no single column shows (a correlation that broke).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from passerelle.monitoring.drift.detectors import Detector, DriftScore
from passerelle.monitoring.drift.sketches import as_float_array, as_text_array

MAX_ROWS = 5000  # per side: enough for an AUC within about 0.01, fast on one core


def _frame(table: pa.Table, kinds: dict[str, str]) -> Any:
    import pandas as pd

    data = {}
    for name, kind in kinds.items():
        col = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
        if kind == "numeric":
            data[name] = as_float_array(col)
        else:
            data[name] = pd.Series(as_text_array(col).to_pandas(), dtype="object")
    return pd.DataFrame(data)


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
        import pandas as pd
        from scipy.stats import mannwhitneyu
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from threadpoolctl import threadpool_limits

        x = pd.concat([_frame(ref, self.kinds_), _frame(cur, self.kinds_)], ignore_index=True)
        for name, kind in self.kinds_.items():
            if kind == "categorical":
                levels = x[name].value_counts().index[:250]  # the booster's limit of levels
                x[name] = pd.Categorical(x[name], categories=levels)
        y = np.r_[np.zeros(ref.num_rows, int), np.ones(cur.num_rows, int)]
        model = HistGradientBoostingClassifier(
            max_iter=30,
            learning_rate=0.2,
            max_leaf_nodes=15,
            early_stopping=False,
            categorical_features="from_dtype",
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

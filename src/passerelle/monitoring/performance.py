"""Performance from ground truth: scikit-learn metrics with a 95% confidence interval each.

Accuracy is a proportion, so its interval is Wilson's score interval (exact enough from ten
labels up, never outside [0, 1]). The other metrics have no closed form worth trusting on a
few hundred labels: their interval is a percentile bootstrap (``BOOTSTRAP`` resamples, fixed
seed, so the same data always gives the same interval), computed with vectorised numpy
formulas that agree with scikit-learn's on every resample. ROC AUC's interval is DeLong's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP = 300
BLOCK_CELLS = 4_000_000  # resampled row indices held at once (32 MB)
SEED = 20240607
CLASSIFICATION = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "log_loss",
)
REGRESSION = ("mae", "rmse", "mape", "r2")
HIGHER_IS_BETTER = {
    **dict.fromkeys(CLASSIFICATION, True),
    "log_loss": False,
    **dict.fromkeys(REGRESSION, False),
    "r2": True,
}


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; ``None`` without trials."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap(
    n: int, statistic: Callable[[np.ndarray], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``statistic`` over ``BOOTSTRAP`` resamples of ``n`` rows, drawn in blocks so that a
    million rows never need more than ``BLOCK_CELLS`` indices in memory at once."""
    rng = np.random.default_rng(SEED)
    per_block = max(1, BLOCK_CELLS // max(n, 1))
    parts: dict[str, list[np.ndarray]] = {}
    done = 0
    while done < BOOTSTRAP:
        size = min(per_block, BOOTSTRAP - done)
        for name, values in statistic(rng.integers(0, n, size=(size, n))).items():
            parts.setdefault(name, []).append(values)
        done += size
    return {name: np.concatenate(values) for name, values in parts.items()}


def _percentiles(values: np.ndarray) -> tuple[float, float] | None:
    values = values[np.isfinite(values)]
    if len(values) < BOOTSTRAP // 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


# -- classification ------------------------------------------------------------------------------
def _confusions(true_idx: np.ndarray, pred_idx: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """One kxk confusion matrix per resample (rows: truth, columns: prediction)."""
    codes = true_idx[idx] * k + pred_idx[idx]
    offsets = (np.arange(idx.shape[0]) * k * k)[:, None]
    counts = np.bincount((codes + offsets).ravel(), minlength=idx.shape[0] * k * k)
    return counts.reshape(idx.shape[0], k, k)


def _prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 macro and weighted from confusion matrices, as scikit-learn
    computes them (a class with no prediction has precision 0; only classes seen in the truth
    or the predictions count)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support = cm.sum(axis=-1).astype(float)
    predicted = cm.sum(axis=-2).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support + predicted) > 0
    count = present.sum(axis=-1)
    weights = support / np.maximum(support.sum(axis=-1, keepdims=True), 1)
    out = {}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = np.where(present, values, 0).sum(axis=-1) / np.maximum(count, 1)
        out[f"{name}_weighted"] = (values * weights).sum(axis=-1)
    return out


def delong_interval(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float] | None:
    """95% interval of the ROC AUC from DeLong's variance (midranks, one sort): as accurate
    as a bootstrap from a few dozen of each class, at the cost of one AUC."""
    from scipy.stats import rankdata

    pos, neg = scores[positive], scores[~positive]
    m, n = len(pos), len(neg)
    if m < 2 or n < 2:
        return None
    tz = rankdata(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v_pos = (tz[:m] - rankdata(pos)) / n
    v_neg = 1 - (tz[m:] - rankdata(neg)) / m
    se = math.sqrt(v_pos.var(ddof=1) / m + v_neg.var(ddof=1) / n)
    return max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], proba: np.ndarray | None, classes: list[str]
) -> tuple[dict[str, float | None], dict[str, tuple[float, float] | None]]:
    """Metrics and their intervals for one group of labelled predictions.

    ``proba`` (rows x ``classes``) adds ROC AUC and log loss; without it they are ``None``.
    """
    from sklearn import metrics as skm

    n = len(y_true)
    values: dict[str, float | None] = dict.fromkeys(CLASSIFICATION)
    intervals: dict[str, tuple[float, float] | None] = dict.fromkeys(CLASSIFICATION)
    if n == 0:
        return values, intervals
    labels = sorted(set(y_true) | set(y_pred) | set(classes))
    correct = int(sum(t == p for t, p in zip(y_true, y_pred, strict=True)))
    values["accuracy"] = correct / n
    intervals["accuracy"] = wilson(correct, n)
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=avg, zero_division=0
        )
        values[f"precision_{avg}"], values[f"recall_{avg}"], values[f"f1_{avg}"] = (
            float(p),
            float(r),
            float(f),
        )
    index = {c: i for i, c in enumerate(labels)}
    t_idx = np.array([index[t] for t in y_true])
    p_idx = np.array([index[p] for p in y_pred])
    if n >= 2:
        k = len(labels)
        boot = bootstrap(n, lambda idx: _prf(_confusions(t_idx, p_idx, k, idx)))
        for name, samples in boot.items():
            intervals[name] = _percentiles(samples)
    if proba is not None and len(classes) >= 2:
        _probabilistic(values, intervals, y_true, proba, classes)
    return values, intervals


def _probabilistic(
    values: dict[str, float | None],
    intervals: dict[str, tuple[float, float] | None],
    y_true: Sequence[str],
    proba: np.ndarray,
    classes: list[str],
) -> None:
    from sklearn import metrics as skm

    known = np.array([t in classes for t in y_true])
    if not known.all():  # a true class the model cannot output: no probabilistic metric
        return
    y = np.array(y_true)
    clipped = np.clip(proba, 1e-15, 1)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    values["log_loss"] = float(skm.log_loss(y, clipped, labels=classes))
    truth_col = np.array([classes.index(t) for t in y_true])
    losses = -np.log(clipped[np.arange(len(y)), truth_col])
    if len(y) >= 2:
        boot = bootstrap(len(y), lambda idx: {"log_loss": losses[idx].mean(axis=1)})
        intervals["log_loss"] = _percentiles(boot["log_loss"])
    if len(set(y_true)) < 2:
        return  # AUC needs both kinds of truth
    if len(classes) == 2:
        positive = y == classes[1]
        values["roc_auc"] = float(skm.roc_auc_score(positive, proba[:, 1]))
        intervals["roc_auc"] = delong_interval(proba[:, 1], positive)
    elif len(set(y_true)) == len(classes):
        values["roc_auc"] = float(
            skm.roc_auc_score(y, clipped, multi_class="ovr", average="macro", labels=classes)
        )


# -- regression ----------------------------------------------------------------------------------
def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray
) -> tuple[dict[str, float | None], dict[str, tuple[float, float] | None]]:
    from sklearn import metrics as skm

    values: dict[str, float | None] = dict.fromkeys(REGRESSION)
    intervals: dict[str, tuple[float, float] | None] = dict.fromkeys(REGRESSION)
    n = len(y_true)
    if n == 0:
        return values, intervals
    values["mae"] = float(skm.mean_absolute_error(y_true, y_pred))
    values["rmse"] = float(math.sqrt(skm.mean_squared_error(y_true, y_pred)))
    nonzero = y_true != 0
    if nonzero.all():
        values["mape"] = float(skm.mean_absolute_percentage_error(y_true, y_pred))
    if n >= 2:
        values["r2"] = float(skm.r2_score(y_true, y_pred))
        nonzero_all = bool(nonzero.all())

        def statistic(idx: np.ndarray) -> dict[str, np.ndarray]:
            t, p = y_true[idx], y_pred[idx]
            err = p - t
            ss_tot = ((t - t.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = np.where(ss_tot > 0, 1 - (err**2).sum(axis=1) / ss_tot, np.nan)
                mape = (np.abs(err) / np.abs(t)).mean(axis=1) if nonzero_all else r2 * np.nan
            return {
                "mae": np.abs(err).mean(axis=1),
                "rmse": np.sqrt((err**2).mean(axis=1)),
                "mape": mape,
                "r2": r2,
            }

        for name, samples in bootstrap(n, statistic).items():
            intervals[name] = _percentiles(samples)
    return values, intervals


def rounded(values: dict[str, Any]) -> dict[str, Any]:
    """Six significant digits: enough for any figure shown, smaller answers."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, float):
            out[k] = float(f"{v:.6g}") if math.isfinite(v) else None
        elif isinstance(v, tuple):
            out[k] = [float(f"{x:.6g}") for x in v]
        else:
            out[k] = v
    return out

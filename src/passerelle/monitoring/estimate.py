"""Performance while labels are pending: confidence-based performance estimation (CBPE).

A well-calibrated classifier that says 0.8 for its predicted class is right 80% of the time.
Each prediction's probabilities are therefore a distribution over its true class, and the
expected confusion matrix of a window is the sum of those distributions, row by predicted
class: expected accuracy, precision, recall and F1 follow from it without a single label.

The model's probabilities are used as they are unless enough labelled predictions of the same
version exist (``MIN_CALIBRATION`` or more): then each class's probability is recalibrated
against the labels (isotonic regression, one class against the rest, rows renormalised), so a
model that is over- or under-confident does not bias the estimate.
"""

from __future__ import annotations

import numpy as np

MIN_CALIBRATION = 100
ESTIMATED = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
)


class Calibrator:
    """Per-class isotonic maps from the model's probability to the observed frequency."""

    def __init__(self) -> None:
        self.maps_: list[object] | None = None

    def fit(self, proba: np.ndarray, y_true: list[str], classes: list[str]) -> Calibrator:
        from sklearn.isotonic import IsotonicRegression

        if len(y_true) < MIN_CALIBRATION or any(t not in classes for t in y_true):
            self.maps_ = None
            return self
        truth = np.array(y_true)
        self.maps_ = [
            IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
                proba[:, j], (truth == c).astype(float)
            )
            for j, c in enumerate(classes)
        ]
        return self

    @property
    def fitted(self) -> bool:
        return self.maps_ is not None

    def transform(self, proba: np.ndarray) -> np.ndarray:
        if self.maps_ is None:
            return proba
        out = np.column_stack([m.predict(proba[:, j]) for j, m in enumerate(self.maps_)])  # type: ignore[attr-defined]
        sums = out.sum(axis=1, keepdims=True)
        # a row every map sends to 0 keeps the model's own probabilities
        return np.where(sums > 0, out / np.where(sums > 0, sums, 1), proba)


def expected_confusion(proba: np.ndarray, pred_idx: np.ndarray, k: int) -> np.ndarray:
    """kxk matrix (rows: truth, columns: prediction) of expected counts."""
    cm = np.zeros((k, k))
    for j in range(k):
        rows = pred_idx == j
        if rows.any():
            cm[:, j] = proba[rows].sum(axis=0)
    return cm


def estimate(proba: np.ndarray, y_pred: list[str], classes: list[str]) -> dict[str, float] | None:
    """Expected metrics of predictions whose labels are not known (yet)."""
    if len(y_pred) == 0 or len(classes) < 2:
        return None
    index = {c: i for i, c in enumerate(classes)}
    if any(p not in index for p in y_pred):
        return None  # the predicted label is not one of the probability columns
    pred_idx = np.array([index[p] for p in y_pred])
    cm = expected_confusion(proba, pred_idx, len(classes))
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 1e-12, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support > 1e-12) | (predicted > 0)
    weights = support / support.sum()
    out = {"accuracy": float(tp.sum() / cm.sum())}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = float(values[present].mean())
        out[f"{name}_weighted"] = float((values * weights).sum())
    return out

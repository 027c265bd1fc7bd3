"""Performance metrics, their intervals and the confidence-based estimate, on generated data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from passerelle.core.errors import InvalidInput
from passerelle.monitoring import data, estimate, outputs, performance


def test_wilson_interval_matches_the_formula_and_stays_in_bounds():
    low, high = performance.wilson(81, 100)
    assert low == pytest.approx(0.7222, abs=1e-3) and high == pytest.approx(0.8749, abs=1e-3)
    assert performance.wilson(0, 10)[0] == 0.0
    assert performance.wilson(10, 10)[1] == 1.0
    assert performance.wilson(0, 0) is None


def _classifier_data(n=600, seed=0):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c"]
    logits = rng.normal(size=(n, 3)) * 2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = [classes[rng.choice(3, p=p)] for p in proba]  # calibrated by construction
    pred = [classes[i] for i in proba.argmax(axis=1)]
    return classes, proba, truth, pred


def test_classification_metrics_agree_with_scikit_learn_and_intervals_hold_them():
    classes, proba, truth, pred = _classifier_data()
    values, intervals = performance.classification_metrics(truth, pred, proba, classes)
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred))
    assert values["f1_macro"] == pytest.approx(skm.f1_score(truth, pred, average="macro"))
    assert values["recall_weighted"] == pytest.approx(
        skm.recall_score(truth, pred, average="weighted")
    )
    assert values["log_loss"] == pytest.approx(skm.log_loss(truth, proba, labels=classes))
    assert values["roc_auc"] == pytest.approx(
        skm.roc_auc_score(truth, proba, multi_class="ovr", labels=classes)
    )
    for name in ("accuracy", "f1_macro", "precision_weighted", "log_loss"):
        low, high = intervals[name]
        assert low <= values[name] <= high, name
        assert high - low < 0.2, name


def test_binary_auc_interval_and_labels_only():
    rng = np.random.default_rng(1)
    p1 = rng.uniform(size=400)
    truth = ["1" if rng.uniform() < p else "0" for p in p1]
    pred = ["1" if p > 0.5 else "0" for p in p1]
    proba = np.column_stack([1 - p1, p1])
    values, intervals = performance.classification_metrics(truth, pred, proba, ["0", "1"])
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score([t == "1" for t in truth], p1))
    assert intervals["roc_auc"][0] <= values["roc_auc"] <= intervals["roc_auc"][1]
    # without probabilities: no AUC, no log loss, the rest still measured
    values, _ = performance.classification_metrics(truth, pred, None, [])
    assert values["roc_auc"] is None and values["log_loss"] is None
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred))


def test_regression_metrics_and_intervals():
    rng = np.random.default_rng(2)
    y = rng.normal(10, 2, 500)
    p = y + rng.normal(0, 1, 500)
    values, intervals = performance.regression_metrics(y, p)
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert values["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert values["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert values["r2"] == pytest.approx(skm.r2_score(y, p))
    for name in performance.REGRESSION:
        assert intervals[name][0] <= values[name] <= intervals[name][1]


def test_estimate_of_a_calibrated_model_is_close_to_the_measured_value():
    classes, proba, truth, pred = _classifier_data(n=3000, seed=4)
    expected = estimate.estimate(proba, pred, classes)
    measured = skm.accuracy_score(truth, pred)
    assert expected["accuracy"] == pytest.approx(measured, abs=0.03)
    f1 = skm.f1_score(truth, pred, average="macro")
    assert expected["f1_macro"] == pytest.approx(f1, abs=0.04)


def test_calibration_corrects_an_overconfident_model():
    classes, proba, truth, pred = _classifier_data(n=4000, seed=5)
    sharp = proba**4 / (proba**4).sum(axis=1, keepdims=True)  # overconfident probabilities
    measured = skm.accuracy_score(truth[2000:], pred[2000:])
    raw = estimate.estimate(sharp[2000:], pred[2000:], classes)["accuracy"]
    cal = estimate.Calibrator().fit(sharp[:2000], truth[:2000], classes)
    assert cal.fitted
    fixed = estimate.estimate(cal.transform(sharp[2000:]), pred[2000:], classes)["accuracy"]
    assert abs(fixed - measured) < abs(raw - measured)
    assert abs(fixed - measured) < 0.03


@pytest.mark.parametrize(
    ("raw", "label", "proba"),
    [
        (1, "1", None),
        (True, "1", None),
        (2.0, "2", None),
        ("yes", "yes", None),
        ('{"0": 0.2, "1": 0.8}', "1", {"0": 0.2, "1": 0.8}),
        ("[0.7, 0.3]", "0", {"0": 0.7, "1": 0.3}),
        ({"label": "b", "proba": {"a": 0.4, "b": 0.6}}, "b", {"a": 0.4, "b": 0.6}),
    ],
)
def test_outputs_are_decoded(raw, label, proba):
    decoded = outputs.decode_output(raw)
    assert decoded.label == label
    assert decoded.proba == proba


@pytest.mark.parametrize("bad", ["0d", "0", "-1h", "soon", "1y", 0, "0.0001ms"])
def test_a_window_of_zero_or_nonsense_is_refused(bad):
    with pytest.raises(InvalidInput) as err:
        data.duration_ms(bad, "window")
    assert err.value.field == "window"


def test_durations():
    assert data.duration_ms("1d", "window") == 86_400_000
    assert data.duration_ms("30m", "window") == 1_800_000
    assert data.duration_ms(5000, "window") == 5000


def test_outputs_decode_alike_in_bulk_and_row_by_row():
    import polars as pl

    plain = ["1", "1.0", "true", "false", "yes", "2.5", "-3.00", "null", "0"]
    bulk = outputs.decode_frame(pl.DataFrame({"output": plain}))
    rows = outputs._row_by_row(plain, [None] * len(plain))
    assert bulk.labels == rows.labels == ["1", "1", "1", "0", "yes", "2.5", "-3", None, "0"]
    assert not bulk.has_proba.any()

    shapes = [
        ['{"label": "b", "proba": {"a": 0.4, "b": 0.6}}', '{"label": "a", "proba": {"a": 0.9}}'],
        ['{"0": 0.2, "1": 0.8}', '{"0": 0.7, "1": 0.3}'],
        ["[0.2, 0.8]", "[0.7, 0.3]"],
        [
            '{"label": 1, "proba": {"0": 0.2, "1": 0.8}}',
            '{"label": 0, "proba": {"0": 0.6, "1": 0.4}}',
        ],
    ]
    for json_outputs in shapes:
        bulk = outputs.decode_frame(pl.DataFrame({"output": json_outputs}))
        rows = outputs._row_by_row(json_outputs, [None] * len(json_outputs))
        assert bulk.labels == rows.labels, json_outputs
        assert bulk.classes == rows.classes, json_outputs
        np.testing.assert_allclose(bulk.proba, rows.proba)
        assert bulk.has_proba.all()
    # shapes that disagree, or a separate proba column: decoded one by one
    mixed = outputs.decode_frame(pl.DataFrame({"output": ["1", "[0.5, 0.5]"]}))
    assert mixed.labels == ["1", "0"] and list(mixed.has_proba) == [False, True]
    with_column = outputs.decode_frame(
        pl.DataFrame({"output": ["yes", "no"], "proba": ['{"yes": 0.9, "no": 0.1}', None]})
    )
    assert with_column.labels == ["yes", "no"] and with_column.classes == ["no", "yes"]
    assert with_column.matrix(np.array([0]), ["no", "yes"]).tolist() == [[0.1, 0.9]]
    assert with_column.matrix(np.array([0, 1]), ["no", "yes"]) is None


def test_since_takes_durations_epoch_milliseconds_and_iso_times():
    now = 1_764_000_000_000
    assert data.since_ms("1d", 0, now) == now - 86_400_000
    assert data.since_ms(str(now - 5), 0, now) == now - 5
    assert data.since_ms("2025-11-24", 0, now) == 1_763_942_400_000
    assert data.since_ms(None, 1000, now) == now - 1000
    with pytest.raises(InvalidInput) as err:
        data.since_ms("2025-13-45", 0, now)
    assert err.value.field == "since"

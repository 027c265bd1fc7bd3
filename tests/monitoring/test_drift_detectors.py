"""Drift detectors and defaults on generated data (no app): the injected columns and only them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.base import clone

from passerelle.core.errors import InvalidInput
from passerelle.monitoring.drift import (
    ChiSquared,
    DomainClassifier,
    JensenShannon,
    KolmogorovSmirnov,
    MissingValues,
    NewCategories,
    PopulationStability,
    Range,
    Wasserstein,
    compare,
)
from passerelle.monitoring.drift.compare import build_profile, holm
from passerelle.monitoring.drift.profiles import profile_column
from tests.monitoring.drift_data import INJECTED, reference_and_current


# -- acceptance: exactly the injected columns, at the default settings ---------------------------
@pytest.mark.parametrize("rows", [600, 5000], ids=["p-values (600 rows)", "effect sizes (5000)"])
def test_defaults_flag_exactly_the_injected_columns(rows: int) -> None:
    ref, cur = reference_and_current(rows, seed=7, drift=True)
    report = compare(ref, cur, multivariate=rows > 1000)
    assert sorted(report.drifted_columns) == sorted(INJECTED)
    by_name = {c["column"]: c for c in report.columns}
    expected_test = "wasserstein" if rows > 1000 else "ks"
    assert by_name["age"]["test"] == expected_test
    assert by_name["plan"]["test"] == ("jensenshannon" if rows > 1000 else "chi2")
    # each kind of drift is caught by the check made for it
    missing = next(c for c in by_name["balance"]["checks"] if c["test"] == "missing")
    assert missing["drifted"] and missing["details"]["current_share"] > 0.1
    new = next(c for c in by_name["channel"]["checks"] if c["test"] == "new_categories")
    assert new["drifted"] and new["details"]["categories"] == ["partner"]
    assert by_name["spend"]["drift"]["drifted"] and by_name["latency"]["drift"]["drifted"]
    if rows > 1000:
        assert report.multivariate is not None and report.multivariate["drifted"]


@pytest.mark.parametrize("rows", [600, 5000], ids=["p-values (600 rows)", "effect sizes (5000)"])
def test_control_without_drift_flags_nothing(rows: int) -> None:
    ref, cur = reference_and_current(rows, seed=7, drift=False)
    report = compare(ref, cur, multivariate=rows > 1000)
    assert report.drifted_columns == []
    if rows > 1000:
        assert report.multivariate is not None and not report.multivariate["drifted"]
    # p-values were corrected for the number of tests: the family counts every column's tests
    if rows <= 1000:
        assert report.tests_corrected >= len(ref.columns)


def test_contaminated_tail_is_caught_where_decile_psi_misses_it() -> None:
    """A tenth of the rows moved three deviations out: decile PSI stays under its threshold,
    the default (normalised Wasserstein) and PSI with its tail bins both flag it."""
    rng = np.random.default_rng(11)
    ref = rng.normal(0, 1, 20_000)
    cur = rng.normal(0, 1, 20_000)
    moved = rng.random(cur.size) < 0.10
    cur[moved] = 3 + rng.normal(0, 0.1, moved.sum())
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    r = np.bincount(np.searchsorted(edges, ref), minlength=10) / ref.size
    c = np.bincount(np.searchsorted(edges, cur), minlength=10) / cur.size
    decile_psi = float(np.sum((c - r) * np.log(c / r)))
    assert decile_psi < 0.1
    assert Wasserstein().fit(ref).score(cur).drifted
    assert PopulationStability().fit(ref).score(cur).drifted
    assert [c["column"] for c in compare({"x": ref}, {"x": cur}).columns if c["drifted"]] == ["x"]


# -- statistics agree with scipy -----------------------------------------------------------------
def test_ks_is_exact_on_small_samples_and_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    ref = np.round(rng.normal(0, 1, 400), 1)  # ties on purpose
    cur = np.round(rng.normal(0.2, 1, 300), 1)
    score = KolmogorovSmirnov().fit(ref).score(cur)
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert score.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_ks_with_quantile_bins_stays_within_a_bin_of_scipy() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(0, 1, 50_000), rng.normal(0.05, 1.1, 40_000)
    score = KolmogorovSmirnov().fit(ref).score(cur)
    assert score.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=2e-3)


def test_wasserstein_matches_scipy_within_one_percent() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.lognormal(0, 0.6, 30_000), rng.lognormal(0.1, 0.7, 20_000)
    score = Wasserstein().fit(ref).score(cur)
    expected = stats.wasserstein_distance(ref, cur)
    assert score.details["distance"] == pytest.approx(expected, rel=0.01)
    assert score.statistic == pytest.approx(expected / ref.std(), rel=0.01)


def test_categorical_statistics_match_scipy() -> None:
    rng = np.random.default_rng(4)
    ref = rng.choice(list("abcd"), 3000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(list("abcde"), 2000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    r = np.array([(ref == k).sum() for k in "abcde"], float)
    c = np.array([(cur == k).sum() for k in "abcde"], float)
    chi = ChiSquared().fit(ref).score(cur)
    assert chi.p_value == pytest.approx(stats.chi2_contingency(np.vstack([r, c]))[1], rel=1e-9)
    js = JensenShannon().fit(ref).score(cur)
    assert js.statistic == pytest.approx(jensenshannon(r / r.sum(), c / c.sum()), rel=1e-9)
    new = NewCategories().fit(ref).score(cur)
    assert new.drifted and new.statistic == pytest.approx(c[4] / c.sum())
    psi = PopulationStability().fit(ref)  # the kind is read from the values: categories
    assert psi.reference_.kind == "categorical" and psi.score(cur).statistic > 0.1


def test_range_and_missing_checks() -> None:
    rng = np.random.default_rng(5)
    ref = rng.uniform(0, 10, 2000)
    inside = rng.uniform(0, 10, 2000)
    outside = np.where(rng.random(2000) < 0.05, 15.0, inside)
    assert not Range().fit(ref).score(inside).drifted
    assert Range().fit(ref).score(outside).drifted
    with_gaps = np.where(rng.random(2000) < 0.2, np.nan, inside)
    assert MissingValues().fit(ref).score(with_gaps).drifted
    assert not MissingValues().fit(ref).score(inside).drifted


# -- the estimator contract ----------------------------------------------------------------------
def test_detectors_follow_the_scikit_learn_contract() -> None:
    det = KolmogorovSmirnov(threshold=0.01)
    assert det.get_params() == {"threshold": 0.01}
    copy = clone(det)
    assert copy is not det and copy.get_params() == det.get_params()
    assert not hasattr(copy, "reference_")
    ref = np.arange(100.0)
    assert det.fit(ref) is det and hasattr(det, "reference_")
    assert "kind" in PopulationStability().get_params()
    classifier = DomainClassifier(max_rows=500, random_state=3)
    assert clone(classifier).get_params()["max_rows"] == 500


def test_a_profile_fits_every_detector_and_summaries_add_up() -> None:
    rng = np.random.default_rng(6)
    ref = rng.normal(0, 1, 5000)
    profile = profile_column(ref, "numeric")
    parts = [rng.normal(0.3, 1, 700) for _ in range(3)]
    merged = profile.summarise(parts[0]) + profile.summarise(parts[1]) + profile.summarise(parts[2])
    whole = profile.summarise(np.concatenate(parts))
    assert np.array_equal(merged.inside, whole.inside) and np.array_equal(merged.equal, whole.equal)
    direct = Wasserstein().fit(ref).score(np.concatenate(parts))
    from_parts = Wasserstein().fit(profile).score(merged)
    assert from_parts.statistic == pytest.approx(direct.statistic)


# -- overrides -----------------------------------------------------------------------------------
def test_overrides_change_the_test_and_threshold() -> None:
    ref, cur = reference_and_current(3000, seed=8, drift=False)
    report = compare(
        ref,
        cur,
        {"age": {"test": "psi", "threshold": 0.5}, "visits": {"kind": "categorical"}},
        multivariate=False,
    )
    by_name = {c["column"]: c for c in report.columns}
    assert by_name["age"]["test"] == "psi" and by_name["age"]["threshold"] == 0.5
    assert by_name["visits"]["kind"] == "categorical"
    assert by_name["visits"]["test"] == "jensenshannon"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"nope": {"test": "ks"}}, "overrides.nope"),
        ({"age": {"test": "chi2"}}, "overrides.age.test"),
        ({"age": {"threshold": -1}}, "overrides.age.threshold"),
        ({"age": {"colour": "red"}}, "overrides.age.colour"),
        ({"age": {"kind": "text"}}, "overrides.age.kind"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(overrides: dict, field: str) -> None:
    ref, cur = reference_and_current(200, seed=9, drift=False)
    with pytest.raises(InvalidInput) as err:
        compare(ref, cur, overrides, multivariate=False)
    assert err.value.field == field


def test_a_reference_with_no_rows_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        compare(pd.DataFrame({"x": pd.Series([], dtype=float)}), pd.DataFrame({"x": [1.0]}))
    assert err.value.field == "reference"
    with pytest.raises(InvalidInput):
        build_profile(pa.table({"x": pa.array([], pa.float64())}))


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_domain_classifier_catches_a_broken_correlation_no_column_shows() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(0, 1, 3000)
    ref = pd.DataFrame({"x": x, "y": 0.9 * x + rng.normal(0, np.sqrt(1 - 0.81), 3000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1, 3000), "y": rng.normal(0, 1, 3000)})
    report = compare(ref, cur)
    assert report.drifted_columns == []  # each column keeps its distribution
    assert report.multivariate is not None and report.multivariate["drifted"]
    assert report.multivariate["statistic"] > 0.7


def test_degenerate_columns_give_answers_not_errors() -> None:
    """Constant, all-missing, single-category and boolean columns: a verdict for each."""
    n = 500
    ref = pd.DataFrame(
        {
            "constant": [3.0] * n,
            "gaps": [np.nan] * n,
            "one_level": ["a"] * n,
            "flag": [True, False] * (n // 2),
        }
    )
    cur = pd.DataFrame(
        {
            "constant": [3.0] * (n - 50) + [4.0] * 50,
            "gaps": [1.0] * n,
            "one_level": ["a"] * n,
            "flag": [True] * n,
        }
    )
    by_name = {c["column"]: c for c in compare(ref, cur).columns}
    assert by_name["constant"]["drifted"]  # values beyond a constant reference
    assert by_name["gaps"]["drifted"]  # no longer missing
    assert not by_name["one_level"]["drifted"]
    assert by_name["flag"]["kind"] == "categorical" and by_name["flag"]["drifted"]
    empty = compare(ref, cur.iloc[:0])
    assert empty.drifted_columns == [] and empty.rows["current"] == 0
    when = pd.Series(pd.date_range("2026-01-01", periods=n, freq="h"))
    ids = [f"customer-{i}" for i in range(n)]
    extra = {"when": when, "tags": [[1]] * n, "id": ids}
    timed = compare(ref.assign(**extra), cur.assign(**extra))
    assert timed.skipped == {
        "when": "its type (timestamp[us]) is not compared",
        "tags": "its type (list<item: int64>) is not compared",
        "id": "an identifier: a distinct value on most rows",
    }

"""Drift statistics computed from two summaries of a column (see ``sketches``), with scipy.

Each function returns ``(statistic, p_value)``; distances have no p-value (``None``).
"""

from __future__ import annotations

import math

import numpy as np

from passerelle.monitoring.drift.sketches import OTHER, CategoricalSketch, NumericSketch

PSI_EPSILON = 1e-4  # floor of a bin's share, so an empty bin does not make PSI infinite
# PSI bins of a numeric column: deciles of the reference, plus a bin for each 1% tail, so
# a contaminated tail (a tenth of the rows moved far out) moves mass into a bin of its own.
PSI_QUANTILES = (0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99)


def _cdfs(ref: NumericSketch, cur: NumericSketch) -> tuple[np.ndarray, ...]:
    """Both CDFs at each edge and just before it."""
    n, m = max(ref.count, 1), max(cur.count, 1)
    r_at = np.cumsum(ref.inside[:-1] + ref.equal) / n
    c_at = np.cumsum(cur.inside[:-1] + cur.equal) / m
    return r_at, r_at - ref.equal / n, c_at, c_at - cur.equal / m


def kolmogorov_smirnov(ref: NumericSketch, cur: NumericSketch) -> tuple[float, float]:
    """Two-sample KS: the largest gap between the CDFs; p-value from Kolmogorov's distribution
    at the effective size ``nm/(n+m)`` (scipy's asymptotic two-sample method)."""
    from scipy.stats import kstwo

    if len(ref.equal) == 0 or ref.count == 0 or cur.count == 0:
        return 0.0, 1.0
    r_at, r_before, c_at, c_before = _cdfs(ref, cur)
    d = float(max(np.abs(r_at - c_at).max(), np.abs(r_before - c_before).max()))
    n, m = sorted((float(ref.count), float(cur.count)), reverse=True)
    return d, float(kstwo.sf(d, round(n * m / (n + m))))


def wasserstein(ref: NumericSketch, cur: NumericSketch, edges: np.ndarray) -> float:
    """Earth mover's distance: the area between the CDFs (both taken as linear inside a bin,
    exact beyond the reference's minimum and maximum)."""
    if len(edges) == 0 or ref.count == 0 or cur.count == 0:
        return 0.0
    n, m = ref.count, cur.count
    r_at, r_before, c_at, c_before = _cdfs(ref, cur)
    d0 = (r_at - c_at)[:-1]
    d1 = (r_before - c_before)[1:]
    width = np.diff(edges)
    a0, a1 = np.abs(d0), np.abs(d1)
    same_sign = d0 * d1 >= 0
    total = a0 + a1
    crossing = np.divide(d0 * d0 + d1 * d1, 2 * total, out=np.zeros_like(total), where=total > 0)
    area = np.where(same_sign, total / 2, crossing)
    inner = float((area * width).sum())
    tails = abs(cur.below_sum / m - ref.below_sum / n) + abs(cur.above_sum / m - ref.above_sum / n)
    return inner + tails


def _psi(r: np.ndarray, c: np.ndarray) -> float:
    r = np.clip(r, PSI_EPSILON, None)
    c = np.clip(c, PSI_EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_numeric(ref: NumericSketch, cur: NumericSketch) -> float:
    """Population stability index over reference deciles plus the two 1% tails."""
    if len(ref.equal) == 0 or ref.count == 0 or cur.count == 0:
        return 0.0
    r_at, _, c_at, _ = _cdfs(ref, cur)
    cuts = np.unique(np.searchsorted(r_at, PSI_QUANTILES, side="left"))
    cuts = cuts[cuts < len(r_at) - 1]
    r_cum = np.concatenate([[0.0], r_at[cuts], [1.0]])
    c_cum = np.concatenate([[0.0], c_at[cuts], [1.0]])
    return _psi(np.diff(r_cum), np.diff(c_cum))


def _aligned(ref: CategoricalSketch, cur: CategoricalSketch) -> tuple[list[str], np.ndarray, ...]:
    keys = sorted(set(ref.counts) | set(cur.counts))
    r = np.array([ref.counts.get(k, 0) for k in keys], dtype=float)
    c = np.array([cur.counts.get(k, 0) for k in keys], dtype=float)
    return keys, r, c


def chi_squared(ref: CategoricalSketch, cur: CategoricalSketch) -> tuple[float, float]:
    """Chi-squared test of homogeneity on the 2 x k table of counts."""
    from scipy.stats import chi2_contingency

    _, r, c = _aligned(ref, cur)
    if r.sum() == 0 or c.sum() == 0 or len(r) < 2:
        return 0.0, 1.0
    stat, p, _, _ = chi2_contingency(np.vstack([r, c]))
    return float(stat), float(p)


def jensen_shannon(ref: CategoricalSketch, cur: CategoricalSketch) -> float:
    """Jensen-Shannon distance (natural logarithm: between 0 and sqrt(ln 2) = 0.83)."""
    from scipy.spatial.distance import jensenshannon

    _, r, c = _aligned(ref, cur)
    if r.sum() == 0 or c.sum() == 0:
        return 0.0
    return float(jensenshannon(r / r.sum(), c / c.sum()))


def psi_categorical(ref: CategoricalSketch, cur: CategoricalSketch) -> float:
    _, r, c = _aligned(ref, cur)
    if r.sum() == 0 or c.sum() == 0:
        return 0.0
    return _psi(r / r.sum(), c / c.sum())


def new_categories(ref: CategoricalSketch, cur: CategoricalSketch) -> tuple[float, list[str]]:
    """Share of current rows whose category the reference never had, and the commonest ones."""
    if cur.count == 0:
        return 0.0, []
    unseen = {k: n for k, n in cur.counts.items() if k not in ref.counts and k != OTHER and n > 0}
    top = sorted(unseen, key=lambda k: -unseen[k])[:10]
    return sum(unseen.values()) / cur.count, top


def missing_values(ref_missing: int, ref_rows: int, cur_missing: int, cur_rows: int):
    """Change in the share of missing values: Cohen's h (an effect size for two proportions)
    and the chi-squared test of the 2 x 2 table."""
    from scipy.stats import chi2_contingency

    if ref_rows == 0 or cur_rows == 0:
        return 0.0, 1.0
    p_ref, p_cur = ref_missing / ref_rows, cur_missing / cur_rows
    h = abs(2 * math.asin(math.sqrt(p_cur)) - 2 * math.asin(math.sqrt(p_ref)))
    table = np.array(
        [[ref_missing, ref_rows - ref_missing], [cur_missing, cur_rows - cur_missing]], float
    )
    if (table.sum(axis=0) == 0).any():
        return h, 1.0
    return h, float(chi2_contingency(table)[1])


def out_of_range(ref: NumericSketch, cur: NumericSketch) -> tuple[float, float]:
    """Share of current values below the reference's minimum or above its maximum, and the
    p-value of that many when both samples come from one distribution.

    The reference's extremes are random too: with ``n`` reference and ``m`` current values
    drawn alike, the number of current values beyond one extreme is about geometric with ratio
    ``r = m / (n + m)`` (each further value beyond it is as likely as not, for equal sizes), so
    the count beyond either extreme reaches ``k`` with probability ``r^k (1 + k (1 - r))``.
    """
    m, n = cur.count, ref.count
    if m == 0 or n == 0:
        return 0.0, 1.0
    k = int(cur.inside[0] + cur.inside[-1]) if len(cur.inside) > 1 else int(cur.inside[0])
    if k == 0:
        return 0.0, 1.0
    r = m / (n + m)
    log_p = k * math.log(r) + math.log1p(k * (1 - r))
    return k / m, min(1.0, math.exp(log_p))

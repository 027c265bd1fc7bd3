"""Drift detectors with scikit-learn's contract: ``Detector(...).fit(reference).score(current)``.

``__init__`` only stores its keyword arguments, ``fit`` learns the reference (state ending in
``_``) and returns the detector, ``score`` compares a current sample and returns a
``DriftScore``. ``fit`` takes raw values or a ``ColumnProfile``; ``score`` takes raw values or
a summary made against the same profile, which is how windows of the inference log are scored
without reading their rows again.

Tests with a p-value flag drift when ``p < threshold`` (the level); distances and shares flag
it when ``statistic >= threshold``.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from passerelle.monitoring.drift import statistics as st
from passerelle.monitoring.drift.profiles import ColumnProfile, as_profile, as_sketch


@dataclass
class DriftScore:
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Detector:
    """Base class: parameters, ``fit`` and the decision rule."""

    test: ClassVar[str] = ""
    applies_to: ClassVar[tuple[str, ...]] = ("numeric",)  # column kinds it can test
    uses_p_value: ClassVar[bool] = False
    default_threshold: ClassVar[float] = 0.05

    def __init__(self, threshold: float | None = None) -> None:
        self.threshold = threshold

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> Detector:
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"{type(self).__name__}({params})"

    @property
    def threshold_(self) -> float:
        return self.default_threshold if self.threshold is None else float(self.threshold)

    def _kind(self, reference: Any) -> str:
        kind = getattr(self, "kind", None)
        if kind:
            return kind
        if len(self.applies_to) == 1 or isinstance(reference, ColumnProfile):
            return self.applies_to[0]
        import pyarrow as pa

        from passerelle.monitoring.drift.defaults import infer_kind

        values = reference if isinstance(reference, pa.Array | pa.ChunkedArray) else None
        return infer_kind(values if values is not None else pa.array(reference)) or "categorical"

    def fit(self, reference: Any) -> Detector:
        """Learn the reference: raw values of one column, or its ``ColumnProfile``."""
        self.reference_: ColumnProfile = as_profile(reference, self._kind(reference))
        return self

    def decide(self, statistic: float | None, p_value: float | None) -> bool:
        if statistic is None:
            return False
        if self.uses_p_value:
            return p_value is not None and p_value < self.threshold_
        return statistic >= self.threshold_

    def _result(self, statistic: float, p_value: float | None = None, **details: Any):
        return DriftScore(
            self.test,
            statistic,
            p_value,
            self.threshold_,
            self.decide(statistic, p_value),
            details,
        )

    def score(self, current: Any) -> DriftScore:  # pragma: no cover - abstract
        raise NotImplementedError


class KolmogorovSmirnov(Detector):
    """Two-sample Kolmogorov-Smirnov test (numeric): sensitive to any change of shape; its
    p-value shrinks with the sample size, so it suits samples of up to about 1,000 rows."""

    test = "ks"
    uses_p_value = True

    def score(self, current: Any) -> DriftScore:
        d, p = st.kolmogorov_smirnov(self.reference_.sketch, as_sketch(self.reference_, current))
        return self._result(d, p)


class Wasserstein(Detector):
    """Wasserstein (earth mover's) distance divided by the reference's standard deviation:
    how far, in reference deviations, values moved on average. An effect size."""

    test = "wasserstein"
    default_threshold = 0.1

    def score(self, current: Any) -> DriftScore:
        ref = self.reference_
        w = st.wasserstein(ref.sketch, as_sketch(ref, current), ref.edges)
        return self._result(w / max(ref.spread, 1e-3), None, distance=w)


class PopulationStability(Detector):
    """Population stability index (numeric or categorical). Numeric bins are the reference's
    deciles plus its two 1% tails."""

    test = "psi"
    applies_to = ("numeric", "categorical")
    default_threshold = 0.1

    def __init__(self, threshold: float | None = None, kind: str | None = None) -> None:
        self.threshold = threshold
        self.kind = kind

    def score(self, current: Any) -> DriftScore:
        ref = self.reference_
        cur = as_sketch(ref, current)
        if ref.kind == "numeric":
            return self._result(st.psi_numeric(ref.sketch, cur))
        return self._result(st.psi_categorical(ref.sketch, cur))


class ChiSquared(Detector):
    """Chi-squared test of homogeneity (categorical): suits samples up to about 1,000 rows."""

    test = "chi2"
    applies_to = ("categorical",)
    uses_p_value = True

    def score(self, current: Any) -> DriftScore:
        stat, p = st.chi_squared(self.reference_.sketch, as_sketch(self.reference_, current))
        return self._result(stat, p)


class JensenShannon(Detector):
    """Jensen-Shannon distance between the category frequencies (categorical). An effect size."""

    test = "jensenshannon"
    applies_to = ("categorical",)
    default_threshold = 0.1

    def score(self, current: Any) -> DriftScore:
        d = st.jensen_shannon(self.reference_.sketch, as_sketch(self.reference_, current))
        return self._result(d)


class NewCategories(Detector):
    """Share of current rows in categories the reference never had."""

    test = "new_categories"
    applies_to = ("categorical",)
    default_threshold = 0.01

    def score(self, current: Any) -> DriftScore:
        share, top = st.new_categories(self.reference_.sketch, as_sketch(self.reference_, current))
        return self._result(share, None, categories=top)


class MissingValues(Detector):
    """Change of the share of missing values: flagged when Cohen's h reaches ``threshold`` and
    the chi-squared test of the 2 x 2 table is significant at ``alpha``."""

    test = "missing"
    applies_to = ("numeric", "categorical")
    uses_p_value = True
    default_threshold = 0.1

    def __init__(
        self, threshold: float | None = None, alpha: float = 0.05, kind: str | None = None
    ) -> None:
        self.threshold = threshold
        self.alpha = alpha
        self.kind = kind

    def decide(self, statistic: float | None, p_value: float | None) -> bool:
        return (
            statistic is not None
            and statistic >= self.threshold_
            and p_value is not None
            and p_value < self.alpha
        )

    def score(self, current: Any) -> DriftScore:
        ref = self.reference_
        cur = as_sketch(ref, current)
        h, p = st.missing_values(ref.sketch.missing, ref.rows, cur.missing, cur.count + cur.missing)
        share_ref = ref.sketch.missing / ref.rows if ref.rows else 0.0
        rows = cur.count + cur.missing
        return self._result(
            h, p, reference_share=share_ref, current_share=cur.missing / rows if rows else 0.0
        )


class Range(Detector):
    """Share of current values outside the reference's [minimum, maximum] (numeric): flagged
    when it reaches ``threshold`` and is more than chance explains at ``alpha``."""

    test = "range"
    uses_p_value = True
    default_threshold = 0.01

    def __init__(self, threshold: float | None = None, alpha: float = 0.05) -> None:
        self.threshold = threshold
        self.alpha = alpha

    decide = MissingValues.decide

    def score(self, current: Any) -> DriftScore:
        ref = self.reference_
        share, p = st.out_of_range(ref.sketch, as_sketch(ref, current))
        return self._result(share, p, minimum=ref.minimum, maximum=ref.maximum)


DETECTORS: dict[str, type[Detector]] = {
    cls.test: cls
    for cls in (
        KolmogorovSmirnov,
        Wasserstein,
        PopulationStability,
        ChiSquared,
        JensenShannon,
        NewCategories,
        MissingValues,
        Range,
    )
}

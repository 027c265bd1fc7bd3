"""Data and prediction drift: detectors, defaults, and drift per window of the inference log."""

from passerelle.monitoring.drift.compare import DriftReport, compare
from passerelle.monitoring.drift.detectors import (
    ChiSquared,
    Detector,
    DriftScore,
    JensenShannon,
    KolmogorovSmirnov,
    MissingValues,
    NewCategories,
    PopulationStability,
    Range,
    Wasserstein,
)
from passerelle.monitoring.drift.multivariate import DomainClassifier

__all__ = [
    "ChiSquared",
    "Detector",
    "DomainClassifier",
    "DriftReport",
    "DriftScore",
    "JensenShannon",
    "KolmogorovSmirnov",
    "MissingValues",
    "NewCategories",
    "PopulationStability",
    "Range",
    "Wasserstein",
    "compare",
]

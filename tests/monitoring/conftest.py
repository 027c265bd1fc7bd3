"""Monitoring fixtures: the serving fixture (an app with model ``churn`` in two versions)."""

from __future__ import annotations

from tests.serving.conftest import Served, served  # noqa: F401

__all__ = ["Served"]

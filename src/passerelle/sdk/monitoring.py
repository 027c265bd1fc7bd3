"""Monitoring in the SDK: reference data, drift and live performance of a deployed endpoint.

Thin fronts over the monitoring REST API; tables come back as pandas DataFrames.
"""

from __future__ import annotations

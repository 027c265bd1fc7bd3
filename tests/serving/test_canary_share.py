"""Over 10,000 requests a 10% canary gets 10% of the traffic, within binomial tolerance.

Routing does not touch the database, so this long test runs on SQLite only.
"""

from __future__ import annotations

import math

import pytest

from tests.serving.conftest import Served

ROW = {"age": 41, "income": 61.5}


@pytest.fixture
def database_url() -> None:
    return None


def test_canary_share_over_ten_thousand_requests(served: Served) -> None:
    served.change(action="deploy", version=1)
    served.change(action="canary", version=2, weight=10)
    n = 10_000
    hits = sum(served.predict([ROW])["model_version"] == 2 for _ in range(n))
    sigma = math.sqrt(n * 0.1 * 0.9)  # 30 requests
    assert abs(hits - n * 0.1) < 4 * sigma, hits
    served.change(action="rollback", reason="check")
    assert all(served.predict([ROW])["model_version"] == 1 for _ in range(500))

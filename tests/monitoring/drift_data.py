"""Generated tables with drift injected into known columns, reproducible from a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

# column -> the kind of drift injected into the current table
INJECTED = {
    "spend": "mean shift of half a deviation",
    "latency": "variance up (deviation x 2)",
    "channel": "a new category in 6% of rows",
    "balance": "missing values from none to 12%",
}


def _table(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(45, 12, n),
            "income": rng.lognormal(10, 0.5, n),
            "tenure": rng.exponential(24, n),
            "score": rng.gamma(2.0, 3.0, n),
            "visits": rng.poisson(30, n),
            "balance": rng.normal(1000, 300, n),
            "spend": rng.normal(80, 20, n),
            "latency": rng.normal(200, 25, n),
            "plan": rng.choice(["basic", "plus", "pro", "team"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "region": rng.choice(["north", "south", "east", "west", "centre"], n),
            "device": rng.choice(["ios", "android", "web"], n, p=[0.3, 0.5, 0.2]),
            "channel": rng.choice(["search", "social", "email", "direct"], n),
        }
    )


def reference_and_current(n: int, seed: int, *, drift: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables of ``n`` rows from the same distributions; ``drift`` injects ``INJECTED``."""
    ref = _table(np.random.default_rng([seed, 0]), n)
    rng = np.random.default_rng([seed, 1])
    cur = _table(rng, n)
    if drift:
        cur["spend"] = cur["spend"] + 0.5 * ref["spend"].std()
        mean = ref["latency"].mean()
        cur["latency"] = (cur["latency"] - mean) * 2.0 + mean
        cur.loc[rng.random(n) < 0.06, "channel"] = "partner"
        cur.loc[rng.random(n) < 0.12, "balance"] = np.nan
    return ref, cur

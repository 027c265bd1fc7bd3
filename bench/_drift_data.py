"""Synthetic reference and current tables for the drift benchmark (numpy and pandas only).

Twenty numeric columns (``num_00`` ... ``num_19``: normal, lognormal, exponential and gamma in
turn, with their own parameters) and five categorical ones (``cat_0`` ... ``cat_4``, ten levels
``L0`` ... ``L9`` with their own frequencies). Six columns of the current table drift, each in
its own way (``DRIFTED``). Every column draws from its own seeded generator, so the tables are
the same in any interpreter for a given size and seed: the Evidently side, run from its own
virtual environment, and passerelle's side see identical data.
"""

from __future__ import annotations

import numpy as np

NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{j}" for j in range(5)]
LEVELS = np.array([f"L{k}" for k in range(10)])

DRIFTED = {
    "num_02": "mean shift of +0.5 deviation",
    "num_05": "spread x1.5 around the mean",
    "num_09": "mean shift of +0.2 deviation",
    "num_13": "10% of rows moved to mean + 3 deviations",
    "num_17": "mean shift of -0.3 deviation",
    "cat_3": "frequencies half-mixed with the same frequencies rotated by three levels",
}


def _draw(i: int, rng: np.random.Generator, n: int) -> np.ndarray:
    shape = np.random.default_rng([7, i])  # the column's own parameters, the same every time
    family = i % 4
    if family == 0:
        return rng.normal(shape.uniform(-5, 5), shape.uniform(0.5, 3.0), n)
    if family == 1:
        return rng.lognormal(0.0, shape.uniform(0.3, 0.8), n)
    if family == 2:
        return rng.exponential(shape.uniform(0.5, 3.0), n)
    return rng.gamma(2.0, shape.uniform(0.5, 3.0), n)


def _drift(name: str, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mean, sd = float(ref.mean()), float(ref.std())
    kind = DRIFTED.get(name, "")
    if kind.startswith("mean shift"):
        shift = {"num_02": 0.5, "num_09": 0.2, "num_17": -0.3}[name]
        return cur + shift * sd
    if kind.startswith("spread"):
        return (cur - mean) * 1.5 + mean
    if kind.startswith("10% of rows"):
        moved = rng.random(cur.size) < 0.10
        cur = cur.copy()
        cur[moved] = mean + 3 * sd + rng.normal(0, 0.1 * sd, int(moved.sum()))
    return cur


def columns(n: int, seed: int = 42) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(reference, current)`` as dicts of column name to array, ``n`` rows each."""
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERIC):
        ref[name] = _draw(i, np.random.default_rng([seed, 0, i]), n)
        rng = np.random.default_rng([seed, 1, i])
        cur[name] = _drift(name, ref[name], _draw(i, rng, n), rng)
    for j, name in enumerate(CATEGORICAL):
        p = np.random.default_rng([11, j]).dirichlet(np.full(len(LEVELS), 2.0))
        q = 0.5 * p + 0.5 * np.roll(p, 3) if name in DRIFTED else p
        ref[name] = LEVELS[np.random.default_rng([seed, 2, j]).choice(len(LEVELS), n, p=p)]
        cur[name] = LEVELS[np.random.default_rng([seed, 3, j]).choice(len(LEVELS), n, p=q)]
    return ref, cur


def frames(n: int, seed: int = 42):
    import pandas as pd

    ref, cur = columns(n, seed)
    return pd.DataFrame(ref), pd.DataFrame(cur)

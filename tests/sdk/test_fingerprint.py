"""Dataset fingerprints: same data, same hash; any changed cell, a new hash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from passerelle.sdk.fingerprint import fingerprint


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, 500),
            "income": rng.normal(50_000, 9_000, 500),
            "plan": rng.choice(["free", "pro", "team"], 500),
            "churned": rng.random(500) > 0.8,
            "signup": pd.date_range("2024-01-01", periods=500, freq="h"),
        }
    )


def digest(data) -> str:
    return fingerprint(data)[0].digest


def test_same_frame_twice_same_digest(frame: pd.DataFrame) -> None:
    assert digest(frame) == digest(frame.copy())


CHANGES = {
    "age": 200,
    "income": -1.5,
    "plan": "enterprise",
    "churned": None,  # flipped below
    "signup": pd.Timestamp("1999-01-01"),
}


@pytest.mark.parametrize("column", list(CHANGES))
def test_one_changed_cell_changes_digest(frame: pd.DataFrame, column: str) -> None:
    changed = frame.copy()
    value = CHANGES[column] if column != "churned" else not frame.loc[123, column]
    assert changed.loc[123, column] != value
    changed.loc[123, column] = value
    assert digest(changed) != digest(frame)


def test_null_and_renamed_column_change_digest(frame: pd.DataFrame) -> None:
    with_null = frame.copy()
    with_null["income"] = with_null["income"].astype("float64")
    with_null.loc[5, "income"] = np.nan
    assert digest(with_null) != digest(frame)
    assert digest(frame.rename(columns={"age": "Age"})) != digest(frame)
    assert digest(frame.iloc[:-1]) != digest(frame)


def test_same_data_in_every_library(frame: pd.DataFrame, tmp_path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    expected = digest(frame)
    assert digest(table) == expected
    assert digest(pl.from_pandas(frame)) == expected
    assert digest(path) == expected
    assert digest(str(path)) == expected
    # chunking and slicing do not matter
    assert digest(pa.concat_tables([table.slice(0, 100), table.slice(100)])) == expected
    assert digest(pa.concat_tables([table, table]).slice(500)) == expected
    # nor does the pandas index or a categorical dtype
    assert digest(frame.set_axis(range(1000, 1500))) == expected
    assert digest(frame.astype({"plan": "category"})) == expected


def test_schema_and_counts(frame: pd.DataFrame) -> None:
    fp, _ = fingerprint(frame)
    assert fp.num_rows == 500 and fp.num_columns == 5
    assert [c["name"] for c in fp.schema] == ["age", "income", "plan", "churned", "signup"]
    assert {c["name"]: c["type"] for c in fp.schema}["plan"] == "string"


def test_nested_columns_are_fingerprinted() -> None:
    a = pa.table({"tags": [["a", "b"], [], None]})
    b = pa.table({"tags": [["a", "c"], [], None]})
    assert digest(a) != digest(b) and digest(a) == digest(
        pa.table({"tags": [["a", "b"], [], None]})
    )


def test_refuses_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot log a list"):
        fingerprint([1, 2, 3])
    with pytest.raises(FileNotFoundError):
        fingerprint(tmp_path / "missing.parquet")

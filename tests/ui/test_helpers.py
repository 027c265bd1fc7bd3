"""The pure helpers behind the pages: display filters, charts, artifact trees, run labels."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from passerelle.tracking.pages import order_identifier
from passerelle.tracking.search import parse_order_by
from passerelle.tracking.views import artifact_tree, parse_run_ids, run_labels
from passerelle.web.charts import MAX_POINTS, downsample, line_figure, parcoords_figure
from passerelle.web.previews import image_type, looks_like_text
from passerelle.web.render import format_duration, format_number, make_environment, safe_next


@pytest.mark.parametrize(
    ("start", "end", "shown"),
    [
        (0, 850, "850 ms"),
        (0, 12_300, "12.3 s"),
        (0, 245_000, "4 min 5 s"),
        (0, 7_380_000, "2 h 3 min"),
        (0, 3 * 86_400_000 + 4 * 3_600_000, "3 d 4 h"),
        (0, None, "—"),
    ],
)
def test_durations_read_like_a_person_would_say_them(
    start: int, end: int | None, shown: str
) -> None:
    assert format_duration(start, end) == shown


def test_numbers_keep_six_significant_digits_and_name_special_values() -> None:
    assert format_number(0.123456789) == "0.123457"
    assert format_number(math.nan) == "NaN"
    assert format_number(-math.inf) == "-Infinity"
    assert format_number(None) == ""


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/runs/abc?x=1", "/runs/abc?x=1"),
        ("//evil.example", "/"),
        ("https://evil", "/"),
        ("/\\evil", "/"),
        (None, "/"),
    ],
)
def test_only_local_paths_follow_a_login(target: str | None, kept: str) -> None:
    assert safe_next(target) == kept


@pytest.mark.parametrize("key", ["f1", "val.loss", "my key", "1st-place", "a'b\"c"])
def test_sort_identifiers_parse_back_to_the_same_key(key: str) -> None:
    ident = order_identifier("metrics", key)
    assert ident is not None
    parsed = parse_order_by([f"{ident} DESC"])[0]
    assert (parsed.kind, parsed.key, parsed.descending) == ("metric", key, True)
    assert order_identifier("metrics", "back`quote") is None


def test_json_in_pages_writes_nan_as_null_and_cannot_close_the_script_tag() -> None:
    template = make_environment({}).from_string("{{ value|tojson }}")
    assert template.render(value=[math.nan, math.inf, 1.5]) == "[null,null,1.5]"
    assert "</script>" not in template.render(value="</script><script>alert(1)")


def test_downsample_keeps_the_last_point_and_bounds_the_size() -> None:
    points = [(i, float(i)) for i in range(MAX_POINTS * 3 + 7)]
    kept = downsample(points)
    assert len(kept) <= MAX_POINTS + 1
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert downsample(points[:10]) == points[:10]


def test_line_figure_has_one_trace_per_series_and_a_legend_only_when_needed() -> None:
    one = line_figure("f1", [("a", [(0, 0.1), (1, math.nan)])])
    assert one["layout"]["showlegend"] is False
    assert math.isnan(one["data"][0]["y"][1])
    two = line_figure("f1", [("a", [(0, 0.1)]), ("b", [(0, 0.2)])])
    assert [t["name"] for t in two["data"]] == ["a", "b"]
    assert two["layout"]["showlegend"] is True


def test_parcoords_keeps_complete_columns_and_maps_text_to_levels() -> None:
    fig = parcoords_figure(
        ["r1", "r2"],
        [
            ("C", ["0.1", "10"]),
            ("penalty", ["l2", "l1"]),
            ("missing", [1.0, None]),
            ("nan", [1.0, math.nan]),
            ("nan-text", ["NaN", "NaN"]),
            ("mixed", ["0.5", "l1"]),
            ("f1", [0.8, 0.9]),
        ],
    )
    assert fig is not None
    dims = {d["label"]: d for d in fig["data"][0]["dimensions"]}
    assert list(dims) == ["C", "penalty", "f1"]
    assert dims["C"]["values"] == [0.1, 10.0]
    assert dims["penalty"]["ticktext"] == ["l1", "l2"] and dims["penalty"]["values"] == [1, 0]
    assert parcoords_figure(["r1", "r2"], [("f1", [0.8, 0.9])]) is None


def art(path: str) -> Any:
    return SimpleNamespace(path=path, size=1, sha256="0" * 64)


def test_artifact_tree_lists_folders_before_files_and_opens_each_folder_once() -> None:
    rows = artifact_tree([art("z.txt"), art("a/b/c.txt"), art("a/d.txt"), art("a/b/e.txt")])
    shown = [("  " * r["depth"]) + r["name"] + ("/" if r["kind"] == "dir" else "") for r in rows]
    assert shown == ["a/", "  b/", "    c.txt", "    e.txt", "  d.txt", "z.txt"]


def test_run_ids_from_the_query_string() -> None:
    assert parse_run_ids(["a,b", "b", " c ", ""]) == ["a", "b", "c"]
    with pytest.raises(Exception, match="at least one run"):
        parse_run_ids([])
    with pytest.raises(Exception, match="at most 50"):
        parse_run_ids([",".join(str(i) for i in range(51))])


def test_run_labels_tell_apart_runs_with_the_same_name() -> None:
    runs = [
        {"name": "x", "id": "1234567890"},
        {"name": "x", "id": "abcdefabcd"},
        {"name": "y", "id": "9"},
    ]
    assert run_labels(runs) == ["x (1234567)", "x (abcdefa)", "y"]


def test_previews_tell_text_from_binary_and_images_by_extension() -> None:
    assert looks_like_text("héllo".encode())
    assert looks_like_text("héllo".encode()[:-1])  # a character cut by the 64 KiB head
    assert not looks_like_text(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert image_type("plots/ROC.SVG") == "image/svg+xml"
    assert image_type("model.pkl") is None

"""Data drift, side by side: passerelle's drift report against Evidently's, in one run.

    uv run python bench/drift.py                      # 100,000 and 1,000,000 rows (about 4 min)
    uv run python bench/drift.py --rows 100000        # a quick check
    uv run python bench/drift.py --skip-evidently     # passerelle only

What it does:

1. Installs ``evidently==0.7.23`` (with ``pandas<3``: that release does not import under
   pandas 3) into a throwaway virtual environment, ``/tmp/passerelle-bench/evidently-venv``,
   reused when it already holds that version.
2. For each size, runs each system in a fresh process of its own (Evidently from its virtual
   environment, passerelle from this one), one after the other, never at the same time. Each
   process generates the same tables (``bench/_drift_data.py``: 20 numeric and 5 categorical
   columns per side, six columns drifted in different ways), imports its library, then resets
   its peak-memory mark and times the drift report alone:

   - Evidently: ``Dataset.from_pandas`` for both sides, ``Report([DataDriftPreset()]).run``,
     then ``snapshot.dict()`` to read each column's verdict;
   - passerelle: ``passerelle.monitoring.drift.compare(reference, current)`` at its defaults
     (per-column tests and checks, and the multivariate domain classifier), on the same pandas
     DataFrames.

   A last process per size holds only the two tables (as Arrow) with numpy and pyarrow
   imported (the bare floor), then scipy.special (the least of scipy a statistical test needs),
   then scipy.stats and scikit-learn: the floors a report on these libraries starts from.
3. Reports wall time, CPU time and peak resident memory (the process's high-water mark during
   the report, the tables themselves included on both sides), the columns each flags, and the
   ratios; raw figures go to ``bench/results/drift-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRATCH = Path("/tmp/passerelle-bench")
VENV = SCRATCH / "evidently-venv"
EVIDENTLY_VERSION = "0.7.23"
RESULTS = HERE / "results"
# passerelle runs twice per size: on its own pandas 3 tables (text backed by Arrow), and on text
# held as Python string objects, the way pandas 2 (which Evidently requires) holds it.
VARIANTS = {"passerelle": "pandas 3 (Arrow)", "passerelle-objects": "Python objects"}


def log(message: str) -> None:
    print(f"[drift] {message}", file=sys.stderr, flush=True)


# -- inside a measured process --------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Start a new high-water mark of resident memory (Linux): the peak of what follows."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _evidently(ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    sys.path.insert(0, str(HERE))
    from _drift_data import CATEGORICAL, NUMERIC

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    reference = Dataset.from_pandas(ref, data_definition=definition)
    current = Dataset.from_pandas(cur, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    verdicts: dict[str, Any] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, value = config["method"], config["threshold"], metric["value"]
        # p-value tests drift below their level, distances at or above their threshold
        drifted = value < threshold if "p_value" in method else value >= threshold
        verdicts[config["column"]] = {"method": method, "value": value, "drifted": drifted}
    return sorted(c for c, v in verdicts.items() if v["drifted"]), {"per_column": verdicts}


def _passerelle(ref: Any, cur: Any) -> tuple[list[str], dict[str, Any]]:
    from passerelle.monitoring.drift import compare

    report = compare(ref, cur)
    per_column = {
        c["column"]: {"method": c["test"], "value": c["statistic"], "drifted": c["drifted"]}
        for c in report.columns
    }
    extra = {"per_column": per_column, "multivariate": report.multivariate}
    return sorted(report.drifted_columns), extra


def _through_the_log(rows: int, seed: int) -> None:
    """The server's path: the current table as a day of inference log parts (written before the
    timer starts), drift over 24 hourly windows read with DuckDB and cached, then the same query
    again, the reference's profile and every window read from their cached summaries."""
    import tempfile

    import duckdb  # noqa: F401  (imports stay outside the timed part)
    import numpy as np
    import pyarrow as pa
    import scipy.stats  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    from _drift_data import DRIFTED, columns

    from passerelle.core.store import ObjectStore
    from passerelle.monitoring.drift.compare import evaluate
    from passerelle.monitoring.drift.defaults import infer_kinds
    from passerelle.monitoring.drift.reference import load_profile, table_digest
    from passerelle.monitoring.drift.service import _merge
    from passerelle.monitoring.drift.windows import bounds, summarise_windows

    ref, cur = columns(rows, seed)
    folder = Path(tempfile.mkdtemp(prefix="drift-log-"))
    store = ObjectStore(str(folder / "store"), spool_dir=folder / "spool")
    day, hour = 1_699_920_000_000, 3_600_000  # 2023-11-14 00:00 UTC
    ts = day + np.sort(np.random.default_rng(seed).integers(0, 24 * hour, rows))
    table = pa.table(
        {"route": pa.array(["primary"] * rows), "status": pa.array(["ok"] * rows), "ts": ts}
        | {f"input.{k}": v for k, v in cur.items()}
    )
    for i in range(24):  # one part per hour, as compaction writes them at this traffic
        part = table.slice(i * rows // 24, (i + 1) * rows // 24 - i * rows // 24)
        store.put_named_table(f"inference/endpoint=bench/date=2023-11-14/part-{i}.parquet", part)
    del table, cur
    reference = pa.table(ref)
    del ref
    digest, kinds = table_digest(reference), infer_kinds(reference)
    spans = bounds(day, day + 24 * hour, hour)
    data_mib = _status_kib("VmRSS") / 1024
    _reset_peak()

    def query() -> tuple[list[str], float]:
        started = time.perf_counter()
        # the first query profiles the reference and stores it; the second reads it back
        profile, base = load_profile(store, 1, reference, digest, kinds)
        found = summarise_windows(store, "bench", profile, base, spans, day + 48 * hour)
        merged, n, sample = _merge(found)
        report = evaluate(profile, merged, None, current_rows=n, current_sample=sample)
        return sorted(report.drifted_columns), time.perf_counter() - started

    flagged, first = query()
    peak = _status_kib("VmHWM") / 1024
    _, cached = query()
    result = {
        "engine": "passerelle-log",
        "rows": rows,
        "wall_s": round(first, 3),
        "cached_wall_s": round(cached, 3),
        "data_rss_mib": round(data_mib, 1),
        "peak_rss_mib": round(peak, 1),
        "flagged": flagged,
        "exact": flagged == sorted(DRIFTED),
    }
    print("RESULT " + json.dumps(result, default=str), flush=True)


def _floor(rows: int, seed: int) -> None:
    """The least a report on these tables can hold, before a single statistic is computed: the
    bare floor (the two tables as Arrow, their most compact form, made the same way as in every
    other process, with numpy and pyarrow imported; pyarrow imports pandas the first time it
    converts an array), then with scipy.special, then with scipy.stats and scikit-learn."""
    import gc

    import numpy as np  # noqa: F401
    import pyarrow as pa
    from _drift_data import columns

    ref, cur = columns(rows, seed)
    tables = pa.table(ref), pa.table(cur)
    del ref, cur
    gc.collect()
    bare = _status_kib("VmRSS") / 1024
    # the distributions alone: the least of scipy a statistical test needs
    import scipy.special

    special = _status_kib("VmRSS") / 1024
    import scipy.stats  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    result = {
        "engine": "floor",
        "rows": rows,
        "bare_floor_rss_mib": round(bare, 1),
        "scipy_special_floor_rss_mib": round(special, 1),
        "floor_rss_mib": round(_status_kib("VmRSS") / 1024, 1),
        "tables_mib": round(sum(t.nbytes for t in tables) / 2**20, 1),
    }
    print("RESULT " + json.dumps(result), flush=True)


def child(engine: str, rows: int, seed: int) -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry off
    sys.path.insert(0, str(HERE))
    if engine == "passerelle-log":
        _through_the_log(rows, seed)
        return
    if engine == "floor":
        _floor(rows, seed)
        return
    from _drift_data import CATEGORICAL, DRIFTED, frames

    ref, cur = frames(rows, seed)
    if engine == "passerelle-objects":  # text held as Python strings, as pandas 2 holds it
        for frame in (ref, cur):
            for name in CATEGORICAL:
                frame[name] = frame[name].astype(object)
    if engine == "evidently":
        import evidently  # noqa: F401  (imports stay outside the timed part, on both sides)

        run = _evidently
    else:
        import scipy.stats  # noqa: F401
        import sklearn.ensemble  # noqa: F401

        import passerelle.monitoring.drift  # noqa: F401

        run = _passerelle
    data_mib = _status_kib("VmRSS") / 1024
    _reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    flagged, extra = run(ref, cur)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "engine": engine,
        "rows": rows,
        "seed": seed,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "data_rss_mib": round(data_mib, 1),
        "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1),
        "process_max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "flagged": flagged,
        "exact": flagged == sorted(DRIFTED),
        **extra,
    }
    print("RESULT " + json.dumps(result, default=str), flush=True)


# -- the driver -----------------------------------------------------------------------------------
def venv_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('evidently'))"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_evidently() -> Path:
    if venv_version() != EVIDENTLY_VERSION:
        SCRATCH.mkdir(parents=True, exist_ok=True)
        if not (VENV / "bin" / "python").exists():
            log(f"creating {VENV}")
            subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        pip_log = SCRATCH / "evidently-pip.log"
        log(f"installing evidently=={EVIDENTLY_VERSION} with pip (1-2 min; log: {pip_log})")
        with open(pip_log, "w") as fh:
            subprocess.run(
                [VENV / "bin" / "pip", "install", f"evidently=={EVIDENTLY_VERSION}", "pandas<3"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if venv_version() != EVIDENTLY_VERSION:
            raise SystemExit(f"could not install Evidently; see {pip_log}")
    return VENV / "bin" / "python"


def measure(python: Path | str, engine: str, rows: int, seed: int, timeout: int) -> dict[str, Any]:
    """One measurement in a fresh process (its own session, killed by its id on timeout)."""
    argv = [str(python), str(Path(__file__).resolve()), "child", engine, str(rows), str(seed)]
    env = {**os.environ, "DO_NOT_TRACK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    load = os.getloadavg()[0]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        return {"engine": engine, "rows": rows, "error": f"timed out after {timeout} s"}
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"engine": engine, "rows": rows, "error": err[-2000:]}
    result = json.loads(line[len("RESULT ") :])
    result["loadavg_before"] = round(load, 2)
    return result


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: times, peaks, the memory the report itself added (peak minus what the process
    held before it: libraries and tables), and the ratios (above 1 for speed favours passerelle,
    below 1 for memory)."""
    by = {(r["engine"], r["rows"]): r for r in results}
    sizes = sorted({r["rows"] for r in results})
    lines = [
        "| rows per side | passerelle's text columns | Evidently | passerelle | faster | "
        "Evidently peak RSS (added) | passerelle peak RSS (added) | peak ratio | "
        "same columns flagged |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def mem(r: dict[str, Any]) -> str:
        return f"{r['peak_rss_mib']:.0f} MiB ({r['peak_rss_mib'] - r['data_rss_mib']:.0f})"

    for n in sizes:
        ev = by.get(("evidently", n))
        for engine, text in VARIANTS.items():
            ps = by.get((engine, n))
            if ps is None or "error" in ps:
                continue
            flagged = ", ".join(ps["flagged"])
            if ev is None or "error" in ev:
                lines.append(
                    f"| {n:,} | {text} | — | {ps['wall_s']:.2f} s | — | — | {mem(ps)} | — "
                    f"| {flagged} |"
                )
                continue
            same = "yes" if ev["flagged"] == ps["flagged"] else "NO"
            lines.append(
                f"| {n:,} | {text} | {ev['wall_s']:.1f} s | {ps['wall_s']:.2f} s | "
                f"{ev['wall_s'] / ps['wall_s']:.1f}x | {mem(ev)} | {mem(ps)} | "
                f"{ps['peak_rss_mib'] / ev['peak_rss_mib']:.2f} | {same} ({flagged}) |"
            )
    floors = [r for r in results if r.get("engine") == "floor" and "error" not in r]
    if floors:
        lines += [
            "",
            "| rows per side | bare floor: Arrow tables, numpy, pyarrow | and scipy.special "
            "| and scipy.stats, scikit-learn | a third of Evidently's peak | passerelle peak over "
            "the last |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for f in floors:
            ev, ps = by.get(("evidently", f["rows"])), by.get(("passerelle", f["rows"]))
            third = f"{ev['peak_rss_mib'] / 3:.0f} MiB" if ev and "error" not in ev else "—"
            over = (
                f"{ps['peak_rss_mib'] - f['floor_rss_mib']:+.0f} MiB"
                if ps and "error" not in ps
                else "—"
            )
            lines.append(
                f"| {f['rows']:,} | {f['bare_floor_rss_mib']:.0f} MiB | "
                f"{f['scipy_special_floor_rss_mib']:.0f} MiB | "
                f"{f['floor_rss_mib']:.0f} MiB | {third} | {over} |"
            )
    logged = [r for r in results if r.get("engine") == "passerelle-log" and "error" not in r]
    if logged:
        lines += [
            "",
            "| rows in the log (24 hourly windows) | first query (windows read with DuckDB) | "
            "again (windows cached) | peak RSS (added) | columns flagged |",
            "|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {r['rows']:,} | {r['wall_s']:.2f} s | {r['cached_wall_s']:.2f} s | {mem(r)} | "
            f"{', '.join(r['flagged'])} |"
            for r in logged
        ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per measurement")
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--report", metavar="FILE", help="print the table of a saved run")
    parser.add_argument(
        "--log", action="store_true", help="also measure passerelle through the inference log"
    )
    args = parser.parse_args()
    if args.report:
        print(table(json.loads(Path(args.report).read_text())["results"]))
        return
    evidently_python = None if args.skip_evidently else ensure_evidently()
    results = []
    for rows in args.rows:
        runs = [(engine, sys.executable) for engine in [*VARIANTS, "floor"]]
        if args.log:
            runs.append(("passerelle-log", sys.executable))
        if evidently_python is not None:
            runs.insert(0, ("evidently", evidently_python))
        for engine, python in runs:
            log(f"{engine}, {rows:,} rows per side")
            result = measure(python, engine, rows, args.seed, args.timeout)
            if "error" in result:
                log(f"{engine} failed: {result['error']}")
            elif engine == "floor":
                log(
                    f"floor: {result['bare_floor_rss_mib']} MiB bare, "
                    f"{result['floor_rss_mib']} MiB with scipy.stats and scikit-learn"
                )
            else:
                log(
                    f"{engine}: {result['wall_s']} s, peak {result['peak_rss_mib']} MiB, "
                    f"flagged {', '.join(result['flagged'])}"
                )  # fmt: skip
            results.append(result)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"drift-{time.strftime('%Y%m%d-%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    path.write_text(json.dumps({"machine": machine, "results": results}, indent=1, default=str))
    print(table(results))
    log(f"raw figures: {path}")


if __name__ == "__main__":
    main()

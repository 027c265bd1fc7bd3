"""LLM tracing ingestion, side by side with Arize Phoenix: spans per second until queryable.

One command, from the repository root::

    uv run python bench/tracing.py                   # passerelle and Phoenix, 3-6 min
    uv run python bench/tracing.py --skip-phoenix    # passerelle only, under a minute

What it does:

1. Builds one OTLP export once: 2,000 traces of 5 spans (an agent root, a retrieval, two LLM
   generations with OpenInference and GenAI attributes and ~500-character prompts, a tool call),
   recorded with the OpenTelemetry SDK and encoded by its OTLP encoder into
   ``ExportTraceServiceRequest`` bodies of 512 spans (the ``BatchSpanProcessor`` batch size).
2. Installs ``arize-phoenix`` with pip into a throwaway virtual environment
   (``/tmp/passerelle-bench/phoenix-venv``, reused when it holds the pinned version).
3. For each server in turn (``passerelle server`` on a fresh home, then ``phoenix serve`` on a
   fresh working folder, both SQLite, on free loopback ports, in their own process groups): sends
   the same bodies one after the other over one keep-alive connection, as an exporter does, and
   polls the server's SQLite file (read-only, every 50 ms) until every span is stored; then
   checks through the server's REST API that every span is visible. Meanwhile the RSS of the
   server's process group is sampled every 100 ms.
4. Prints the table and writes the raw figures to ``bench/results/tracing-<time>.json``.

Ratios put passerelle first: throughput ratios are passerelle / Phoenix, memory ratios
passerelle / Phoenix (under 1 is less memory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import (
    clean_env,
    ensure_venv,
    free_port,
    group_processes,
    pgid_cpu_s,
    stop_group,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[1]
PHOENIX_VERSION = "20.26.1"
PHOENIX_VENV = Path("/tmp/passerelle-bench/phoenix-venv")
PROJECT = "bench"
BATCH = 512
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- the export ---------------------------------------------------------------------------------
def build_export(traces: int, spans_per_trace: int, seed: int = 7) -> list[bytes]:
    """The OTLP request bodies both servers receive, built once with the OpenTelemetry SDK."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    rnd = random.Random(seed)
    words = "alpha beta context retrieval invoice customer model answer question policy refund "
    words += "shipping order summary token latency"
    vocabulary = words.split()

    def text(size: int) -> str:
        out: list[str] = []
        while sum(len(w) + 1 for w in out) < size:
            out.append(rnd.choice(vocabulary))
        return " ".join(out)[:size]

    prompts = [text(500) for _ in range(256)]
    answers = [text(200) for _ in range(256)]
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "passerelle-bench", "openinference.project.name": PROJECT}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("passerelle.bench")
    models = ("gpt-4o-mini", "claude-3-5-sonnet", "llama-3.1-70b")
    for i in range(traces):
        model = models[i % 3]
        with tracer.start_as_current_span("agent.run") as root:
            root.set_attribute("openinference.span.kind", "CHAIN")
            root.set_attribute("input.value", prompts[i % 256][:200])
            root.set_attribute("session.id", f"sess-{i // 10}")
            for k in range(spans_per_trace - 1):
                kind = ("RETRIEVER", "LLM", "TOOL", "LLM")[k % 4]
                with tracer.start_as_current_span(f"{kind.lower()}.call") as span:
                    span.set_attribute("openinference.span.kind", kind)
                    if kind == "LLM":
                        pt, ct = rnd.randint(100, 900), rnd.randint(20, 300)
                        prompt = prompts[(i + k) % 256]
                        span.set_attribute("llm.model_name", model)
                        span.set_attribute("llm.provider", "openai")
                        span.set_attribute("llm.token_count.prompt", pt)
                        span.set_attribute("llm.token_count.completion", ct)
                        span.set_attribute("llm.token_count.total", pt + ct)
                        span.set_attribute("input.value", prompt)
                        span.set_attribute("output.value", answers[(i + k) % 256])
                        span.set_attribute("llm.input_messages.0.message.role", "user")
                        span.set_attribute("llm.input_messages.0.message.content", prompt)
                        span.set_attribute("gen_ai.system", "openai")
                        span.set_attribute("gen_ai.request.model", model)
                        span.set_attribute("gen_ai.usage.input_tokens", pt)
                        span.set_attribute("gen_ai.usage.output_tokens", ct)
                    elif kind == "RETRIEVER":
                        span.set_attribute("input.value", prompts[(i + k) % 256][:120])
                        span.set_attribute(
                            "retrieval.documents.0.document.content", answers[i % 256]
                        )
                        span.set_attribute("retrieval.documents.0.document.score", 0.87)
                    else:
                        span.set_attribute("tool.name", "lookup_order")
                        span.set_attribute("input.value", f'{{"order_id": {i}}}')
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    return [
        encode_spans(spans[start : start + BATCH]).SerializeToString()
        for start in range(0, len(spans), BATCH)
    ]


# -- measuring a server -------------------------------------------------------------------------
def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group, in MiB."""
    pages = 0
    for pid, _ in group_processes({pgid}):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                pages += int(fh.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
    return pages * PAGE_KB / 1024


class RssSampler:
    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(group_rss_mb(self.pgid))
            time.sleep(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def count_rows(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        return -1


def send_and_wait(
    name: str,
    url: str,
    bodies: list[bytes],
    expected: int,
    proc: subprocess.Popen[Any],
    db: Path,
    table: str,
    timeout: float,
) -> dict[str, Any]:
    """Send every body, then poll the database until ``expected`` spans are stored."""
    import httpx

    time.sleep(2)  # let start-up work settle before the idle figure
    idle = group_rss_mb(proc.pid)
    cpu0 = pgid_cpu_s([proc.pid])
    with RssSampler(proc.pid) as rss, httpx.Client(timeout=600) as http:
        t0 = time.perf_counter()
        for body in bodies:
            r = http.post(
                f"{url}/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
            )
            if r.status_code != 200:
                raise RuntimeError(f"{name} answered {r.status_code}: {r.text[:300]}")
        acked = time.perf_counter() - t0
        stored = 0
        while stored < expected:
            stored = count_rows(db, table)
            if time.perf_counter() - t0 > timeout or proc.poll() is not None:
                raise RuntimeError(f"{name}: {stored} of {expected} spans stored before timeout")
            if stored < expected:
                time.sleep(0.05)
        queryable = time.perf_counter() - t0
        cpu = pgid_cpu_s([proc.pid]) - cpu0
    say(f"{name}: {expected} spans acknowledged in {acked:.2f} s, stored in {queryable:.2f} s")
    return {
        "acknowledged_s": acked,
        "queryable_s": queryable,
        "spans_per_s": expected / queryable,
        "server_cpu_s": cpu,
        "spans_per_server_cpu_s": expected / cpu if cpu else None,
        "rss_idle_mb": idle,
        "rss_peak_mb": max(rss.samples) if rss.samples else None,
    }


def passerelle_run(work: Path, bodies: list[bytes], expected: int, timeout: float) -> dict:
    import httpx

    home = work / "passerelle-home"
    shutil.rmtree(home, ignore_errors=True)
    port = free_port()
    log = open(work / "passerelle.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [sys.executable, "-m", "passerelle.cli.main", "server", "--port", str(port)],
        env=clean_env(PASSERELLE_HOME=str(home)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_http(f"{url}/healthz", proc)
        result = send_and_wait(
            "passerelle",
            url,
            bodies,
            expected,
            proc,
            home / "passerelle.db",
            "observations",
            timeout,
        )
        board = httpx.get(f"{url}/api/v1/tracing/dashboard", timeout=60).json()
        result["api_visible_spans"] = board["observations"]
        result["startup_s"] = startup
        return result
    finally:
        stop_group(proc)
        log.close()


def phoenix_run(work: Path, bodies: list[bytes], expected: int, timeout: float) -> dict:
    import httpx

    python = ensure_venv(PHOENIX_VENV, "arize-phoenix", PHOENIX_VERSION, say)
    folder = work / "phoenix"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    port, grpc_port = free_port(), free_port()
    env = clean_env(
        PHOENIX_WORKING_DIR=str(folder),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        DO_NOT_TRACK="1",
    )
    log = open(work / "phoenix.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [str(Path(python).parent / "phoenix"), "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        startup = wait_http(f"{url}/healthz", proc, timeout=300)
        result = send_and_wait(
            "Phoenix", url, bodies, expected, proc, folder / "phoenix.db", "spans", timeout
        )
        visible, cursor = 0, None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = httpx.get(f"{url}/v1/projects/{PROJECT}/spans", params=params, timeout=120)
            body = page.json()
            visible += len(body.get("data", []))
            cursor = body.get("next_cursor")
            if not cursor:
                break
        result["api_visible_spans"] = visible
        result["startup_s"] = startup
        result["version"] = PHOENIX_VERSION
        return result
    finally:
        stop_group(proc, grace=30)
        log.close()


# -- report -------------------------------------------------------------------------------------
def render(results: dict[str, Any], expected: int) -> str:
    p, x = results["passerelle"], results.get("phoenix")
    rows = [
        ("spans per second until queryable", "spans_per_s", "{:,.0f}", True),
        ("seconds until all acknowledged", "acknowledged_s", "{:.2f}", False),
        ("seconds until all queryable", "queryable_s", "{:.2f}", False),
        ("spans per server CPU second", "spans_per_server_cpu_s", "{:,.0f}", True),
        ("server RSS at rest, MiB", "rss_idle_mb", "{:,.0f}", False),
        ("server RSS peak, MiB", "rss_peak_mb", "{:,.0f}", False),
    ]
    head = f"{expected:,} spans ({len(results['bodies'])} OTLP exports of up to {BATCH} spans)"
    lines = [head, "", "| | passerelle | Phoenix | ratio |", "|---|---:|---:|---:|"]
    for label, key, fmt, higher_better in rows:
        pv = p.get(key)
        xv = x.get(key) if x else None
        ratio = ""
        if pv and xv:
            ratio = f"{pv / xv:.1f}x" if higher_better else f"{pv / xv:.2f}x"
        lines.append(
            f"| {label} | {fmt.format(pv) if pv is not None else '-'} | "
            f"{fmt.format(xv) if xv is not None else '-'} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--traces", type=int, default=2000)
    ap.add_argument("--spans-per-trace", type=int, default=5)
    ap.add_argument("--skip-phoenix", action="store_true", help="measure passerelle only")
    ap.add_argument("--work", type=Path, default=None, help="keep the scratch folder here")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per server, at most")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="passerelle-tracing-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    expected = args.traces * args.spans_per_trace
    say(f"building the export: {args.traces} traces x {args.spans_per_trace} spans")
    bodies = build_export(args.traces, args.spans_per_trace)
    say(f"{len(bodies)} bodies, {sum(map(len, bodies)) / 2**20:.1f} MiB in all")
    results: dict[str, Any] = {"bodies": [len(b) for b in bodies], "expected": expected}
    results["passerelle"] = passerelle_run(work, bodies, expected, args.timeout)
    if not args.skip_phoenix:
        results["phoenix"] = phoenix_run(work, bodies, expected, args.timeout)
    for system in ("passerelle", "phoenix"):
        if system in results and results[system]["api_visible_spans"] != expected:
            raise SystemExit(f"{system}: {results[system]['api_visible_spans']} spans visible")
    table = render(results, expected)
    print("\n" + table + "\n")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"tracing-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results["table"] = table
    results["loadavg"] = os.getloadavg()
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    results["commit"] = done.stdout.strip() or None
    target.write_text(json.dumps(results, indent=1))
    say(f"raw figures: {target}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

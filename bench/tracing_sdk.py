"""What a traced function costs the application: passerelle's SDK beside the OpenTelemetry SDK
and Langfuse's ``@observe``, in one run, against the same local OTLP sink.

    uv run python bench/tracing_sdk.py                  # 5-8 min on 2 shared cores
    uv run python bench/tracing_sdk.py --skip-others    # passerelle only
    uv run python bench/tracing_sdk.py --spans 20000 --reps 5

Every system traces the same small function (two short arguments in, a short string out) with
the same attributes (input, output, their mime types, an observation type). Rows:

- ``span cost``: CPU of the application's thread per traced call, minus the untraced call
  (``time.thread_time``: other processes on a shared machine do not inflate it); the wall time
  per call beside it (it includes waiting for the GIL while the exporter thread encodes); and
  the whole process's CPU per span over the calls *and* the flush that sends them (the export's
  full price, paid on another thread).
- ``server down``: the same span cost with nothing listening at the sink's address.
- ``burst``: 10,000 spans as fast as the application makes them, with each SDK's defaults,
  then a flush: how many the sink received.

Each measurement runs in a fresh process; systems take turns round by round and the median
round is reported. OpenTelemetry (``opentelemetry-sdk`` with the OTLP/HTTP protobuf exporter
and a ``BatchSpanProcessor``, its defaults) and Langfuse are installed by the script with uv
into a throwaway virtual environment (``/tmp/passerelle-bench/tracing-venv``, reused). The sink
is a small HTTP server (this file, ``--sink``) that decodes every OTLP request and counts spans.
Raw figures go to ``bench/results/tracing-sdk-<timestamp>.json``.

The file is also run by the throwaway environment's interpreter: no third-party import at the
top, and nothing from passerelle outside the passerelle branch.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = Path("/tmp/passerelle-bench/tracing-venv")
OTHERS = {
    "otel": ["opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"],
    "langfuse": ["langfuse"],
}
BURST = 10_000


# -- the traced function ------------------------------------------------------------------------
def answer(question: str, k: int = 3) -> str:
    return "answer to " + question


QUESTION = "what is the capital of France?"


# -- the sink: counts the spans it decodes ------------------------------------------------------
def run_sink(port: int) -> None:
    import gzip
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    lock = threading.Lock()
    count = [0]
    ok = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._send(200, json.dumps({"spans": count[0]}).encode(), "application/json")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.endswith("/v1/traces"):
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                with lock:
                    count[0] += n
                return self._send(200, ok, "application/x-protobuf")
            if self.path == "/reset":
                with lock:
                    count[0] = 0
            self._send(200, b"{}", "application/json")

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def sink_count(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url + "/count", timeout=10) as resp:
        return json.loads(resp.read())["spans"]


def sink_reset(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(url + "/reset", data=b"", method="POST"))


# -- the systems under test (each set up in its own process) ------------------------------------
def setup(system: str, url: str) -> tuple[Any, Any]:
    """The traced ``answer`` of ``system`` exporting to ``url``, and its flush function."""
    if system == "passerelle":
        import passerelle as psl

        tracer = psl.Tracer(psl.SpanExporter(url))
        return tracer.observe(name="answer")(answer), tracer.flush
    if system == "otel":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(url + "/v1/traces")))
        tracer = provider.get_tracer("bench")

        def traced(question: str, k: int = 3) -> str:
            # The attributes passerelle's @observe records, set by hand.
            with tracer.start_as_current_span("answer") as span:
                span.set_attribute("passerelle.observation.type", "span")
                span.set_attribute("input.value", json.dumps({"question": question, "k": k}))
                span.set_attribute("input.mime_type", "application/json")
                out = answer(question, k)
                span.set_attribute("output.value", out)
                span.set_attribute("output.mime_type", "text/plain")
                return out

        return traced, provider.force_flush
    if system == "langfuse":
        os.environ.update(
            LANGFUSE_PUBLIC_KEY="pk-lf-bench",
            LANGFUSE_SECRET_KEY="sk-lf-bench",
            LANGFUSE_BASE_URL=url,
            LANGFUSE_HOST=url,
        )
        from langfuse import get_client, observe

        client = get_client()
        return observe(name="answer")(answer), client.flush
    raise SystemExit(f"unknown system {system}")


def measure(system: str, url: str, spans: int, mode: str, sink_pgid: int) -> dict[str, Any]:
    """One process, one system: warm up, then time ``spans`` calls (cost) or a burst."""
    sys.path.insert(0, str(HERE))
    from _util import Window, wait_quiet

    traced, flush = setup(system, url)
    up = mode != "down"
    for _ in range(2000):
        traced(QUESTION, k=3)
    if up:
        flush()
        sink_reset(url)
    gc.collect()
    if mode == "burst":
        for _ in range(BURST):
            traced(QUESTION, k=3)
        flush()
        time.sleep(1.0)  # let the sink finish decoding the last request
        return {"received": sink_count(url), "sent": BURST}
    bare = _loop(answer, spans)
    quiet = wait_quiet([sink_pgid], threshold_cores=0.3, max_wait_s=10)
    c0, p0 = time.thread_time(), time.process_time()
    w0 = time.perf_counter()
    with Window([sink_pgid]) as window:
        for _ in range(spans):
            traced(QUESTION, k=3)
    wall = time.perf_counter() - w0
    thread_cpu = time.thread_time() - c0
    if up:
        flush()
    process_cpu = time.process_time() - p0
    received = sink_count(url) if up else None
    return {
        "app_thread_us": (thread_cpu - bare["cpu"]) / spans * 1e6,
        "wall_us": (wall - bare["wall"]) / spans * 1e6,
        "process_cpu_us": (process_cpu - bare["cpu"]) / spans * 1e6 if up else None,
        "received": received,
        "spans": spans,
        "foreign_cores": window.foreign_cores,
        "foreign_cores_before": quiet["foreign_cores_before"],
    }


def _loop(fn: Any, n: int) -> dict[str, float]:
    c0, w0 = time.thread_time(), time.perf_counter()
    for _ in range(n):
        fn(QUESTION, k=3)
    return {"cpu": time.thread_time() - c0, "wall": time.perf_counter() - w0}


# -- the driver ---------------------------------------------------------------------------------
def ensure_others(say: Any) -> dict[str, str]:
    """Install the other SDKs with uv into the throwaway environment; their versions, or why not."""
    import shutil

    uv = shutil.which("uv")
    versions: dict[str, str] = {}
    if not (VENV / "bin" / "python").exists():
        say(f"creating {VENV}")
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
    for system, packages in OTHERS.items():
        probe = f"import importlib.metadata as m; print(m.version({packages[0]!r}))"
        found = subprocess.run(
            [VENV / "bin" / "python", "-c", probe], capture_output=True, text=True, check=False
        )
        if found.returncode != 0:
            say(f"installing {' '.join(packages)} into {VENV}")
            done = subprocess.run(
                [uv, "pip", "install", "-q", "--python", str(VENV / "bin" / "python"), *packages],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                versions[system] = f"not installable: {done.stderr.strip()[-300:]}"
                continue
            found = subprocess.run(
                [VENV / "bin" / "python", "-c", probe], capture_output=True, text=True, check=False
            )
        versions[system] = found.stdout.strip()
    return versions


def run_measure(system: str, url: str, spans: int, mode: str, sink_pgid: int) -> dict[str, Any]:
    python = sys.executable if system == "passerelle" else str(VENV / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSERELLE_", "OTEL_"))}
    env.pop("VIRTUAL_ENV", None)
    cmd = [python, str(Path(__file__).resolve()), "--measure", system, "--url", url]
    cmd += ["--spans", str(spans), "--mode", mode, "--sink-pgid", str(sink_pgid)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{system} {mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=20_000, help="traced calls per timed round")
    ap.add_argument("--reps", type=int, default=5, help="rounds per system (median reported)")
    ap.add_argument("--skip-others", action="store_true", help="measure passerelle only")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="up", help=argparse.SUPPRESS)
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--sink-pgid", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink:
        return run_sink(args.sink)
    if args.measure:
        result = measure(args.measure, args.url, args.spans, args.mode, args.sink_pgid)
        print(json.dumps(result), flush=True)
        os._exit(0)  # down: do not wait for the SDKs' exit flush against nothing

    sys.path.insert(0, str(HERE))
    from _util import free_port, stop_group, wait_http

    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    versions = {"python": sys.version.split()[0]}
    systems = ["passerelle"]
    if not args.skip_others:
        others = ensure_others(say)
        versions.update(others)
        systems += [s for s, v in others.items() if not v.startswith("not installable")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    down = f"http://127.0.0.1:{free_port()}"
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--sink", str(port)],
        start_new_session=True,
    )
    results: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in systems}
    try:
        wait_http(url + "/count", sink, timeout=30)
        for rep in range(args.reps):
            for system in systems:
                for mode, target in (("up", url), ("down", down)):
                    say(f"round {rep + 1}/{args.reps}: {system} {mode}")
                    row = run_measure(system, target, args.spans, mode, sink.pid)
                    results[system].setdefault(mode, []).append(row)
        for system in systems:
            say(f"burst: {system}")
            results[system]["burst"] = [run_measure(system, url, args.spans, "burst", sink.pid)]
    finally:
        stop_group(sink, grace=5)
    report(results, versions, args)


def report(results: dict[str, Any], versions: dict[str, str], args: Any) -> None:
    def med(system: str, mode: str, key: str) -> float | None:
        values = [r[key] for r in results[system].get(mode, []) if r.get(key) is not None]
        return statistics.median(values) if values else None

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    def fmt2(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    names = {
        "passerelle": "passerelle @observe",
        "otel": "OpenTelemetry SDK",
        "langfuse": "Langfuse @observe",
    }
    lines = [
        f"spans per round: {args.spans}; rounds: {args.reps}; versions: {json.dumps(versions)}",
        "",
        "| SDK | app thread CPU µs/span | wall µs/span | process CPU µs/span (with export) "
        "| server down: app thread CPU µs/span | burst of 10,000: received "
        "| other processes' cores during the calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for system in results:
        burst = results[system]["burst"][0]
        lines.append(
            f"| {names[system]} | {fmt(med(system, 'up', 'app_thread_us'))} "
            f"| {fmt(med(system, 'up', 'wall_us'))} | {fmt(med(system, 'up', 'process_cpu_us'))} "
            f"| {fmt(med(system, 'down', 'app_thread_us'))} | {burst['received']:,} "
            f"| {fmt2(med(system, 'up', 'foreign_cores'))} |"
        )
    incomplete = [
        f"{s}: round received {r['received']} of {r['spans']}"
        for s in results
        for r in results[s].get("up", [])
        if r["received"] is not None and r["received"] < r["spans"]
    ]
    if incomplete:
        lines += ["", "spans missing at the sink after a flush: " + "; ".join(incomplete)]
    print("\n".join(lines))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    path = out / f"tracing-sdk-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"versions": versions, "results": results}, indent=1))
    print(f"\nraw figures: {path}")


if __name__ == "__main__":
    main()

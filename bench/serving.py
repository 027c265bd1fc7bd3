"""Model serving side by side in one run: passerelle, ``mlflow models serve`` and the floor.

    uv run python bench/serving.py                        # full run (about 10-14 min)
    uv run python bench/serving.py --duration 3 --servers passerelle,floor    # a quick look
    uv run python bench/serving.py --profile              # also profile passerelle with py-spy

One scikit-learn model (``LogisticRegression`` on 20 numeric features, trained here on
``make_classification(5000, 20, n_informative=10, random_state=0)``) behind each server, all
started at once on free loopback ports, each in its own process group:

- ``passerelle``: ``passerelle server`` (one uvicorn worker), the model logged with
  ``psl.log_model`` (signature from an input example), registered with ``psl.register_model`` and
  deployed to the endpoint ``bench``; ``POST /v1/endpoints/bench/predict`` with
  ``{"inputs": [records]}``. The inference log is on (it always is): every prediction is spooled
  before its answer leaves, and compacted into Parquet in the background.
- ``passerelle-w2``: the same with ``passerelle server --workers 2``, when the CLI has that flag.
- ``mlflow``: ``mlflow models serve --env-manager local`` with its defaults, from a throwaway
  virtual environment (``/tmp/passerelle-bench/mlflow-venv``, mlflow 3.17.2, created when
  missing); the same fitted estimator logged with ``mlflow.sklearn.log_model`` and an input
  example (so MLflow enforces its signature, as for a typical user); ``POST /invocations`` with
  ``{"dataframe_split": ...}``.
- ``floor``: ``bench/serving_floor.py`` on one uvicorn worker: orjson, ``predict``, nothing else;
  the very bodies passerelle gets. ``floor-w2nd``: two workers with TCP_NODELAY set per connection.

Before any load, each server must return the same predictions as the estimator in process for
the one-row and the 100-row payloads (same rows everywhere). Then, for each payload and each
concurrency (1, 8, 32), every server in turn (the order rotates from cell to cell, so servers
measured back to back share the machine's load of the moment; idle servers cost nothing): wait
until the server is idle and the machine quiet (a few seconds at most), warm up, and run
``wrk -t1 -cN --latency`` with a Lua script posting the body (a Python asyncio load generator in
a separate process when wrk is missing). Every timed window records the server's CPU (its whole
process group) per request, including the work it finishes after the window (compacting the
inference log of the window's requests), the load generator's CPU, and ``foreign_cores``: the
cores other processes used meanwhile; read wall-clock figures together with it.

Prints a Markdown table, the ratios against the targets (passerelle at least 5x MLflow's
throughput and at least half the floor's at concurrency 32) and whether the inference log holds
every prediction answered; raw figures go to ``bench/results/serving-<timestamp>.json``.
With ``--profile``, passerelle (one worker) is also sampled by py-spy at concurrency 32 and the
samples are summarised by stage of the request (folded stacks are kept next to the results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import (  # noqa: E402
    Window,
    clean_env,
    ensure_venv,
    free_port,
    pgid_cpu_s,
    pid_cpu_s,
    stop_group,
    wait_http,
    wait_quiet,
)

MLFLOW_VERSION = "3.17.2"
SCRATCH = Path("/tmp/passerelle-bench")
VENV = SCRATCH / "mlflow-venv"
RESULTS = HERE / "results"

ENDPOINT = "bench"
COLUMNS = [f"f{i}" for i in range(20)]
SERVERS = ("passerelle", "passerelle-w2", "mlflow", "floor", "floor-w2nd")
LOCAL_PACKAGES = ["passerelle", "scikit-learn", "numpy", "pandas", "pyarrow", "fastapi",
                  "starlette", "uvicorn", "orjson", "pydantic", "uvloop", "httptools"]  # fmt: skip
TARGETS = {"mlflow": 5.0, "floor": 0.5}  # passerelle's throughput at c=32, as a multiple
WRK_LUA = """-- POST the file named by $WRK_BODY
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- the model and the payloads ------------------------------------------------------------------
def prepare(work: Path) -> dict[str, Any]:
    """Train the model, pickle it, write the payloads and the answers expected for them."""
    import pickle

    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(X, columns=COLUMNS)
    model = LogisticRegression(max_iter=1000).fit(frame, y)
    with open(work / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    frame.iloc[:5].to_json(work / "example.json", orient="split")

    rng = np.random.default_rng(1)
    payloads: dict[str, Any] = {}
    for n in (1, 100):
        rows = rng.normal(size=(n, 20)).round(6)
        records = [dict(zip(COLUMNS, map(float, r), strict=True)) for r in rows]
        (work / f"records-{n}.json").write_bytes(json.dumps({"inputs": records}).encode())
        split = {"dataframe_split": {"columns": COLUMNS, "data": rows.tolist()}}
        (work / f"split-{n}.json").write_bytes(json.dumps(split).encode())
        expected = model.predict(pd.DataFrame(rows, columns=COLUMNS)).tolist()
        payloads[str(n)] = {
            "expected": expected,
            "records_bytes": (work / f"records-{n}.json").stat().st_size,
            "split_bytes": (work / f"split-{n}.json").stat().st_size,
        }
    (work / "post.lua").write_text(WRK_LUA)
    return payloads


def mlflow_prepare(work: Path) -> None:
    """(Run by the MLflow environment's Python.) Log the same estimator; write its URI."""
    import pickle

    import mlflow
    import mlflow.sklearn
    import pandas as pd

    with open(work / "model.pkl", "rb") as fh:
        model = pickle.load(fh)
    example = pd.read_json(work / "example.json", orient="split")
    mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow/mlflow.db")
    exp = mlflow.create_experiment("serving-bench", artifact_location=f"{work}/mlflow/artifacts")
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.sklearn.log_model(model, name="model", input_example=example)
    (work / "mlflow" / "model_uri.txt").write_text(info.model_uri)
    print(json.dumps({"model_uri": info.model_uri, "signature": str(info.signature)}))


def passerelle_deploy(url: str, work: Path) -> dict[str, Any]:
    """Log, register and deploy the estimator through the SDK and the REST API."""
    import pickle

    import pandas as pd

    import passerelle as psl
    from passerelle import Client

    with open(work / "model.pkl", "rb") as fh:
        model = pickle.load(fh)
    example = pd.read_json(work / "example.json", orient="split")
    client = Client(url=url)
    with psl.start_run(experiment="serving-bench", client=client, capture_lineage=False):
        uri = psl.log_model(model, input_example=example)
    version = psl.register_model(uri, ENDPOINT, client=client)
    deployed = client.request(
        "POST",
        f"/api/v1/endpoints/{ENDPOINT}/deployments",
        json={"action": "deploy", "version": version.version, "reason": "serving benchmark"},
    )
    client.close()
    return {"model_uri": uri, "version": version.version, "endpoint": deployed}


# -- servers ------------------------------------------------------------------------------------
class Server:
    """A server in its own process group (its PGID is its PID), stopped by that group."""

    def __init__(self, name: str, cmd: list[Any], env: dict[str, str], health: str, logfile: Path):
        self.name = name
        self.cmd = [str(c) for c in cmd]
        self.logfile = logfile
        self.log = open(logfile, "w")  # noqa: SIM115 - closed in stop()
        log(f"starting {name}: {' '.join(self.cmd)}")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=logfile.parent,
            start_new_session=True,
        )
        self.pgid = self.proc.pid
        try:
            wait_http(health, self.proc, timeout=240)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{name} did not start: {exc}; see {logfile}") from None
        self.startup_s = time.perf_counter() - t0
        log(f"{name} answers {health} after {self.startup_s:.1f} s")

    def stop(self, grace: float = 20.0) -> None:
        stop_group(self.proc, grace=grace)
        self.log.close()


def passerelle_cli() -> Path | None:
    cli = Path(sys.executable).parent / "passerelle"
    return cli if cli.exists() else None


def passerelle_has_workers() -> bool:
    cli = passerelle_cli()
    if cli is None:
        return False
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    done = subprocess.run(
        [cli, "server", "--help"], capture_output=True, text=True, check=False, env=env
    )
    return done.returncode == 0 and "--workers" in done.stdout


def floor_cmd(port: int, workers: str) -> list[Any]:
    return [sys.executable, "-m", "uvicorn", "serving_floor:app", "--app-dir", HERE,
            "--host", "127.0.0.1", "--port", port, "--workers", workers,
            "--no-access-log", "--log-level", "warning"]  # fmt: skip


def mlflow_cmd(vbin: Path, uri: str, port: int) -> list[Any]:
    return [vbin / "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
            "--host", "127.0.0.1", "-p", port]  # fmt: skip


def server_spec(name: str, port: int, work: Path, mlflow_python: Path | None) -> dict[str, Any]:
    """Command, environment, health URL, predict URL and body kind of one server."""
    base = f"http://127.0.0.1:{port}"
    if name.startswith("passerelle"):
        home = work / f"{name}-home"
        cli = passerelle_cli()
        if cli is not None:
            cmd: list[Any] = [cli, "server", "--host", "127.0.0.1", "--port", port, "--home", home]
        else:  # no CLI in this checkout: the same app on uvicorn
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "_util:make_app", "--app-dir",
                   HERE, "--host", "127.0.0.1", "--port", port, "--workers", "1"]  # fmt: skip
        if name == "passerelle-w2":
            cmd += ["--workers", "2"]
        return {
            "cmd": cmd,
            "env": clean_env(PASSERELLE_HOME=str(home)),
            "health": f"{base}/healthz",
            "url": f"{base}/v1/endpoints/{ENDPOINT}/predict",
            "body": "records",
            "logfile": work / f"{name}.log",
        }
    if name == "mlflow":
        assert mlflow_python is not None
        vbin = mlflow_python.parent
        uri = (work / "mlflow" / "model_uri.txt").read_text().strip()
        env = clean_env(MLFLOW_TRACKING_URI=f"sqlite:///{work}/mlflow/mlflow.db")
        env["PATH"] = f"{vbin}{os.pathsep}{env.get('PATH', '')}"  # it shells out to uvicorn
        return {
            "cmd": mlflow_cmd(vbin, uri, port),
            "env": env,
            "health": f"{base}/ping",
            "url": f"{base}/invocations",
            "body": "split",
            "logfile": work / "mlflow" / "serve.log",
        }
    workers = "2" if name.startswith("floor-w2") else "1"
    env = clean_env(FLOOR_MODEL=str(work / "model.pkl"))
    if name == "floor-w2nd":
        env["FLOOR_NODELAY"] = "1"
    return {
        "cmd": floor_cmd(port, workers),
        "env": env,
        "health": f"{base}/ping",
        "url": f"{base}/predict",
        "body": "records",
        "logfile": work / f"{name}.log",
    }


def post_json(url: str, body: bytes, timeout: float = 60.0) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def check_answers(spec: dict[str, Any], work: Path, payloads: dict[str, Any]) -> dict[str, Any]:
    """The server must answer each payload with the estimator's own predictions."""
    out: dict[str, Any] = {}
    for n, p in payloads.items():
        body = (work / f"{spec['body']}-{n}.json").read_bytes()
        status, answer = post_json(spec["url"], body)
        if status != 200:
            raise RuntimeError(f"{n}-row payload: HTTP {status}: {str(answer)[:500]}")
        got = answer["predictions"]
        if got != p["expected"]:
            raise RuntimeError(f"{n}-row payload: predictions {got[:10]} != {p['expected'][:10]}")
        out[n] = {"status": status, "predictions_match": True, "keys": sorted(answer)}
    return out


# -- load generation ----------------------------------------------------------------------------
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(token: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", token)
    if m is None:
        raise ValueError(f"unreadable wrk latency {token!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    r: dict[str, Any] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
    }
    for p in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        r[f"p{p}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    r["socket_errors"] = m.group(1).strip() if m else ""
    return r


def run_load(url: str, body: Path, conc: int, duration: float, lua: Path) -> dict[str, Any]:
    """One closed-loop load run: ``conc`` keep-alive connections for ``duration`` seconds."""
    wrk = shutil.which("wrk")
    if wrk:
        cmd = [wrk, "-t1", f"-c{conc}", f"-d{duration:g}s", "--latency", "--timeout", "10s",
               "-s", lua, url]  # fmt: skip
        done = subprocess.run(
            [str(c) for c in cmd],
            env=dict(os.environ, WRK_BODY=str(body)),
            capture_output=True,
            text=True,
            check=True,
        )
        return {**parse_wrk(done.stdout), "generator": "wrk"}
    cmd = [sys.executable, __file__, "--loadgen", url, "--loadgen-body", body,
           "--loadgen-conc", conc, "--loadgen-duration", duration]  # fmt: skip
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout), "generator": "python-asyncio"}


async def _loadgen(url: str, body: bytes, conc: int, duration: float) -> dict[str, Any]:
    """A minimal HTTP/1.1 keep-alive load generator (used only when wrk is missing)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    errors = 0
    stop_at = time.perf_counter() + duration

    async def one_connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                writer.write(request)
                header = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", header)
                if m is None:
                    errors += 1  # chunked answers are not expected from these servers
                    return
                await reader.readexactly(int(m.group(1)))
                latencies.append(time.perf_counter() - t0)
                codes[int(header[9:12])] += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(conc)))
    wall = time.perf_counter() - t0
    latencies.sort()

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3

    return {
        "rps": len(latencies) / wall,
        "requests": len(latencies),
        "p50_ms": pct(0.50),
        "p75_ms": pct(0.75),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "non2xx": sum(v for k, v in codes.items() if not 200 <= k < 400),
        "socket_errors": f"other {errors}" if errors else "",
    }


def drain(pgid: int, idle_cores: float = 0.05, sample_s: float = 0.5, max_s: float = 60.0) -> dict:
    """Wait until the server is idle (work it deferred, such as log compaction, is done)."""
    t0, c0 = time.perf_counter(), pgid_cpu_s([pgid])
    while time.perf_counter() - t0 < max_s:
        before = pgid_cpu_s([pgid])
        time.sleep(sample_s)
        if (pgid_cpu_s([pgid]) - before) / sample_s <= idle_cores:
            break
    return {"drain_s": time.perf_counter() - t0, "drain_cpu_s": pgid_cpu_s([pgid]) - c0}


def measure(
    server: Server,
    spec: dict[str, Any],
    work: Path,
    rows: int,
    conc: int,
    args: argparse.Namespace,
    others: list[int],
) -> dict[str, Any]:
    """One cell. The server is idle before the timed window, and the work it defers past the
    window (compacting the inference log of the window's requests) is waited for and counted in
    its CPU per request."""
    body = work / f"{spec['body']}-{rows}.json"
    lua = work / "post.lua"
    drain(server.pgid)
    quiet = wait_quiet(
        [server.pgid], others, threshold_cores=args.quiet, max_wait_s=args.quiet_wait
    )
    warm = run_load(spec["url"], body, conc, args.warmup, lua)  # untimed
    drain(server.pgid)
    before = pid_cpu_s(server.pgid)
    with Window([server.pgid], others, children=True) as w:
        r = run_load(spec["url"], body, conc, args.duration, lua)
    after = pid_cpu_s(server.pgid)
    deferred = drain(server.pgid)
    per_process = sorted((after.get(p, 0.0) - before.get(p, 0.0) for p in after), reverse=True)
    r.update(w.as_dict())
    r.update(quiet)
    r.update(deferred)
    n = r["requests"] or 1
    r.update(
        rows=rows,
        conc=conc,
        warmup_requests=warm["requests"],
        window_cpu_ms_per_req=w.server_cpu_s / n * 1e3,
        server_cpu_ms_per_req=(w.server_cpu_s + deferred["drain_cpu_s"]) / n * 1e3,
        client_cores=w.client_cpu_s / w.wall_s,
        process_cpu_s=[round(x, 3) for x in per_process if x > 0],
    )
    return r


def start_server(
    name: str, work: Path, payloads: dict[str, Any], mlflow_python: Any
) -> tuple[Server | None, dict[str, Any], dict[str, Any]]:
    """Start one server and check its answers; (server or None, spec, result record)."""
    spec = server_spec(name, free_port(), work, mlflow_python)
    res: dict[str, Any] = {"cmd": " ".join(str(c) for c in spec["cmd"]), "runs": []}
    try:
        server = Server(name, spec["cmd"], spec["env"], spec["health"], spec["logfile"])
    except RuntimeError as exc:
        log(str(exc))
        res["error"] = str(exc)
        return None, spec, res
    res["startup_s"] = server.startup_s
    try:
        if name.startswith("passerelle"):
            readyz = spec["health"].replace("/healthz", "/readyz")
            wait_http(readyz, server.proc, timeout=120)
        res["check"] = check_answers(spec, work, payloads)
    except (RuntimeError, KeyError, OSError) as exc:
        res["error"] = f"answers differ from the estimator's: {exc}"
        log(f"{name}: {res['error']}")
        stop_server(name, server, res)
        return None, spec, res
    log(f"{name}: same predictions as the estimator in process for 1 and 100 rows")
    return server, spec, res


def stop_server(name: str, server: Server, res: dict[str, Any]) -> None:
    log(f"stopping {name} (process group {server.pgid})")
    t0 = time.perf_counter()
    server.stop(grace=180 if name.startswith("passerelle") else 30)
    res["stop_s"] = time.perf_counter() - t0


def say_cell(name: str, r: dict[str, Any]) -> None:
    spread = ""
    if len(r["process_cpu_s"]) > 1:
        spread = " per process " + "/".join(f"{x:.1f}" for x in r["process_cpu_s"][:3])
    log(
        f"{name} rows={r['rows']} c={r['conc']}: {r['rps']:,.0f} req/s, p50 "
        f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, server "
        f"{r['server_cpu_ms_per_req']:.2f} ms CPU/req "
        f"({r['window_cpu_ms_per_req']:.2f} in the window, {r['drain_s']:.1f} s to "
        f"settle){spread}, client {r['client_cores']:.2f} cores, foreign "
        f"{r['foreign_cores']:.2f} cores, non-2xx {r['non2xx']} {r['socket_errors']}"
    )


# -- the inference log ---------------------------------------------------------------------------
def logged_predictions(home: Path) -> dict[str, int]:
    """Rows of the endpoint in the compacted Parquet parts (those a merge holds counted once,
    as the server reads them), and lines still in spool files."""
    from passerelle.core.store import ObjectStore
    from passerelle.serving.log_parts import live_parts

    store = ObjectStore(str(home / "artifacts"), spool_dir=Path(tempfile.mkdtemp()))
    parts = live_parts(store, f"inference/endpoint={ENDPOINT}/")
    compacted = sum(store.read_named_footer(key).num_rows for key in parts)
    spooled = 0
    for path in (home / "spool" / "inference").glob("*"):
        if path.suffix in (".spool", ".sealed"):
            with open(path, "rb") as fh:
                spooled += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    return {"compacted": compacted, "spooled": spooled, "parts": len(parts)}


# -- profiling ----------------------------------------------------------------------------------
# (stage, pattern): the innermost frame of a sample matching a pattern names its stage; patterns
# are tried in this order on each frame, from the innermost frame outwards.
STAGES: list[tuple[str, str]] = [
    ("model predict (scikit-learn)", r"\(sklearn/"),
    ("to_pandas (Arrow -> DataFrame)", r"to_pandas|pandas_compat|\(pandas/"),
    ("records -> Arrow table (to_table)", r"^(to_table|_as_records) |from_pylist"),
    ("signature check (validate_input)", r"^(validate_input|_kind) "),
    ("spool write (inference log)", r"\(passerelle/core/spool\.py"),
    (
        "log records + prediction ids",
        r"^ServingRuntime\.predict_many[ .]|new_prediction_id|token_hex",
    ),
    ("metrics", r"prometheus|metrics\.py"),
    ("auth dependency (get_principal)", r"get_principal|presented_key|\(passerelle/core/auth\.py"),
    ("endpoint config + routing", r"^ServingRuntime\.|\(passerelle/serving/routing\.py"),
    ("micro-batcher (queue, futures)", r"\(passerelle/serving/batching\.py|asyncio/queues\.py"),
    ("body read + JSON parse (orjson)", r"^_inputs |^Request\.(body|stream) "),
    ("response (orjson, headers)", r"ORJSONResponse|json_response|\(starlette/responses\.py"),
    ("body-limit middleware", r"BodyLimitMiddleware|_nul_in"),
    (
        "thread hops (anyio, run_in_threadpool)",
        r"\(anyio/|run_in_threadpool|\(concurrent/|\(threading\.py|\(queue\.py",
    ),
    (
        "FastAPI dependencies + validation",
        r"solve_dependencies|\(fastapi/dependencies|\(pydantic|_validate|serialize_response",
    ),
    ("routing (Starlette/FastAPI)", r"\(starlette/routing\.py|\(fastapi/routing\.py"),
    ("other Starlette/FastAPI layers", r"\(starlette/|\(fastapi/|_exception_handler"),
    ("uvicorn access log", r"\(logging/|AccessFormatter|\(uvicorn/logging\.py"),
    ("HTTP protocol (uvicorn h11)", r"\(h11/|\(uvicorn/"),
    ("event loop + sockets (asyncio)", r"\(asyncio/|\(selectors\.py|\(socket\.py"),
]
COMPACTION = "log compaction (background thread)"


def stage_of(stack: list[str]) -> str:
    if "log-compaction" in stack[0]:
        return COMPACTION
    for frame in reversed(stack[1:]):
        for stage, pattern in STAGES:
            if re.search(pattern, frame):
                return stage
    return "other"


def summarise_folded(path: Path) -> dict[str, Any]:
    """Share of samples by stage (innermost matching frame) and the top self-time frames."""
    stages: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        threads[frames[0] if frames[0].startswith(("thread", "process")) else "?"] += count
        stages[stage_of(frames)] += count
        leaves[frames[-1]] += count
    share = {k: round(v / total, 4) for k, v in stages.most_common()} if total else {}
    top = [(f, round(c / total, 4)) for f, c in leaves.most_common(25)] if total else []
    return {"samples": total, "stages": share, "top_self": top}


def profile_passerelle(
    server: Server, spec: dict[str, Any], work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """py-spy on the passerelle process at c=32, for each payload; folded stacks kept."""
    spy = shutil.which("py-spy")
    prefix: list[str] = [spy] if spy else []
    if not prefix and shutil.which("uvx"):
        prefix = ["uvx", "py-spy"]
    if not prefix:
        return {"error": "py-spy not found (uvx py-spy, or pip install py-spy)"}
    out: dict[str, Any] = {}
    RESULTS.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        folded = RESULTS / f"serving-profile-{args.stamp}-rows{rows}.txt"
        body = work / f"{spec['body']}-{rows}.json"
        # py-spy samples for longer than the load runs, so it never stops short of it
        spy_cmd = [*prefix, "record", "--pid", str(server.pgid), "--duration",
                   str(int(args.profile_duration) + 2), "--rate", "250", "--gil",
                   "--format", "raw", "--threads", "-o", str(folded)]  # fmt: skip
        log(f"profiling passerelle rows={rows} c=32: {' '.join(spy_cmd)}")
        drain(server.pgid)  # no compaction left over from earlier cells in the samples
        spy_proc = subprocess.Popen(spy_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1.0)
        load = run_load(spec["url"], body, 32, args.profile_duration, work / "post.lua")
        spy_out, _ = spy_proc.communicate(timeout=120)
        if spy_proc.returncode != 0 or not folded.exists():
            out[str(rows)] = {"error": spy_out.decode(errors="replace")[-1000:]}
            continue
        summary = summarise_folded(folded)
        summary.update(
            rps_under_profiler=load["rps"],
            requests=load["requests"],
            folded=str(folded.relative_to(HERE.parent)),
        )
        out[str(rows)] = summary
        log(f"profile rows={rows}: {summary['samples']} samples; stages {summary['stages']}")
    return out


# -- report -------------------------------------------------------------------------------------
def _cell(res: dict[str, Any], rows: int, conc: int) -> dict[str, Any] | None:
    for r in res.get("runs", []):
        if r["rows"] == rows and r["conc"] == conc:
            return r
    return None


def render(results: dict[str, Any]) -> str:
    servers = results["servers"]
    row_sizes = results["meta"]["rows"]
    lines = [
        "| server | rows | conc | req/s | predictions/s | p50 ms | p99 ms | server CPU ms/req "
        "(deferred work incl.) | load-gen cores | foreign cores | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in servers.items():
        if "error" in res:
            lines.append(f"| {name} | | | {res['error'][:120]} | | | | | | | |")
            continue
        for r in res["runs"]:
            lines.append(
                f"| {name} | {r['rows']} | {r['conc']} | {r['rps']:,.0f} | "
                f"{r['rps'] * r['rows']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['server_cpu_ms_per_req']:.2f} | {r['client_cores']:.2f} | "
                f"{r['foreign_cores']:.2f} | {r['non2xx']} |"
            )

    def ratio(a: str, b: str, rows: int, conc: int, cpu: bool) -> float | None:
        ra, rb = _cell(servers.get(a, {}), rows, conc), _cell(servers.get(b, {}), rows, conc)
        if not ra or not rb:
            return None
        if cpu:  # requests per CPU-second: the ratio on otherwise idle cores
            x, y = ra["server_cpu_ms_per_req"], rb["server_cpu_ms_per_req"]
            return y / x if x else None
        return ra["rps"] / rb["rps"] if rb["rps"] else None

    lines += [
        "",
        "| ratio | rows | req/s c=1 | req/s c=8 | req/s c=32 | target at c=32 | "
        "req per CPU-s c=1 | c=8 | c=32 |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    pairs = [
        ("passerelle", "mlflow", TARGETS["mlflow"]),
        ("passerelle", "floor", TARGETS["floor"]),
        ("passerelle-w2", "mlflow", TARGETS["mlflow"]),
        ("passerelle-w2", "floor-w2nd", TARGETS["floor"]),
        ("passerelle-w2", "passerelle", None),
        ("floor", "mlflow", None),
    ]
    for a, b, target in pairs:
        for rows in row_sizes:
            vals = [ratio(a, b, rows, c, cpu=False) for c in (1, 8, 32)]
            if all(v is None for v in vals):
                continue
            cpu = [ratio(a, b, rows, c, cpu=True) for c in (1, 8, 32)]
            shown = [f"{v:.2f}x" if v is not None else "-" for v in vals]
            shown_cpu = [f"{v:.2f}x" if v is not None else "-" for v in cpu]
            verdict = ""
            if target is not None and vals[2] is not None:
                verdict = f">= {target:g}x: " + ("met" if vals[2] >= target else "NOT met")
            cells = " | ".join([*shown, verdict, *shown_cpu])
            lines.append(f"| {a} / {b} | {rows} | {cells} |")

    notes = []
    for name in ("passerelle-w2", "floor-w2nd"):
        r = _cell(servers.get(name, {}), min(row_sizes), 1)
        if r is not None:
            stalled = r["p50_ms"] > 20
            notes.append(
                f"{name}: p50 at c=1 is {r['p50_ms']:.2f} ms "
                + ("(the ~44 ms Nagle/delayed-ACK stall)" if stalled else "(no Nagle stall)")
            )
    for name, il in results.get("inference_log", {}).items():
        notes.append(
            f"{name} inference log: {il['logged']:,} predictions logged ({il['compacted']:,} "
            f"compacted into {il['parts']} Parquet parts, {il['spooled']:,} still spooled) for "
            f"{il['answered']:,} counted as answered by the load generator "
            + ("(none missing)" if il["logged"] >= il["answered"] else "(MISSING rows)")
        )
    foreign = [r["foreign_cores"] for s in servers.values() for r in s.get("runs", [])]
    if foreign:
        notes.append(
            f"foreign load during timed windows: median {statistics.median(foreign):.2f}, "
            f"max {max(foreign):.2f} cores (of {os.cpu_count()})"
        )
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def report(results: dict[str, Any]) -> str:
    """The whole printed report of one run (``--report FILE`` prints it again)."""
    meta = results["meta"]
    head = (
        f"{meta['generator']}, {meta['duration_s']:g} s per cell after {meta['warmup_s']:g} s of "
        f"warm-up; {meta['machine']}; passerelle {meta['passerelle_commit']}; "
        f"total {meta['total_s']:.0f} s"
    )
    parts = [head, "", render(results)]
    profile = results["servers"].get("passerelle", {}).get("profile")
    if profile:
        for p in profile.values():  # summarised again: the stages may have been refined since
            folded = HERE.parent / p.get("folded", "-")
            if folded.is_file():
                p.update(summarise_folded(folded))
        parts += ["", render_profile(profile)]
    return "\n".join(parts) + "\n"


def render_profile(profile: dict[str, Any]) -> str:
    lines = []
    for rows, p in profile.items():
        if "error" in p:
            lines.append(f"profile rows={rows}: {p['error']}")
            continue
        lines.append(
            f"passerelle, {rows}-row payload, c=32, {p['samples']:,} samples "
            f"({p['rps_under_profiler']:,.0f} req/s under the profiler; {p['folded']}):"
        )
        lines += ["", "| stage | share of samples |", "|---|---:|"]
        lines += [f"| {k} | {v * 100:.1f}% |" for k, v in p["stages"].items()]
        lines += ["", "Innermost frames with the most samples (one frame far above the rest is "
                  "usually a garbage-collector pause charged to the allocation that set it off):",
                  ""]  # fmt: skip
        lines += [f"- {share * 100:.1f}% `{frame}`" for frame, share in p["top_self"][:8]]
        lines.append("")
    return "\n".join(lines)


def versions(python: Path | str, packages: list[str]) -> dict[str, str | None]:
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for p in sys.argv[1:]:\n"
        "    try: out[p] = m.version(p)\n"
        "    except m.PackageNotFoundError: out[p] = None\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run(
        [str(python), "-c", probe, *packages], capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def git_commit() -> str | None:
    """The short commit of the checkout, with ``+dirty`` when ``src/`` has uncommitted changes."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    commit = done.stdout.strip()
    if not commit:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=HERE.parent, capture_output=True,
        text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return f"{commit}+dirty" if dirty else commit


# -- orchestration -------------------------------------------------------------------------------
def orchestrate(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    args.stamp = time.strftime("%Y%m%d-%H%M%S")
    commit = git_commit()  # what is measured: the checkout as the run starts
    names = [s for s in args.servers.split(",") if s]
    unknown = set(names) - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown servers {sorted(unknown)}; choose among {', '.join(SERVERS)}")
    if "passerelle-w2" in names and not passerelle_has_workers():
        log("`passerelle server` has no --workers flag in this checkout: passerelle-w2 skipped")
        names.remove("passerelle-w2")
        skipped = {"passerelle-w2": {"error": "`passerelle server --workers` not available"}}
    else:
        skipped = {}
    if not shutil.which("wrk"):
        log("wrk not found (apt-get install -y wrk): using the Python asyncio load generator")

    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serving-", dir=SCRATCH))
    (work / "mlflow").mkdir()
    log(f"scratch folder: {work}")
    payloads = prepare(work)
    log(
        "model trained; payload bytes: "
        + ", ".join(
            f"{n} rows {p['records_bytes']:,} (records) / {p['split_bytes']:,} (split)"
            for n, p in payloads.items()
        )
    )

    mlflow_python = None
    if "mlflow" in names:
        mlflow_python = ensure_venv(VENV, "mlflow", MLFLOW_VERSION, say=log)
        log("logging the same estimator with mlflow.sklearn.log_model")
        subprocess.run(
            [str(mlflow_python), __file__, "--mlflow-prepare", str(work)],
            check=True,
            env=clean_env(),
            cwd=work,
            stdout=open(work / "mlflow" / "prepare.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )

    results: dict[str, Any] = {"servers": {}}
    live: dict[str, tuple[Server, dict[str, Any]]] = {}
    homes = [n for n in names if n.startswith("passerelle")]
    before: dict[str, dict[str, int]] = {}
    failed = True
    try:
        if homes:
            # log, register and deploy once, through a server of its own; each passerelle
            # variant then serves a copy of that home, so their logs and CPU stay apart
            spec = server_spec("passerelle", free_port(), work, None)
            setup = Server("passerelle (setup)", spec["cmd"], spec["env"], spec["health"],
                           work / "passerelle-setup.log")  # fmt: skip
            try:
                results["passerelle_setup"] = passerelle_deploy(
                    spec["health"].removesuffix("/healthz"), work
                )
            finally:
                setup.stop(grace=60)
            log(f"deployed {results['passerelle_setup']['model_uri']} to endpoint '{ENDPOINT}'")
            for name in homes:
                if name != "passerelle":
                    shutil.copytree(work / "passerelle-home", work / f"{name}-home")
                before[name] = logged_predictions(work / f"{name}-home")
        for name in names:  # all up at once: idle servers cost nothing, and each cell then
            server, spec, res = start_server(name, work, payloads, mlflow_python)
            results["servers"][name] = res
            if server is not None:
                live[name] = (server, spec)
        # ... measures every server back to back, so they share the machine's load of the moment
        cells = [(rows, conc) for rows in args.rows for conc in args.conc]
        order = list(live)
        for i, (rows, conc) in enumerate(cells):
            k = i % len(order) if order else 0
            for name in order[k:] + order[:k]:  # rotated, so no server is always first
                server, spec = live[name]
                others = [s.pgid for n, (s, _) in live.items() if n != name]
                r = measure(server, spec, work, rows, conc, args, others)
                results["servers"][name]["runs"].append(r)
                say_cell(name, r)
        if args.profile and "passerelle" in live:
            server, spec = live["passerelle"]
            results["servers"]["passerelle"]["profile"] = profile_passerelle(
                server, spec, work, args
            )
        failed = False
    finally:
        for name, (server, _) in live.items():
            stop_server(name, server, results["servers"][name])
        if failed:
            log(f"failed: scratch folder kept in {work}")
    results["servers"].update(skipped)

    logs = {}
    for name in homes:
        res = results["servers"].get(name, {})
        if "check" not in res:
            continue
        answered = sum(int(n) for n in res["check"])  # the answer checks
        answered += sum((r["requests"] + r["warmup_requests"]) * r["rows"] for r in res["runs"])
        answered += sum(p.get("requests", 0) * int(n) for n, p in res.get("profile", {}).items())
        after = logged_predictions(work / f"{name}-home")
        logged = sum(after[k] - before[name][k] for k in ("compacted", "spooled"))
        logs[name] = {**after, "logged": logged, "answered": answered}
    if logs:
        results["inference_log"] = logs

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "passerelle_commit": commit,
        "versions": versions(sys.executable, LOCAL_PACKAGES),
        "mlflow_versions": versions(
            mlflow_python, ["mlflow", "scikit-learn", "uvicorn", "fastapi", "pandas"]
        )
        if mlflow_python
        else None,
        "generator": "wrk -t1 -cN --latency --timeout 10s" if shutil.which("wrk") else "asyncio",
        "wrk": (
            subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
            if shutil.which("wrk")
            else None
        ),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rows": args.rows,
        "conc": args.conc,
        "payloads": payloads,
        "model": "LogisticRegression(max_iter=1000) on make_classification(5000, 20, "
        "n_informative=10, random_state=0)",
        "passerelle_settings": "defaults (inference log on, fsync off, max batch 512 rows, "
        "max wait 2 ms, compaction every 2 s)",
        "total_s": None,
    }
    results = {"meta": meta, **results}
    meta["total_s"] = round(time.perf_counter() - t_start, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"serving-{args.stamp}.json"
    raw.write_text(json.dumps(results, indent=1))
    if args.keep:
        log(f"scratch folder kept (server logs, homes, payloads): {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(report(results))
    print(f"raw figures: {raw.relative_to(HERE.parent)}")
    errors = [n for n, s in results["servers"].items() if "error" in s and n not in skipped]
    return 1 if errors else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"among {', '.join(SERVERS)}")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per timed cell")
    ap.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each cell")
    ap.add_argument("--conc", default="1,8,32", help="concurrency levels")
    ap.add_argument("--rows", default="1,100", help="rows per request (1 and/or 100)")
    ap.add_argument("--quiet", type=float, default=0.25, help="foreign cores deemed quiet")
    ap.add_argument(
        "--quiet-wait", type=float, default=6.0, help="longest wait for a quiet machine (s)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (server logs)")
    ap.add_argument("--profile", action="store_true", help="py-spy on passerelle at c=32")
    ap.add_argument("--profile-duration", type=float, default=10.0)
    ap.add_argument("--report", metavar="FILE", help="print the report of a raw JSON file again")
    ap.add_argument("--mlflow-prepare", help=argparse.SUPPRESS)
    ap.add_argument("--loadgen", help=argparse.SUPPRESS)
    ap.add_argument("--loadgen-body", help=argparse.SUPPRESS)
    ap.add_argument("--loadgen-conc", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--loadgen-duration", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return
    if args.mlflow_prepare:
        mlflow_prepare(Path(args.mlflow_prepare))
        return
    if args.loadgen:
        body = Path(args.loadgen_body).read_bytes()
        res = asyncio.run(_loadgen(args.loadgen, body, args.loadgen_conc, args.loadgen_duration))
        print(json.dumps(res))
        return
    args.conc = [int(x) for x in args.conc.split(",")]
    args.rows = [int(x) for x in args.rows.split(",")]
    if not set(args.rows) <= {1, 100}:
        raise SystemExit("--rows takes 1 and/or 100")
    sys.exit(orchestrate(args))


if __name__ == "__main__":
    main()

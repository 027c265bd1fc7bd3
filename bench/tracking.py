"""Experiment tracking, side by side: passerelle against an MLflow tracking server, in one run.

    uv run python bench/tracking.py                 # full run, 10,000 search runs (25-30 min)
    uv run python bench/tracking.py --skip-mlflow   # passerelle only, for quick iteration
    uv run python bench/tracking.py --runs 2000 --reps 5

What it does:

1. Installs ``mlflow==3.17.2`` into a throwaway virtual environment under
   ``/tmp/passerelle-bench/mlflow-venv`` (reused when it already has that version).
2. Starts ``mlflow server`` (SQLite backend, its defaults otherwise) and a passerelle server (one
   uvicorn worker, embedded SQLite store) on free loopback ports, each in its own process group,
   and stops both groups at the end whatever happens.
3. Runs each system's client in a separate process (MLflow's stock client from the virtual
   environment; passerelle's ``Client`` / SDK from this environment) and measures:

   - single calls: 2,000 one-metric requests (``mlflow.log_metric`` / ``Client.log_metric``,
     one synchronous HTTP request each), plus passerelle's SDK ``run.log_metric`` (background
     batching) timed until ``run.end()`` returns, i.e. until every value is stored;
   - batches: 20 requests of 1,000 metrics (``MlflowClient.log_batch`` /
     ``Client.log_metric_batch``);
   - search: the same 10,000 seeded runs (5 params, 5 metrics each) on both sides, then a
     filtered, ordered search returned as a pandas DataFrame: ``--reps`` rounds that alternate
     the two systems, each search in a fresh client process after one untimed warm-up search;
     the median is reported. Both must return the same rows (count and order are checked).

Every timed window records the measured server's CPU (whole process group), the client's CPU and
the CPU other processes used meanwhile (``foreign_cores``); before each window the client waits
(up to 30 s) for foreign load to settle. Raw figures go to ``bench/results/tracking-*.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _util import Window, free_port, stop_group, wait_http, wait_quiet  # noqa: E402

MLFLOW_VERSION = "3.17.2"
SCRATCH = Path("/tmp/passerelle-bench")
VENV = SCRATCH / "mlflow-venv"
RESULTS = HERE / "results"

N_SINGLE = 2000
N_WARMUP = 20
BATCH_SIZE = 1000
N_BATCHES = 20
POPULATE_THREADS = 4
SEARCH_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
SEARCH_ORDER = ["metrics.acc DESC"]
METRIC_KEYS = ("acc", "loss", "f1", "precision", "recall")
TARGETS = {"batch": 10.0, "search": 10.0}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- the seeded search data (identical on both sides) -------------------------------------------
def seed_runs(n: int) -> list[tuple[dict[str, str], dict[str, float]]]:
    rng = random.Random(42)
    out = []
    for i in range(n):
        params = {
            "lr": rng.choice(["0.1", "0.01", "0.001"]),
            "batch_size": str(rng.choice([16, 32, 64, 128])),
            "optimizer": rng.choice(["sgd", "adam", "adamw"]),
            "depth": str(rng.randint(1, 12)),
            "seed": str(i),
        }
        metrics = {k: rng.random() for k in METRIC_KEYS}
        out.append((params, metrics))
    return out


def expected_seeds(specs: list[tuple[dict[str, str], dict[str, float]]]) -> list[str]:
    """The ``seed`` params of the runs the search must return, in order."""
    hits = [(m["acc"], p["seed"]) for p, m in specs if m["acc"] > 0.5 and p["lr"] == "0.01"]
    return [seed for _, seed in sorted(hits, reverse=True)]


def batches_of_metrics() -> list[list[tuple[str, float, int]]]:
    rng = random.Random(7)
    return [
        [(f"bm{j % 10}", rng.random(), b * 100 + j // 10) for j in range(BATCH_SIZE)]
        for b in range(N_BATCHES)
    ]


class Recorder:
    """Timed windows of one client process, with the wait for a quiet machine before each."""

    def __init__(self, system: str, server_pgid: int, other_pgids: list[int]) -> None:
        self.system = system
        self.server = [server_pgid]
        self.ours = other_pgids
        self.res: dict[str, Any] = {"system": system}

    def quiet(self) -> dict[str, float]:
        return wait_quiet(self.server, self.ours)

    def window(self) -> Window:
        return Window(self.server, self.ours)

    def say(self, msg: str) -> None:
        log(f"{self.system}: {msg}")


def populated_marker(work: Path, system: str, n_runs: int) -> Path:
    return work / f"{system}-search-{n_runs}.json"


def populate(rec: Recorder, one: Any, specs: list[Any], threads: int) -> dict[str, Any]:
    """Log every seeded run through ``one(index, spec)`` on a few threads, with progress."""
    counter = itertools.count(1)  # next() on it is atomic under the GIL
    step = max(len(specs) // 10, 1)

    def task(item: tuple[int, Any]) -> None:
        one(*item)
        done = next(counter)
        if done % step == 0:
            rate = done / (time.perf_counter() - t0)
            left = (len(specs) - done) / rate if rate else 0
            rec.say(
                f"populated {done:,}/{len(specs):,} runs ({rate:.0f} runs/s, ~{left:.0f} s left)"
            )

    rec.say(f"populating {len(specs):,} runs with {threads} client threads")
    before = rec.quiet()
    t0 = time.perf_counter()
    with rec.window() as w, ThreadPoolExecutor(threads) as pool:
        list(pool.map(task, enumerate(specs)))
    return {**w.as_dict(), **before, "n_runs": len(specs), "threads": threads}


def time_search(rec: Recorder, search: Any, reps: int) -> None:
    """One warm-up, then ``reps`` timed searches; each returns (rows, seeds of the first rows)."""
    n_rows, _ = search()
    windows = []
    for _ in range(reps):
        before = rec.quiet()
        with rec.window() as w:
            n_rows, top = search()
        windows.append({**w.as_dict(), **before, "rows": n_rows})
    rec.res["search"] = windows
    rec.res["search_rows"] = n_rows
    rec.res["search_top_seeds"] = top
    med = statistics.median(x["wall_s"] for x in windows)
    rec.say(f"search -> DataFrame: {med * 1e3:.1f} ms, {n_rows:,} rows")


# -- MLflow client (runs in the throwaway virtual environment) -----------------------------------
def mlflow_client(args: argparse.Namespace, rec: Recorder) -> None:
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(args.url)
    client = MlflowClient(args.url)
    rec.res["client_version"] = mlflow.__version__
    marker = populated_marker(Path(args.work), "mlflow", args.runs)
    if args.phase == "search":
        search_exp = json.loads(marker.read_text())["experiment_id"]

        def search() -> tuple[int, list[str]]:
            df = mlflow.search_runs(
                experiment_ids=[search_exp], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER
            )
            return len(df), [str(s) for s in df["params.seed"].head(10)] if len(df) else []

        time_search(rec, search, args.reps)
        return

    exp_id = client.create_experiment(f"bench-{time.time_ns()}")
    mlflow.set_experiment(experiment_id=exp_id)

    # a. single calls
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        for i in range(N_WARMUP):
            mlflow.log_metric("warmup", 1.0, step=i)
        rec.say(f"{N_SINGLE:,} x mlflow.log_metric (one request each)")
        before = rec.quiet()
        with rec.window() as w:
            for i in range(N_SINGLE):
                mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        rec.res["single"] = {**w.as_dict(), **before, "n": N_SINGLE}
        rec.say(f"single calls: {N_SINGLE / w.wall_s:,.1f} metrics/s")

        # b. batches of 1,000
        ts = int(time.time() * 1000)
        batches = [[Metric(k, v, ts, s) for k, v, s in b] for b in batches_of_metrics()]
        rec.say(f"{N_BATCHES} x MlflowClient.log_batch({BATCH_SIZE:,} metrics)")
        before = rec.quiet()
        with rec.window() as w:
            for batch in batches:
                client.log_batch(run_id, metrics=batch)
        rec.res["batch"] = {**w.as_dict(), **before, "n_calls": N_BATCHES}
        rec.res["batch"]["n_metrics"] = N_BATCHES * BATCH_SIZE
        rec.say(f"batches: {N_BATCHES * BATCH_SIZE / w.wall_s:,.0f} metrics/s")

    # c. the runs to search
    if marker.exists():
        search_exp = json.loads(marker.read_text())["experiment_id"]
        rec.say(f"reusing the {args.runs:,} runs populated earlier in experiment {search_exp}")
        rec.res["populate"] = {"reused": True, "n_runs": args.runs}
    else:
        search_exp = client.create_experiment(f"search-{args.runs}-{time.time_ns()}")

        def one(_: int, spec: tuple[dict[str, str], dict[str, float]]) -> None:
            params, metrics = spec
            run_id = client.create_run(search_exp).info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )

        rec.res["populate"] = populate(rec, one, seed_runs(args.runs), POPULATE_THREADS)
        marker.write_text(json.dumps({"experiment_id": search_exp}))


# -- passerelle client ---------------------------------------------------------------------------
def passerelle_client(args: argparse.Namespace, rec: Recorder) -> None:
    import passerelle
    from passerelle import Client

    client = Client(url=args.url)
    rec.res["client_version"] = passerelle.__version__
    marker = populated_marker(Path(args.work), "passerelle", args.runs)
    if args.phase == "search":
        search_exp = json.loads(marker.read_text())["experiment"]

        def search() -> tuple[int, list[str]]:
            df = passerelle.search_runs(
                experiment=search_exp, filter=SEARCH_FILTER, order_by=SEARCH_ORDER, client=client
            )
            return len(df), [str(s) for s in df["params.seed"].head(10)] if len(df) else []

        time_search(rec, search, args.reps)
        client.close()
        return

    exp = f"bench-{time.time_ns()}"

    # a. single calls, one REST request each
    run_id = client.create_run(experiment=exp, name="single-calls")["id"]
    for i in range(N_WARMUP):
        client.log_metric(run_id, "warmup", 1.0, step=i)
    rec.say(f"{N_SINGLE:,} x Client.log_metric (one request each)")
    before = rec.quiet()
    with rec.window() as w:
        for i in range(N_SINGLE):
            client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    rec.res["single"] = {**w.as_dict(), **before, "n": N_SINGLE}
    rec.say(f"single calls: {N_SINGLE / w.wall_s:,.1f} metrics/s")

    # a'. the SDK's run.log_metric: background batching, timed until run.end() has returned
    run = passerelle.start_run(experiment=exp, run_name="sdk-batched", client=client)
    rec.say(f"{N_SINGLE:,} x run.log_metric (SDK, batched in the background) + run.end()")
    before = rec.quiet()
    with rec.window() as w:
        for i in range(N_SINGLE):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        run.end()
    stored = len(client.metric_history(run.id, "loss"))
    if stored != N_SINGLE:
        raise RuntimeError(f"the SDK stored {stored} of {N_SINGLE} values")
    rec.res["sdk_batched"] = {**w.as_dict(), **before, "n": N_SINGLE}
    rec.say(f"SDK run.log_metric: {N_SINGLE / w.wall_s:,.0f} metrics/s (all stored)")

    # b. batches of 1,000
    ts = int(time.time() * 1000)
    batches = [
        [{"key": k, "value": v, "step": s, "timestamp": ts} for k, v, s in b]
        for b in batches_of_metrics()
    ]
    rec.say(f"{N_BATCHES} x Client.log_metric_batch({BATCH_SIZE:,} metrics)")
    before = rec.quiet()
    with rec.window() as w:
        for batch in batches:
            client.log_metric_batch(run_id, batch)
    rec.res["batch"] = {**w.as_dict(), **before, "n_calls": N_BATCHES}
    rec.res["batch"]["n_metrics"] = N_BATCHES * BATCH_SIZE
    rec.say(f"batches: {N_BATCHES * BATCH_SIZE / w.wall_s:,.0f} metrics/s")

    # c. the runs to search
    if marker.exists():
        search_exp = json.loads(marker.read_text())["experiment"]
        rec.say(f"reusing the {args.runs:,} runs populated earlier in experiment {search_exp}")
        rec.res["populate"] = {"reused": True, "n_runs": args.runs}
    else:
        search_exp = f"search-{args.runs}-{time.time_ns()}"
        client.create_experiment(search_exp)

        def one(i: int, spec: tuple[dict[str, str], dict[str, float]]) -> None:
            params, metrics = spec
            rid = client.create_run(experiment=search_exp, name=f"run-{i}")["id"]
            client.log_params(rid, params)
            client.log_metric_batch(rid, [{"key": k, "value": v} for k, v in metrics.items()])

        rec.res["populate"] = populate(rec, one, seed_runs(args.runs), POPULATE_THREADS)
        marker.write_text(json.dumps({"experiment": search_exp}))
    client.close()


def client_main(args: argparse.Namespace) -> None:
    rec = Recorder(args.client, args.server_pgid, args.other_pgid or [])
    (mlflow_client if args.client == "mlflow" else passerelle_client)(args, rec)
    Path(args.out).write_text(json.dumps(rec.res, indent=1))


# -- orchestration -------------------------------------------------------------------------------
def venv_mlflow_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    probe = "import importlib.metadata as m; print(m.version('mlflow'))"
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_mlflow_venv() -> Path:
    if venv_mlflow_version() == MLFLOW_VERSION:
        log(f"reusing {VENV} (mlflow {MLFLOW_VERSION})")
        return VENV / "bin" / "python"
    if VENV.exists():
        log(f"{VENV} does not hold mlflow {MLFLOW_VERSION}: recreating it")
        shutil.rmtree(VENV)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    python3 = shutil.which("python3") or sys.executable
    log(f"creating {VENV} ({python3} -m venv)")
    subprocess.run([python3, "-m", "venv", str(VENV)], check=True)
    pip_log = SCRATCH / "pip-install.log"
    log(f"installing mlflow=={MLFLOW_VERSION} with pip (1-3 min; log: {pip_log})")
    with open(pip_log, "w") as fh:
        done = subprocess.run(
            [VENV / "bin" / "pip", "install", f"mlflow=={MLFLOW_VERSION}"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0 or venv_mlflow_version() != MLFLOW_VERSION:
        tail = pip_log.read_text()[-2000:]
        raise SystemExit(f"could not install mlflow=={MLFLOW_VERSION}:\n{tail}")
    log(f"mlflow {MLFLOW_VERSION} installed")
    return VENV / "bin" / "python"


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("MLFLOW_")
    }
    env.update(extra)
    return env


class Server:
    """A server started in its own process group (its PGID is its PID)."""

    def __init__(
        self, name: str, cmd: list[Any], env: dict[str, str], url: str, health: str, logfile: Path
    ) -> None:
        self.name = name
        self.url = url
        self.cmd = [str(c) for c in cmd]
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
            wait_http(url + health, self.proc)
        except RuntimeError as exc:
            self.stop()
            raise SystemExit(f"{name} did not start: {exc}; see {logfile}") from None
        self.startup_s = time.perf_counter() - t0
        log(f"{name} answers {url}{health} after {self.startup_s:.1f} s")

    def stop(self) -> None:
        stop_group(self.proc)
        self.log.close()


def passerelle_server_cmd(port: int, mode: str) -> list[str]:
    cli = Path(sys.executable).parent / "passerelle"
    if mode in ("auto", "cli") and cli.exists():
        probe = subprocess.run(
            [cli, "server", "--help"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0 and "--port" in probe.stdout:
            cmd = [str(cli), "server", "--host", "127.0.0.1", "--port", str(port)]
            return [*cmd, "--workers", "1"] if "--workers" in probe.stdout else cmd
        if mode == "cli":
            raise SystemExit("`passerelle server` is not available in this checkout")
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "_util:make_app",
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def run_client(
    system: str,
    server: Server,
    others: list[Server],
    args: argparse.Namespace,
    work: Path,
    phase: str,
    reps: int = 1,
) -> dict[str, Any]:
    """Run one system's client in its own process; it writes its figures to a JSON file."""
    python = VENV / "bin" / "python" if system == "mlflow" else Path(sys.executable)
    out = work / f"{system}-{phase}-{time.time_ns()}.json"
    cmd = [
        str(python), str(Path(__file__).resolve()), "--client", system, "--phase", phase,
        "--url", server.url, "--out", str(out), "--server-pgid", str(server.pgid),
        "--runs", str(args.runs), "--reps", str(reps), "--work", str(work),
    ]  # fmt: skip
    for other in others:
        cmd += ["--other-pgid", str(other.pgid)]
    subprocess.run(cmd, check=True, env=clean_env(), cwd=work)
    res = json.loads(out.read_text())
    res["server_cmd"] = " ".join(server.cmd)
    res["server_startup_s"] = server.startup_s
    return res


def git_commit() -> str | None:
    """The commit the server runs, with ``-dirty`` when the working tree has changes."""
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=7"], cwd=HERE, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    return done.stdout.strip() or None


def orchestrate(args: argparse.Namespace) -> None:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    commit = git_commit()  # before the server starts: the code it runs
    mlflow_python = None if args.skip_mlflow else ensure_mlflow_venv()
    keep = args.work is not None
    work = Path(args.work) if keep else Path(tempfile.mkdtemp(prefix="run-", dir=SCRATCH))
    home, mlflow_dir = work / "passerelle-home", work / "mlflow"
    home.mkdir(parents=True, exist_ok=True)
    mlflow_dir.mkdir(parents=True, exist_ok=True)
    log(f"scratch folder: {work}{' (kept; populated runs are reused)' if keep else ''}")

    mlflow: Server | None = None
    psl: Server | None = None
    results: dict[str, Any] = {}
    failed = True
    try:
        if mlflow_python is not None:
            port = free_port()
            mlflow = Server(
                "mlflow server",
                [
                    mlflow_python.parent / "mlflow", "server",
                    "--backend-store-uri", f"sqlite:///{mlflow_dir}/mlflow.db",
                    "--artifacts-destination", f"{mlflow_dir}/artifacts",
                    "--host", "127.0.0.1", "--port", str(port),
                ],
                clean_env(),
                f"http://127.0.0.1:{port}",
                "/health",
                mlflow_dir / "server.log",
            )  # fmt: skip
        port = free_port()
        psl = Server(
            "passerelle server",
            passerelle_server_cmd(port, args.server),
            clean_env(PASSERELLE_HOME=str(home)),
            f"http://127.0.0.1:{port}",
            "/healthz",
            home / "server.log",
        )
        time.sleep(3)  # let the servers' background workers finish starting

        systems = {"passerelle": psl} | ({"mlflow": mlflow} if mlflow else {})
        for name, server in systems.items():
            log(f"-- {name}: ingestion, then the runs to search --")
            others = [s for s in systems.values() if s is not server]
            results[name] = run_client(name, server, others, args, work, "ingest")
            results[name]["search"] = []
        # Searches alternate between the systems, one process each (warm-up, then one timed
        # search), so that both meet the same load from other processes on a shared machine.
        log(f"-- searches: {args.reps} rounds, alternating the systems --")
        for i in range(args.reps):
            names = list(systems) if i % 2 == 0 else list(reversed(systems))
            for name in names:
                others = [s for s in systems.values() if s is not systems[name]]
                found = run_client(name, systems[name], others, args, work, "search")
                for field in ("search_rows", "search_top_seeds"):
                    results[name][field] = found[field]
                results[name]["search"] += found["search"]
        failed = False
    finally:
        for server in (psl, mlflow):
            if server is not None:
                log(f"stopping {server.name} (process group {server.pgid})")
                server.stop()
        if failed:
            log(f"failed: the scratch folder (server logs, databases) is kept in {work}")
        elif not keep:
            shutil.rmtree(work, ignore_errors=True)

    check_same_rows(results, args.runs)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": f"{platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "passerelle_commit": commit,
        "mlflow": MLFLOW_VERSION if mlflow_python else None,
        "runs": args.runs,
        "reps": args.reps,
        "n_single": N_SINGLE,
        "batch": f"{N_BATCHES} x {BATCH_SIZE}",
        "search": {"filter": SEARCH_FILTER, "order_by": SEARCH_ORDER},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"tracking-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.write_text(json.dumps({"meta": meta, **results}, indent=1))
    print()
    print(render_table(results, args.runs))
    print()
    print(f"raw figures: {raw.relative_to(HERE.parent)}")


def check_same_rows(results: dict[str, Any], n_runs: int) -> None:
    want = expected_seeds(seed_runs(n_runs))
    for system, res in results.items():
        if res["search_rows"] != len(want):
            raise AssertionError(
                f"{system} returned {res['search_rows']} rows; the seeded data has {len(want)}"
            )
        if res["search_top_seeds"] != want[: len(res["search_top_seeds"])]:
            raise AssertionError(f"{system} returned the rows in another order")
    if "mlflow" in results:
        assert results["mlflow"]["search_rows"] == results["passerelle"]["search_rows"]


# -- the table -----------------------------------------------------------------------------------
def render_table(results: dict[str, Any], n_runs: int) -> str:
    p = results["passerelle"]
    m = results.get("mlflow")

    def med(res: dict[str, Any] | None, field: str) -> float | None:
        if res is None:
            return None
        return statistics.median(x[field] for x in res["search"])

    def rate(res: dict[str, Any] | None, key: str, n: str) -> float | None:
        if res is None or key not in res:
            return None
        return res[key][n] / res[key]["wall_s"]

    def per(res: dict[str, Any] | None, key: str, field: str, n: str, scale: float) -> Any:
        if res is None or key not in res:
            return None
        return res[key][field] / res[key][n] * scale

    pop_p, pop_m = p["populate"], (m or {}).get("populate", {})

    def pop_rate(pop: dict[str, Any]) -> float | None:
        return pop["n_runs"] / pop["wall_s"] if "wall_s" in pop else None

    single = "`mlflow.log_metric` / `Client.log_metric`"
    batch = f"batches of {BATCH_SIZE:,}"
    search = f"search over {n_runs:,} runs -> DataFrame"
    # (label, MLflow, passerelle, kind, target); kind "up": more is better, "down": less is
    rows: list[tuple[str, Any, Any, str, str]] = [
        (f"single calls ({single}): metrics/s", rate(m, "single", "n"), rate(p, "single", "n"),
         "up", ""),
        ("single calls: wall ms per call", per(m, "single", "wall_s", "n", 1e3),
         per(p, "single", "wall_s", "n", 1e3), "down", ""),
        ("single calls: server CPU ms per call", per(m, "single", "server_cpu_s", "n", 1e3),
         per(p, "single", "server_cpu_s", "n", 1e3), "down", ""),
        ("SDK `run.log_metric` (background batching) until `run.end()`: metrics/s, "
         "vs `mlflow.log_metric`", rate(m, "single", "n"), rate(p, "sdk_batched", "n"), "up", ""),
        (f"{batch} (`log_batch` / `log_metric_batch`): metrics/s", rate(m, "batch", "n_metrics"),
         rate(p, "batch", "n_metrics"), "up", f">= {TARGETS['batch']:.0f}x"),
        (f"{batch}: server CPU ms per batch", per(m, "batch", "server_cpu_s", "n_calls", 1e3),
         per(p, "batch", "server_cpu_s", "n_calls", 1e3), "down", ""),
        (f"populate {n_runs:,} runs (5 params + 5 metrics, {POPULATE_THREADS} threads): runs/s",
         pop_rate(pop_m), pop_rate(pop_p), "up", ""),
        (f"{search}: median ms", _ms(med(m, "wall_s")), _ms(med(p, "wall_s")), "down",
         f">= {TARGETS['search']:.0f}x"),
        ("search: server CPU ms per search", _ms(med(m, "server_cpu_s")),
         _ms(med(p, "server_cpu_s")), "down", ""),
        ("search: rows returned (same seeded data)", m["search_rows"] if m else None,
         p["search_rows"], "same", ""),
    ]  # fmt: skip
    lines = [
        "| measurement | MLflow | passerelle | passerelle vs MLflow | target |",
        "|---|---:|---:|---:|---|",
    ]
    for label, mv, pv, kind, target in rows:
        ratio = None
        if isinstance(mv, int | float) and isinstance(pv, int | float) and mv and pv:
            ratio = pv / mv if kind == "up" else mv / pv if kind == "down" else None
        ratio_text = f"{ratio:,.1f}x" if ratio is not None else ""
        if target and ratio is not None:
            need = float(target.split()[1].rstrip("x"))
            target += " (met)" if ratio >= need else " (NOT met)"
        lines.append(f"| {label} | {_fmt(mv)} | {_fmt(pv)} | {ratio_text} | {target} |")

    def foreign(res: dict[str, Any] | None) -> str:
        if res is None:
            return "-"
        vals = [res[k]["foreign_cores"] for k in ("single", "batch") if k in res]
        vals += [x["foreign_cores"] for x in res["search"]]
        return f"{max(vals):.2f}"

    lines.append("")
    lines.append(
        "Ratios: throughput passerelle/MLflow, times MLflow/passerelle (>1 favours passerelle). "
        f"Most cores used by other processes during a timed window: MLflow {foreign(m)}, "
        f"passerelle {foreign(p)}."
    )
    return "\n".join(lines)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10_000, help="runs seeded for the search")
    ap.add_argument("--reps", type=int, default=5, help="timed searches per system (rounds)")
    ap.add_argument("--skip-mlflow", action="store_true", help="measure passerelle only")
    ap.add_argument("--work", help="scratch folder to keep and reuse (populated runs are reused)")
    ap.add_argument(
        "--server",
        choices=("auto", "cli", "uvicorn"),
        default="auto",
        help="start passerelle with `passerelle server` (cli), with uvicorn on an "
        "app factory, or the CLI when it exists (auto)",
    )
    ap.add_argument("--client", choices=("mlflow", "passerelle"), help=argparse.SUPPRESS)
    ap.add_argument("--phase", choices=("ingest", "search"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--server-pgid", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--other-pgid", type=int, action="append", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client_main(args)
        return
    orchestrate(args)


if __name__ == "__main__":
    main()

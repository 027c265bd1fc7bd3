"""Many clients at once against a real server: no request fails for another's sake."""

from __future__ import annotations

import threading

import httpx


def test_concurrent_clients_on_a_live_server(live_server):
    errors: list[str] = []
    created: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def client_work(worker: int) -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            start.wait()
            for i in range(8):
                # every worker races to create the same experiments on first use
                resp = http.post("/api/v1/runs", json={"experiment": f"shared-{i % 3}"})
                if resp.status_code != 201:
                    errors.append(f"create: {resp.status_code} {resp.text[:200]}")
                    continue
                rid = resp.json()["id"]
                steps = [{"key": "loss", "value": 1 / (s + 1), "step": s} for s in range(20)]
                for url, body in (
                    (f"/api/v1/runs/{rid}/params", {"params": {"worker": worker, "i": i}}),
                    (f"/api/v1/runs/{rid}/metrics/batch", {"metrics": steps}),
                    (f"/api/v1/runs/{rid}/tags", {"tags": {"w": str(worker)}}),
                ):
                    r = http.post(url, json=body)
                    if r.status_code != 204:
                        errors.append(f"{url}: {r.status_code} {r.text[:200]}")
                with lock:
                    created.append(rid)

    threads = [threading.Thread(target=client_work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(created) == 48

    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        experiments = http.get("/api/v1/experiments").json()["experiments"]
        assert sorted((e["name"], e["run_count"]) for e in experiments) == [
            ("shared-0", 18),
            ("shared-1", 18),
            ("shared-2", 12),
        ]
        found = http.post("/api/v1/runs/search", json={"filter": "metrics.loss < 0.06"}).json()
        assert {r["id"] for r in found["runs"]} == set(created)
        assert all(r["metrics"]["loss"] == 0.05 for r in found["runs"])

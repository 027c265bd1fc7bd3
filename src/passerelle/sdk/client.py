"""Low-level client: one method per REST call, dicts in and out, server errors re-raised.

``Client()`` reads ``PASSERELLE_URL`` / ``PASSERELLE_API_KEY``; with no URL it runs the server's
app in-process on the files under ``PASSERELLE_HOME`` (embedded mode). Tests and applications
may inject any httpx transport.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

from passerelle.core.errors import IntegrityFailure, error_from_response

EMBEDDED_URL = "http://passerelle.embedded"


class Client:
    """Talks to one passerelle server, or to the embedded store."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        home: str | Path | None = None,
        project: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        from passerelle.core.settings import Settings

        overrides: dict[str, Any] = {}
        if home is not None:
            overrides["home"] = Path(home)
        settings = Settings(**overrides)
        self.settings = settings
        self.url = (url or settings.url or "").rstrip("/") or None
        self.project = project or settings.project
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        headers = {"User-Agent": "passerelle-sdk"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if transport is None and self.url is None:
            from passerelle.app import create_app
            from passerelle.core.settings import AuthMode
            from passerelle.sdk.transport import InProcessTransport

            # Embedded, the app listens nowhere and whoever can read the files holds every
            # record: the server's listening and key settings do not apply.
            # Nor does the monitoring scheduler: alerts and canary policies are the server's.
            local = settings.model_copy(
                update={"host": "127.0.0.1", "auth": AuthMode.OFF, "monitor_interval": 0}
            )
            transport = InProcessTransport(create_app(local))
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.url or EMBEDDED_URL,
            headers=headers,
            transport=transport,
            timeout=timeout,
        )
        self._lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return self.url is None

    @property
    def transport(self) -> httpx.BaseTransport | None:
        """The transport given or built (the embedded app's), for other senders to share."""
        return self._transport

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON (``None`` for 204) or raise the server error."""
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code >= 400:
            try:
                body: Any = resp.json()
            except ValueError:
                body = resp.text
            raise error_from_response(resp.status_code, body)
        if resp.status_code == 204 or not resp.content:
            return None
        return orjson.loads(resp.content)  # several times faster than json on big pages

    # -- experiments ---------------------------------------------------------------------------
    def list_experiments(self, project: str | None = None) -> list[dict[str, Any]]:
        params = {"project": project} if project else None
        return self.request("GET", "/api/v1/experiments", params=params)["experiments"]

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/experiments/{experiment_id}")

    def create_experiment(self, name: str, project: str | None = None, **fields: Any):
        body = {"name": name, "project": project or self.project, **fields}
        return self.request("POST", "/api/v1/experiments", json=body)

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, **body: Any) -> dict[str, Any]:
        body.setdefault("project", self.project)
        return self.request("POST", "/api/v1/runs", json=body)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/runs/{run_id}")

    def update_run(self, run_id: str, **body: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/api/v1/runs/{run_id}", json=body)

    def delete_run(self, run_id: str) -> None:
        self.request("DELETE", f"/api/v1/runs/{run_id}")

    def child_runs(self, run_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v1/runs/{run_id}/children")["runs"]

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self.request("POST", f"/api/v1/runs/{run_id}/params", json={"params": params})

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.request("POST", f"/api/v1/runs/{run_id}/tags", json={"tags": tags})

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        body = {"key": key, "value": value, "step": step, "timestamp": timestamp}
        self.request("POST", f"/api/v1/runs/{run_id}/metrics", json=body)

    def log_metric_batch(self, run_id: str, metrics: list[dict[str, Any]]) -> None:
        self.request("POST", f"/api/v1/runs/{run_id}/metrics/batch", json={"metrics": metrics})

    def metric_history(self, run_id: str, key: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/api/v1/runs/{run_id}/metrics/{key}/history")["points"]

    def search_runs_pages(self, **body: Any) -> Iterator[list[dict[str, Any]]]:
        """Every page of a search, following ``next_page_token``."""
        token = None
        while True:
            page = self.request("POST", "/api/v1/runs/search", json={**body, "page_token": token})
            yield page["runs"]
            token = page.get("next_page_token")
            if not token:
                return

    # -- artifacts, blobs, datasets ------------------------------------------------------------
    def upload_artifact(self, run_id: str, path: str, data: bytes | IO[bytes]) -> dict[str, Any]:
        content = data if isinstance(data, bytes) else _chunks(data)
        return self.request(
            "PUT", f"/api/v1/runs/{run_id}/artifacts", params={"path": path}, content=content
        )

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[dict[str, Any]]:
        params = {"prefix": prefix} if prefix else None
        return self.request("GET", f"/api/v1/runs/{run_id}/artifacts", params=params)

    def download_artifact(self, run_id: str, path: str, dest: str | Path) -> Path:
        """Stream an artifact to ``dest``, checking its sha256 against the server's ETag."""
        return self.download(f"/api/v1/runs/{run_id}/artifacts/content", {"path": path}, dest)

    def download(self, url: str, params: dict[str, str], dest: str | Path) -> Path:
        """Stream a verified download to ``dest``; nothing is left behind when it fails."""
        import hashlib

        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        path = params.get("path", url)
        with self._http.stream("GET", url, params=params) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise error_from_response(resp.status_code, _json_or_text(resp))
            try:
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_bytes(1024 * 1024):
                        digest.update(chunk)
                        fh.write(chunk)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            expected = resp.headers.get("etag", "").strip('"')
        if expected and digest.hexdigest() != expected:
            tmp.unlink(missing_ok=True)
            raise IntegrityFailure(f"'{path}' arrived corrupted (sha256 mismatch)", field=path)
        tmp.replace(dest)
        return dest

    def upload_blob(self, data: bytes | IO[bytes]) -> dict[str, Any]:
        content = data if isinstance(data, bytes) else _chunks(data)
        return self.request("PUT", "/api/v1/blobs", content=content)

    def log_dataset(self, run_id: str, ref: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/v1/runs/{run_id}/datasets", json=ref)


def _chunks(fh: IO[bytes], size: int = 1024 * 1024) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk


def _json_or_text(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client module-level SDK functions use, built from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def set_default_client(client: Client | None) -> None:
    """Point the module-level SDK functions at another client (``None``: rebuild from env)."""
    global _default
    with _default_lock:
        _default = client

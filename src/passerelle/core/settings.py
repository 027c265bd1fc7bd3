"""One settings object for the whole platform, read from ``PASSERELLE_*`` environment variables.

The same image runs on a laptop, in CI and in production; only these values change. Every field
has a default and a description, and ``docs/settings.md`` must document each one (a test checks).
"""

from __future__ import annotations

import functools
import ipaddress
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuthMode(StrEnum):
    """When API keys are required."""

    AUTO = "auto"  # required unless the server only listens on loopback
    ON = "on"
    OFF = "off"


class Settings(BaseSettings):
    """Platform configuration. CLI flags map onto the same fields."""

    model_config = SettingsConfigDict(env_prefix="PASSERELLE_", extra="ignore")

    home: Path = Field(
        default=Path(".passerelle"),
        description="Folder of the embedded store: the SQLite file and the local artifact folder.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database, e.g. "
        "postgresql+psycopg://user:pw@host/db. Default: SQLite file `<home>/passerelle.db`.",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Where artifacts, model packages and dataset snapshots go: a local folder or "
        "s3://bucket/prefix. Default: `<home>/artifacts`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible server (MinIO, Ceph...). Default: AWS.",
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=5050, ge=0, le=65535, description="Port the server listens on.")
    auth: AuthMode = Field(
        default=AuthMode.AUTO,
        description="`auto`: API keys required unless the server listens on loopback only; "
        "`on`: always required; `off`: never (refused on a non-loopback address).",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="Bootstrap admin API key (at least 24 characters), accepted in addition to "
        "the keys stored in the database. Use it to create the first keys.",
    )
    url: str | None = Field(
        default=None,
        description="SDK and CLI: URL of a passerelle server. When unset, they work embedded on "
        "the files under `home`.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="SDK and CLI: the API key sent to the server."
    )
    project: str = Field(
        default="default", description="SDK and CLI: the project new experiments belong to."
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest JSON request body accepted, in bytes (artifact uploads are streamed "
        "and limited by `max_artifact_bytes` instead).",
    )
    max_artifact_bytes: int = Field(
        default=50 * 1024**3, gt=0, description="Largest single artifact file accepted, in bytes."
    )
    container_image_env: str = Field(
        default="PASSERELLE_CONTAINER_IMAGE",
        description="Name of the environment variable that holds the container image a run "
        "executes in; recorded in the run's environment lineage when set.",
    )
    log_flush_interval: float = Field(
        default=1.0,
        gt=0,
        description="SDK: seconds between background flushes of batched metrics.",
    )
    log_batch_size: int = Field(
        default=1000, gt=0, le=10000, description="SDK: metrics sent per request at most."
    )

    log_compact_interval: float = Field(
        default=2.0,
        gt=0,
        description="Serving: seconds between compactions of the inference log spool into "
        "Parquet parts in the object store.",
    )
    log_merge_interval: float = Field(
        default=60.0,
        gt=0,
        description="Serving: seconds between passes, while the server runs, that merge a "
        "day's small inference log parts into larger ones (one replica at a time).",
    )
    log_fsync: bool = Field(
        default=False,
        description="Serving: fsync the inference log spool on every batch. Off, an "
        "acknowledged prediction survives a process crash (SIGKILL); on, a power loss too.",
    )

    serving_max_batch_rows: int = Field(
        default=512,
        gt=0,
        description="Serving: most rows grouped into one model call by micro-batching.",
    )
    serving_max_wait_ms: float = Field(
        default=2.0,
        ge=0,
        description="Serving: longest a request waits for others to share its model call; "
        "only while other requests for the same version are waiting (a lone request never "
        "waits).",
    )

    tracing_max_attribute_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Tracing: largest span attribute accepted, in bytes; a span with a larger "
        "one is refused (named in the OTLP partial-success answer), the rest of its export kept.",
    )
    tracing_ingest_interval: float = Field(
        default=0.2,
        gt=0,
        description="Tracing: seconds between passes moving spooled spans into the trace tables "
        "(reads through this process's API see its own acknowledged spans at once).",
    )
    tracing_fsync: bool = Field(
        default=False,
        description="Tracing: fsync the span spool on every export. Off, an acknowledged span "
        "survives a process crash (SIGKILL); on, a power loss too.",
    )

    tracing_enabled: bool = Field(
        default=True,
        description="SDK tracing: record traces (`@observe`, `trace()`, the OpenAI wrapper); "
        "off, every call still works and records nothing.",
    )
    tracing_sample_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="SDK tracing: fraction of traces recorded, decided at each trace's root "
        "so that a trace is kept whole or not at all.",
    )
    tracing_queue_size: int = Field(
        default=100_000,
        gt=0,
        description="SDK tracing: spans held in memory waiting to be sent; past it (or past "
        "128 MiB of payload) new spans are dropped and counted, never blocking the application.",
    )
    tracing_release: str | None = Field(
        default=None,
        description="SDK tracing: release recorded on every trace (e.g. a git sha or a version).",
    )

    strict_event_loop: bool = Field(
        default=False,
        description="Refuse a database call made on the server's event loop "
        "(a check for development and tests). Such a call stalls every request in flight, and "
        "on SQLite it can wait out the lock timeout on a writer whose commit needs that loop.",
    )
    monitor_interval: float = Field(
        default=30.0,
        ge=0,
        description="Monitoring: seconds between evaluations of alert rules and canary "
        "policies by the server's background scheduler (0 turns it off). One replica "
        "evaluates at a time, whoever holds the lease in the database.",
    )
    monitor_lease_seconds: float = Field(
        default=90.0,
        gt=0,
        description="Monitoring: how long the scheduler's lease lasts without renewal; another "
        "replica takes over evaluations once a holder has been silent this long.",
    )
    monitor_webhook_timeout: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Monitoring: seconds a webhook receiver has to answer an alert.",
    )

    @field_validator("admin_key")
    @classmethod
    def _refuse_weak_admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("PASSERELLE_ADMIN_KEY must be at least 24 characters long")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'passerelle.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or str((self.home / "artifacts").resolve())

    @property
    def listens_on_loopback(self) -> bool:
        return is_loopback(self.host)

    @property
    def auth_required(self) -> bool:
        if self.auth is AuthMode.AUTO:
            return not self.listens_on_loopback
        return self.auth is AuthMode.ON


@functools.lru_cache(maxsize=64)
def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine (asked on every request
    through ``auth_required``, hence remembered)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

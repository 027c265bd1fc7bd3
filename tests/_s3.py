"""An S3-compatible server for the test session: moto's standalone server on a free port.

It is a real HTTP server speaking the S3 protocol, so the object store goes through s3fs,
botocore and the network exactly as it would against MinIO.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._postgres import free_port

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "passerelle-test",
    "AWS_SECRET_ACCESS_KEY": "passerelle-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass(frozen=True)
class S3Location:
    """A bucket and prefix on the test server, with what a client needs to reach it."""

    bucket: str
    prefix: str
    endpoint_url: str

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def filesystem(self):
        """A fresh s3fs filesystem (not fsspec's cached instance) for reaching behind the store."""
        import s3fs

        return s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": self.endpoint_url}, skip_instance_cache=True
        )


class MotoServer:
    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="passerelle-moto-", suffix=".log")[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        for _attempt in range(3):
            self.port = free_port()
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **CREDENTIALS},
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    httpx.get(self.endpoint_url + "/moto-api/", timeout=1)
                    return self
                except httpx.HTTPError:
                    time.sleep(0.1)
            self._terminate()
        log = self.log.read_text()[-2000:]
        self.log.unlink(missing_ok=True)
        raise RuntimeError(f"moto server did not start:\n{log}")

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self._terminate()
        self.log.unlink(missing_ok=True)

    def new_location(self) -> S3Location:
        """A new, empty bucket (one per test, so tests never see each other's objects)."""
        import boto3

        bucket = f"passerelle-{uuid.uuid4().hex[:16]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        return S3Location(bucket=bucket, prefix="store", endpoint_url=self.endpoint_url)

"""The content-addressed object store, on a local folder and on S3 (moto's server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from passerelle.app import create_app
from passerelle.core.errors import IntegrityFailure, NotFound, PayloadTooLarge
from passerelle.core.settings import Settings
from passerelle.core.store import CHUNK, ObjectStore
from tests._s3 import S3Location
from tests.api._helpers import assert_error, create_run

MIB = 1024 * 1024


@dataclass
class StoreCase:
    kind: str
    store: ObjectStore
    spool: Path
    overwrite: Callable[[str, bytes], None]  # replace a stored blob's bytes behind the store
    blob_names: Callable[[], list[str]]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> StoreCase:
    spool = tmp_path / "spool"
    if request.param == "local":
        store = ObjectStore(str(tmp_path / "root"), spool_dir=spool)

        def overwrite(sha: str, data: bytes) -> None:
            Path(store._blob_path(sha)).write_bytes(data)

        def blob_names() -> list[str]:
            return sorted(p.name for p in (tmp_path / "root" / "blobs").rglob("*") if p.is_file())

        return StoreCase("local", store, spool, overwrite, blob_names)

    s3: S3Location = request.getfixturevalue("s3")
    store = ObjectStore(s3.root, spool_dir=spool, s3_endpoint_url=s3.endpoint_url)
    fs = s3.filesystem()

    def overwrite_s3(sha: str, data: bytes) -> None:
        fs.pipe_file(store._blob_path(sha), data)

    def blob_names_s3() -> list[str]:
        fs.invalidate_cache()
        return sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{s3.bucket}/{s3.prefix}/blobs"))

    return StoreCase("s3", store, spool, overwrite_s3, blob_names_s3)


def test_round_trip_named_by_hash(case: StoreCase):
    data = b"model weights \x00\xff" * 100
    obj = case.store.put_bytes(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.size == len(data)
    assert case.store.exists(obj.sha256)
    assert case.store.read_bytes(obj.sha256) == data
    path = case.store._blob_path(obj.sha256)
    assert path.endswith(f"/blobs/{obj.sha256[:2]}/{obj.sha256[2:4]}/{obj.sha256}")
    assert case.blob_names() == [obj.sha256]


def test_identical_content_is_stored_once(case: StoreCase):
    a = case.store.put_bytes(b"same")
    b = case.store.put_chunks([b"sa", b"me"])
    c = case.store.put_bytes(b"different")
    assert a == b
    assert a.sha256 != c.sha256
    assert case.blob_names() == sorted([a.sha256, c.sha256])
    assert not any(case.spool.iterdir())  # no upload left behind


def test_empty_object(case: StoreCase):
    obj = case.store.put_bytes(b"")
    assert obj.sha256 == hashlib.sha256(b"").hexdigest()
    assert case.store.read_bytes(obj.sha256) == b""
    assert list(case.store.iter_verified(obj.sha256)) == []


def _pattern(size: int) -> Iterator[bytes]:
    """Non-repeating bytes in 64 KiB pieces, so a misplaced chunk changes the hash."""
    piece = 64 * 1024
    for start in range(0, size, piece):
        n = min(piece, size - start)
        yield hashlib.sha256(str(start).encode()).digest() * (n // 32) + b"\x01" * (n % 32)


def test_multi_mib_object_streams_in_chunks(case: StoreCase, tmp_path: Path):
    size = 5 * MIB + 12345
    expected = hashlib.sha256()
    for piece in _pattern(size):
        expected.update(piece)
    obj = case.store.put_chunks(_pattern(size))
    assert (obj.sha256, obj.size) == (expected.hexdigest(), size)

    chunks = list(case.store.iter_verified(obj.sha256))
    assert len(chunks) >= 5
    assert all(len(c) <= CHUNK for c in chunks)
    assert sum(map(len, chunks)) == size
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == obj.sha256

    dest = tmp_path / "out" / "model.bin"
    case.store.copy_to_file(obj.sha256, dest)
    assert dest.stat().st_size == size
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == obj.sha256


def test_put_file_and_async_upload(case: StoreCase, tmp_path: Path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"from a file" * 1000)
    from_file = case.store.put_file(src)
    assert case.store.read_bytes(from_file.sha256) == src.read_bytes()

    async def body() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"part {i};".encode()

    obj = asyncio.run(case.store.put_async_chunks(body()))
    assert case.store.read_bytes(obj.sha256) == b"part 0;part 1;part 2;"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="same-size"),
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data + b"!", id="extended"),
    ],
)
def test_tampered_object_is_never_returned(case: StoreCase, tmp_path: Path, tamper):
    data = b"".join(_pattern(2 * MIB + 100))  # three chunks
    obj = case.store.put_bytes(data)
    case.overwrite(obj.sha256, tamper(data))

    with pytest.raises(IntegrityFailure, match=obj.sha256):
        case.store.read_bytes(obj.sha256)

    received = bytearray()
    with pytest.raises(IntegrityFailure):
        for chunk in case.store.iter_verified(obj.sha256):
            received += chunk
    assert len(received) < len(data)  # a stream never carries the whole bad object

    dest = tmp_path / "dest" / "model.bin"
    with pytest.raises(IntegrityFailure):
        case.store.copy_to_file(obj.sha256, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial file either


def test_tampered_small_object_yields_nothing(case: StoreCase):
    obj = case.store.put_bytes(b"small and trusted")
    case.overwrite(obj.sha256, b"small and TRUSTED")
    stream = case.store.iter_verified(obj.sha256)
    with pytest.raises(IntegrityFailure):
        next(stream)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "../blobs",
        "/etc/passwd",
        "",
        "A" * 64,
        "0" * 63,
        "0" * 65,
        "0" * 64 + "\n",
        "0" * 62 + "/x",
        "g" * 64,
    ],
    ids=repr,
)
def test_names_that_are_not_digests_are_refused(case: StoreCase, tmp_path: Path, name: str):
    with pytest.raises(NotFound, match="not a sha256 digest"):
        case.store._blob_path(name)
    with pytest.raises(NotFound):
        case.store.read_bytes(name)
    with pytest.raises(NotFound):
        case.store.exists(name)
    with pytest.raises(NotFound):
        case.store.copy_to_file(name, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_object_is_not_found(case: StoreCase):
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not case.store.exists(missing)
    with pytest.raises(NotFound, match="missing"):
        case.store.read_bytes(missing)


def test_max_bytes_limit(case: StoreCase):
    with pytest.raises(PayloadTooLarge):
        case.store.put_chunks([b"x" * 6, b"y" * 5], max_bytes=10)
    ok = case.store.put_chunks([b"x" * 6, b"y" * 4], max_bytes=10)
    assert case.blob_names() == [ok.sha256]
    assert not any(case.spool.iterdir())
    if case.kind == "local":
        assert not any((Path(case.store.root) / "tmp").iterdir())

    async def body() -> AsyncIterator[bytes]:
        yield b"z" * 11

    with pytest.raises(PayloadTooLarge):
        asyncio.run(case.store.put_async_chunks(body(), max_bytes=10))
    assert case.blob_names() == [ok.sha256]

    with pytest.raises(PayloadTooLarge):
        case.store.read_bytes(ok.sha256, limit=9)
    assert case.store.read_bytes(ok.sha256, limit=10) == b"x" * 6 + b"y" * 4


def test_planted_symlink_out_of_a_local_store_is_refused(tmp_path: Path):
    store = ObjectStore(str(tmp_path / "root"), spool_dir=tmp_path / "spool")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not for you")
    sha = hashlib.sha256(b"not for you").hexdigest()
    link = Path(store.root) / "blobs" / sha[:2] / sha[2:4] / sha
    link.parent.mkdir(parents=True)
    os.symlink(secret, link)
    with pytest.raises(NotFound, match="outside"):
        store.read_bytes(sha)


# -- through the API, on S3 -----------------------------------------------------------------------
@pytest.mark.s3
def test_artifacts_and_datasets_through_the_api_on_s3(tmp_path, database_url, s3: S3Location):
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        artifact_root=s3.root,
        s3_endpoint_url=s3.endpoint_url,
        _env_file=None,
    )
    app = create_app(settings)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/readyz").json()["checks"]["object_store"] == "ok"
            run = create_run(client)
            url = f"/api/v1/runs/{run['id']}/artifacts"
            data = b"".join(_pattern(3 * MIB))
            resp = client.put(url, params={"path": "model/weights.bin"}, content=data)
            assert resp.status_code == 201, resp.text
            sha = resp.json()["sha256"]
            assert sha == hashlib.sha256(data).hexdigest()

            fs = s3.filesystem()
            key = f"{s3.bucket}/{s3.prefix}/blobs/{sha[:2]}/{sha[2:4]}/{sha}"
            assert fs.cat_file(key) == data  # the bytes are in the bucket, by hash
            assert not (tmp_path / "home" / "artifacts").exists()

            got = client.get(f"{url}/content", params={"path": "model/weights.bin"})
            assert got.status_code == 200
            assert got.content == data
            listed = client.get(url, params={"prefix": "model"}).json()
            assert [(a["path"], a["size"]) for a in listed] == [("model/weights.bin", len(data))]

            snapshot = client.put("/api/v1/blobs", content=b"PAR1 snapshot PAR1").json()
            dataset = {
                "name": "train",
                "digest": "1" * 64,
                "num_rows": 3,
                "num_columns": 1,
                "schema": [{"name": "x", "type": "int64"}],
                "snapshot_sha256": snapshot["sha256"],
            }
            resp = client.post(f"/api/v1/runs/{run['id']}/datasets", json=dataset)
            assert resp.status_code == 201, resp.text
            assert resp.json()["snapshot_size"] == snapshot["size"]

            small = client.put(url, params={"path": "note.txt"}, content=b"trusted note")
            small_sha = small.json()["sha256"]
            fs.pipe_file(
                f"{s3.bucket}/{s3.prefix}/blobs/{small_sha[:2]}/{small_sha[2:4]}/{small_sha}",
                b"TAMPERED NOTE",
            )
            resp = client.get(f"{url}/content", params={"path": "note.txt"})
            assert_error(resp, 500, "integrity", contains=small_sha)
            assert b"TAMPERED" not in resp.content
    finally:
        app.state.engine.dispose()


def test_named_tables_footer_and_delete(case: StoreCase):
    import pyarrow as pa

    key = "inference/endpoint=e/date=2026-12-05/part-1.parquet"
    table = pa.table({"x": list(range(1000))}).replace_schema_metadata({b"note": b"kept"})
    case.store.put_named_table(key, table)
    footer = case.store.read_named_footer(key)
    assert footer.num_rows == 1000 and footer.metadata[b"note"] == b"kept"
    assert case.store.list_named("inference/") == [key]
    case.store.delete_named(key)
    case.store.delete_named(key)  # already gone: fine
    assert case.store.list_named("inference/") == []

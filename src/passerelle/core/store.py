"""Content-addressed object store on fsspec: a local folder or ``s3://bucket/prefix``.

Objects are named by the sha256 of their bytes, so a client never chooses a storage path: names a
client sends (artifact paths) live in the database only, and ``_blob_path`` refuses anything that
is not a hex digest. Every read is verified against the digest; a mismatch is an error, never data.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec

from passerelle.core.errors import IntegrityFailure, NotFound, PayloadTooLarge

CHUNK = 1024 * 1024
_DIGEST = re.compile(r"[0-9a-f]{64}")
_NAMED_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_=.\-]*(/[A-Za-z0-9_][A-Za-z0-9_=.\-]*)*$")


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int


class ObjectStore:
    """Blobs under ``<root>/blobs/<aa>/<bb>/<sha256>``; ``root`` is a folder or an S3 URL."""

    def __init__(self, root: str, *, spool_dir: Path, s3_endpoint_url: str | None = None) -> None:
        self.root = root.rstrip("/")
        self.is_local = "://" not in self.root or self.root.startswith("file://")
        options: dict[str, Any] = {}
        if self.root.startswith("s3://") and s3_endpoint_url:
            options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
        if self.is_local:
            self.root = str(Path(self.root.removeprefix("file://")).resolve())
            Path(self.root).mkdir(parents=True, exist_ok=True)
            self.fs: fsspec.AbstractFileSystem = fsspec.filesystem("file")
        else:
            self.fs, _ = fsspec.core.url_to_fs(self.root, **options)
            self.root = self.root.split("://", 1)[1]
        self.spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)

    # -- paths ---------------------------------------------------------------------------------
    def _blob_path(self, sha256: str) -> str:
        if not _DIGEST.fullmatch(sha256):
            raise NotFound(f"'{sha256}' is not a sha256 digest", field="sha256")
        path = f"{self.root}/blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"
        if self.is_local and not os.path.realpath(path).startswith(self.root + os.sep):
            raise NotFound("object outside the store", field="sha256")  # a planted symlink
        return path

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._blob_path(sha256)))

    # -- writes --------------------------------------------------------------------------------
    def _spool_file(self) -> tuple[IO[bytes], Path]:
        # Local stores spool inside the root so the final move is an atomic rename.
        folder = Path(self.root) / "tmp" if self.is_local else self.spool_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"upload-{uuid.uuid4().hex}"
        return open(path, "wb"), path

    def _commit(self, tmp: Path, sha256: str) -> None:
        final = self._blob_path(sha256)
        if self.fs.exists(final):
            tmp.unlink(missing_ok=True)
            return
        if self.is_local:
            Path(final).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        else:
            try:
                self.fs.put_file(str(tmp), final)
            finally:
                tmp.unlink(missing_ok=True)

    def put_chunks(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredObject:
        """Store a stream of bytes, hashing while writing; never holds the whole object."""
        digest = hashlib.sha256()
        size = 0
        fh, tmp = self._spool_file()
        try:
            with fh:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"object larger than {max_bytes} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
            sha = digest.hexdigest()
            self._commit(tmp, sha)
            return StoredObject(sha, size)
        finally:
            tmp.unlink(missing_ok=True)

    async def put_async_chunks(
        self, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        """Like ``put_chunks`` for an async body (an HTTP upload); the final move is threaded."""
        from starlette.concurrency import run_in_threadpool

        digest = hashlib.sha256()
        size = 0
        fh, tmp = self._spool_file()
        try:
            with fh:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(
                            f"artifact larger than the limit of {max_bytes} bytes", field="body"
                        )
                    digest.update(chunk)
                    fh.write(chunk)
            sha = digest.hexdigest()
            await run_in_threadpool(self._commit, tmp, sha)
            return StoredObject(sha, size)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> StoredObject:
        return self.put_chunks([data])

    def put_file(self, path: str | os.PathLike[str]) -> StoredObject:
        with open(path, "rb") as fh:
            return self.put_chunks(iter(lambda: fh.read(CHUNK), b""))

    # -- reads ---------------------------------------------------------------------------------
    def iter_verified(self, sha256: str) -> Iterator[bytes]:
        """Yield the object's bytes; raise ``IntegrityFailure`` if they do not hash back.

        The last chunk is held back until the whole object has been hashed, so a reader never
        receives a complete object that fails verification: an object of one chunk yields nothing
        before the check, and a streaming caller (an HTTP download with a ``Content-Length``) is
        cut short, which its client sees as an incomplete transfer.
        """
        path = self._blob_path(sha256)
        if not self.fs.exists(path):
            raise NotFound(f"object {sha256} is missing from the store", field="sha256")
        digest = hashlib.sha256()
        pending: bytes | None = None
        with self.fs.open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                if pending is not None:
                    yield pending
                pending = chunk
        if digest.hexdigest() != sha256:
            raise IntegrityFailure(f"stored object {sha256} does not match its hash")
        if pending is not None:
            yield pending

    def read_bytes(self, sha256: str, *, limit: int | None = None) -> bytes:
        """The whole object, verified before it is returned (``limit``: refuse larger objects)."""
        parts: list[bytes] = []
        size = 0
        for chunk in self.iter_verified(sha256):
            size += len(chunk)
            if limit is not None and size > limit:
                raise PayloadTooLarge(f"object {sha256} is larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def copy_to_file(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        """Write the object to ``dest`` only once every byte has been verified."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".part-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "wb") as fh:
                for chunk in self.iter_verified(sha256):
                    fh.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file when the store is local (for zero-copy readers such as pyarrow)."""
        return Path(self._blob_path(sha256)) if self.is_local else None

    # -- named objects (partitioned logs) ------------------------------------------------------
    def _named_path(self, key: str) -> str:
        """Server-chosen names only, and still checked: no ``..``, no absolute path."""
        if not _NAMED_KEY.match(key) or ".." in key:
            raise NotFound(f"invalid object name {key!r}", field="key")
        return f"{self.root}/named/{key}"

    def put_named_table(self, key: str, table: Any) -> None:
        """Write an Arrow table as Parquet under ``key`` (atomically on a local folder)."""
        import pyarrow.parquet as pq

        final = self._named_path(key)
        fh, tmp = self._spool_file()
        fh.close()
        try:
            pq.write_table(table, tmp, compression="zstd")
            if self.is_local:
                Path(final).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            else:
                self.fs.put_file(str(tmp), final)
        finally:
            tmp.unlink(missing_ok=True)

    def list_named(self, prefix: str) -> list[str]:
        """Keys below ``prefix`` (a folder, ending with ``/``), sorted."""
        base = self._named_path(prefix.rstrip("/"))
        if not self.fs.exists(base):
            return []
        start = f"{self.root}/named/"
        paths = self.fs.find(base)
        return sorted(
            p[len(start) :] if p.startswith(start) else p.split("/named/", 1)[1] for p in paths
        )

    def read_named_footer(self, key: str) -> Any:
        """The Parquet footer of ``key`` (``pyarrow.parquet.FileMetaData``: rows, schema and
        key-value metadata), read from the end of the object without reading its data."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self.fs.open(self._named_path(key), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(size - 8)
            tail = fh.read(8)
            length = int.from_bytes(tail[:4], "little")
            if tail[4:] != b"PAR1" or length + 12 > size:
                raise ValueError(f"{key} is not a Parquet file")
            fh.seek(size - 8 - length)
            footer = fh.read(length)
        # the footer alone, framed as a file holding no data: all pyarrow needs to parse it
        return pq.read_metadata(pa.BufferReader(b"PAR1" + footer + tail))

    def delete_named(self, key: str) -> None:
        """Remove ``key``; already gone is fine (a retried cleanup)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._named_path(key))

    def read_named_table(self, key: str, columns: list[str] | None = None) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Read into memory first: given a Python file object, Arrow's own threads call back into
        # Python to read it, and a background thread caught doing so when the interpreter exits
        # deadlocks the exit (Arrow's thread pool waits for a read that waits for the GIL).
        with self.fs.open(self._named_path(key), "rb") as fh:
            data = fh.read()
        parquet = pq.ParquetFile(pa.BufferReader(data))
        if columns is not None:  # only those this table has (parts written at other times differ)
            names = set(parquet.schema_arrow.names)
            columns = [c for c in columns if c in names]
        return parquet.read(columns=columns)

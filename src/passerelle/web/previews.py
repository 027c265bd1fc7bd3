"""Previews of stored files for pages: text heads, images and the first rows of Parquet tables.

Only verified bytes are ever shown: a blob is hashed in full before any of it is displayed, so
a file too large to hash quickly is offered as a download instead of a preview.
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass, field
from typing import Any, Literal

from passerelle.core.errors import PasserelleError
from passerelle.core.store import ObjectStore

TEXT_HEAD_BYTES = 64 * 1024
TABLE_HEAD_ROWS = 20
VERIFY_LIMIT = 64 * 1024 * 1024  # bytes hashed at most to show a preview
CELL_CHARS = 200

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
# An SVG is a document that may carry scripts: served alone, it may run nothing at all.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

PreviewKind = Literal["text", "image", "table", "none", "error"]


@dataclass
class Preview:
    kind: PreviewKind
    message: str = ""
    text: str = ""
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None


def image_type(path: str) -> str | None:
    """The content type of an image artifact, from its extension (``None``: not an image)."""
    return IMAGE_TYPES.get(posixpath.splitext(path.lower())[1])


def is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".pq"))


def _too_large(size: int) -> Preview:
    return Preview(
        "none", f"too large to preview ({size / 1024**2:.0f} MiB); download it to look inside"
    )


def text_head(store: ObjectStore, sha256: str) -> tuple[bytes, bool]:
    """The first ``TEXT_HEAD_BYTES`` of a blob, once the whole blob has been verified."""
    head = bytearray()
    total = 0
    for chunk in store.iter_verified(sha256):
        total += len(chunk)
        if total > VERIFY_LIMIT:
            raise PasserelleError("object too large to verify for a preview")
        if len(head) < TEXT_HEAD_BYTES:
            head += chunk[: TEXT_HEAD_BYTES - len(head)]
    return bytes(head), total > TEXT_HEAD_BYTES


def looks_like_text(data: bytes) -> bool:
    """No NUL byte and valid UTF-8 (allowing a character cut at the end of the head)."""
    if b"\x00" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(data) - 3
    return True


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def parquet_head(store: ObjectStore, sha256: str, rows: int = TABLE_HEAD_ROWS) -> Preview:
    """The first rows of a Parquet blob as strings, with the table's total row count."""
    import pyarrow.parquet as pq

    data = store.read_bytes(sha256, limit=VERIFY_LIMIT)
    parquet = pq.ParquetFile(io.BytesIO(data))
    columns = list(parquet.schema_arrow.names)
    batch = next(parquet.iter_batches(batch_size=rows), None)
    records = batch.to_pylist() if batch is not None else []
    return Preview(
        "table",
        columns=columns,
        rows=[[_cell(r.get(c)) for c in columns] for r in records[:rows]],
        total_rows=parquet.metadata.num_rows,
    )


def table_preview(store: ObjectStore, sha256: str, size: int | None) -> Preview:
    """A Parquet head, or a message saying why there is none (never an exception)."""
    import pyarrow as pa

    if size is not None and size > VERIFY_LIMIT:
        return _too_large(size)
    try:
        return parquet_head(store, sha256)
    except PasserelleError as exc:
        return Preview("error", exc.message)
    except (pa.ArrowException, OSError) as exc:
        return Preview("error", f"not a readable Parquet file: {exc}")


def artifact_preview(store: ObjectStore, path: str, sha256: str, size: int) -> Preview:
    """Pick the preview that suits the file: an image, a table, text, or none."""
    if image_type(path):
        return Preview("image")
    if is_parquet(path):
        return table_preview(store, sha256, size)
    if size > VERIFY_LIMIT:
        return _too_large(size)
    try:
        head, truncated = text_head(store, sha256)
    except PasserelleError as exc:
        return Preview("error", exc.message)
    if not looks_like_text(head):
        return Preview("none", "binary file: no preview; download it to look inside")
    return Preview("text", text=head.decode("utf-8", errors="replace"), truncated=truncated)

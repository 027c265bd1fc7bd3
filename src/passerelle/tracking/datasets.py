"""Datasets a run reads or writes: fingerprint, row count, schema and Parquet snapshot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from passerelle.core.auth import Action, Principal
from passerelle.core.errors import InvalidInput, NotFound
from passerelle.core.ids import new_id, now_ms
from passerelle.core.store import ObjectStore
from passerelle.tracking.models import Dataset, RunDataset
from passerelle.tracking.schemas import DatasetRef
from passerelle.tracking.service import load_run


def log_dataset(
    session: Session, principal: Principal, store: ObjectStore, run_id: str, ref: DatasetRef
) -> dict[str, Any]:
    """Record that ``run_id`` read or wrote the dataset; one dataset row per content and name."""
    run = load_run(session, principal, run_id, Action.WRITE)
    snapshot_size = None
    if ref.snapshot_sha256 is not None:
        if not store.exists(ref.snapshot_sha256):
            raise InvalidInput(
                f"snapshot {ref.snapshot_sha256} was not uploaded first", field="snapshot_sha256"
            )
        snapshot_size = _blob_size(store, ref.snapshot_sha256)
    ds = session.scalar(
        select(Dataset).where(
            Dataset.project_id == run.project_id,
            Dataset.name == ref.name,
            Dataset.digest == ref.digest,
        )
    )
    if ds is None:
        ds = Dataset(
            id=new_id(),
            project_id=run.project_id,
            name=ref.name,
            digest=ref.digest,
            num_rows=ref.num_rows,
            num_columns=ref.num_columns,
            schema=ref.schema_,
            source=ref.source,
            snapshot_sha256=ref.snapshot_sha256,
            snapshot_size=snapshot_size,
            created_at=now_ms(),
        )
        session.add(ds)
        session.flush()
    elif ds.snapshot_sha256 is None and ref.snapshot_sha256 is not None:
        ds.snapshot_sha256, ds.snapshot_size = ref.snapshot_sha256, snapshot_size
    link = session.get(RunDataset, (run_id, ds.id, ref.direction, ref.context))
    if link is None:
        session.add(
            RunDataset(
                run_id=run_id,
                dataset_id=ds.id,
                direction=ref.direction,
                context=ref.context,
                created_at=now_ms(),
            )
        )
        session.flush()
    return dataset_public(ds, ref.direction, ref.context)


def _blob_size(store: ObjectStore, sha256: str) -> int | None:
    try:
        return int(store.fs.size(store._blob_path(sha256)))
    except (OSError, FileNotFoundError):
        return None


def dataset_public(ds: Dataset, direction: str, context: str) -> dict[str, Any]:
    return {
        "id": ds.id,
        "name": ds.name,
        "digest": ds.digest,
        "num_rows": ds.num_rows,
        "num_columns": ds.num_columns,
        "schema": ds.schema,
        "source": ds.source,
        "snapshot_sha256": ds.snapshot_sha256,
        "snapshot_size": ds.snapshot_size,
        "direction": direction,
        "context": context,
        "created_at": ds.created_at,
    }


def run_datasets(session: Session, run_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Dataset, RunDataset.direction, RunDataset.context)
        .join(RunDataset, RunDataset.dataset_id == Dataset.id)
        .where(RunDataset.run_id == run_id)
        .order_by(RunDataset.created_at)
    ).all()
    return [dataset_public(ds, d, c) for ds, d, c in rows]


def get_dataset(session: Session, principal: Principal, dataset_id: str) -> Dataset:
    ds = session.get(Dataset, dataset_id)
    if ds is None:
        raise NotFound(f"dataset '{dataset_id}' not found", field="dataset_id")
    principal.require(Action.READ, ds.project_id)
    return ds

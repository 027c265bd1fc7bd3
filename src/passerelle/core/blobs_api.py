"""Reading a stored blob back by its digest: ``GET /api/v1/blobs/{sha256}``.

Lineage names blobs by sha256 (a run's diff, its ``uv.lock``, its package list, a dataset
snapshot); ``passerelle reproduce`` needs their bytes to check and rebuild what a run used. The
digest is only ever learnt by reading a run or a version, which already requires READ on its
project, so the route asks for READ and streams the object verified, like every other download.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from passerelle.core.auth import Action
from passerelle.core.downloads import verified_download
from passerelle.core.web import PrincipalDep, StoreDep

router = APIRouter(prefix="/api/v1", tags=["tracking"])

Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The blob's sha256.")]


@router.get("/blobs/{sha256}")
def download_blob(sha256: Digest, principal: PrincipalDep, store: StoreDep):
    """Stream one blob, verified against its digest as it is read; its ``ETag`` is the digest."""
    principal.require(Action.READ, principal.project_id)
    return verified_download(store, sha256)

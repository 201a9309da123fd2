"""Model versions: every version anchored on the ledger, the records of one weights digest, and
whether an uploaded weights file is an anchored version (open to anyone); anchoring a shipped
model as a version (a write: an API token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from prosima.app.ledger_queries import parse_hex
from prosima.app.model_versions import anchored_versions
from prosima.errors import InputError
from prosima.service.auth import require_writer
from prosima.service.work import Answer, answer_now, uploading

if TYPE_CHECKING:
    from prosima.app.session import Session

router = APIRouter(prefix="/v1/models", tags=["model versions"])


@router.get("", summary="Every model version on the ledger")
async def versions(request: Request) -> Any:
    """The anchored model versions, oldest first."""
    return await answer_now(
        request, lambda session: {"versions": anchored_versions(session.provenance.ledger)}
    )


def _records_of(session: Session, digest: str) -> Answer:
    from prosima.provenance.model_versions import find_versions

    parse_hex(digest, "digest", 32)
    records = find_versions(session.provenance.ledger, digest.lower())
    return {"ok": any(r["proof_ok"] for r in records), "digest": digest.lower(), "records": records}


def _anchor(session: Session, weights: str) -> Answer:
    from prosima.app.model_versions import ModelAnchor
    from prosima.provenance.model_versions import anchor_model

    done = anchor_model(session.provenance.ledger, weights)
    anchored = ModelAnchor(done["name"], done["digest"], done["tx"], done["height"], done["existing"])
    return {"ok": True} | anchored.to_json()


@router.post(
    "/anchor", summary="Anchor a shipped model as a model version", dependencies=[Depends(require_writer)]
)
async def anchor(
    request: Request,
    weights: Annotated[str, Query(description="A shipped model, pretrained:NAME.")],
) -> Any:
    """As ``prosima models anchor pretrained:NAME``: commit its weights digest, unless it already is."""
    if not weights.startswith("pretrained:"):
        raise InputError(f"weights must name a shipped model, pretrained:NAME; got {weights!r}")
    return await answer_now(request, lambda session: _anchor(session, weights))


@router.get("/{digest}", summary="The records of one weights digest")
async def by_digest(request: Request, digest: str) -> Any:
    """Every record of the weights ``digest``, each with its inclusion proof checked; ``ok`` when one
    verifies (``prosima models verify`` exits 0)."""
    return await answer_now(request, lambda session: _records_of(session, digest))


@router.post("/check", summary="Is an uploaded weights file an anchored model version?")
async def check(
    request: Request, file: Annotated[UploadFile, File(description="A checkpoint or exported weights file.")]
) -> Any:
    """The file's weights digest and its records, as ``prosima models verify``."""

    async with uploading(request) as folder:
        weights = await folder.save(file)

    def work(session: Session) -> Answer:
        from prosima.app.model_versions import ModelCheck
        from prosima.provenance.model_versions import find_versions, weights_digest

        digest, _ = weights_digest(weights)
        result = ModelCheck(weights, digest, find_versions(session.provenance.ledger, digest))
        return {"ok": result.anchored} | result.to_json() | {"weights": weights.name}

    return await answer_now(request, work, folder)

"""Proofs and tree heads (open to anyone): inclusion of a record, consistency between two tree
heads, the certified head, blocks, and an offline check of a proof document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile

from prosima.app import ledger_queries
from prosima.service.work import answer_now, uploading

router = APIRouter(prefix="/v1", tags=["proofs"])

HeightQuery = Annotated[int | None, Query(ge=0, description="A block height (default: the last block).")]


@router.get("/proofs/inclusion/{tx}", summary="Inclusion proof of a record")
async def inclusion(request: Request, tx: str) -> Any:
    """The record's inclusion proof with the certified tree head it is against."""
    return await answer_now(
        request, lambda session: ledger_queries.inclusion_proof(session.provenance.ledger, tx)
    )


@router.get("/proofs/consistency", summary="Consistency proof between two tree heads")
async def consistency(
    request: Request,
    from_height: Annotated[int, Query(ge=-1, description="The older head's block height (-1: empty log).")],
    to_height: HeightQuery = None,
) -> Any:
    """The log after ``to_height`` extends the log after ``from_height``."""
    return await answer_now(
        request,
        lambda session: ledger_queries.consistency_proof(session.provenance.ledger, from_height, to_height),
    )


@router.post("/proofs/check", summary="Check a proof document against this ledger's node keys")
async def check(
    request: Request, file: Annotated[UploadFile, File(description="A proof document (JSON).")]
) -> Any:
    """What ``prosima ledger check-proof --registry`` says, pinned to this ledger's registry."""
    from prosima.ledger.log.directory import REGISTRY_FILE

    async with uploading(request) as folder:
        document = await folder.save(file)
    return await answer_now(
        request,
        lambda session: ledger_queries.check_proof(
            document, registry=session.ledger / REGISTRY_FILE
        ).to_json(),
        folder,
    )


@router.get("/tree-head", summary="The certified tree head")
async def tree_head(request: Request, height: HeightQuery = None) -> Any:
    """The log's tree head after block ``height`` under its quorum certificate."""
    return await answer_now(
        request, lambda session: ledger_queries.tree_head(session.provenance.ledger, height)
    )


@router.get("/blocks/{height}", summary="One block, its transactions decoded")
async def block(request: Request, height: int) -> Any:
    """Header (times in ISO 8601), quorum certificate and decoded transactions."""
    return await answer_now(
        request, lambda session: ledger_queries.block_view(session.provenance.ledger, height).to_json()
    )


@router.get("/blocks", summary="The last block")
async def last_block(request: Request) -> Any:
    """The block at the ledger's tip."""
    return await answer_now(
        request, lambda session: ledger_queries.block_view(session.provenance.ledger).to_json()
    )

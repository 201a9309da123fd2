"""Exports (open to anyone): the W3C PROV-JSON document and the signed in-toto statement of a
verification of an uploaded file, the signed in-toto statement of a record, and the C2PA manifest
read back from a PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Request, UploadFile

from prosima.app.ledger_queries import find_transaction
from prosima.errors import InputError
from prosima.service.routes.verify import verified_answer
from prosima.service.state import service_state
from prosima.service.work import Answer, answer_now, uploading

if TYPE_CHECKING:
    from prosima.app.session import Session

router = APIRouter(prefix="/v1/exports", tags=["exports"])

ImageFile = Annotated[UploadFile, File(description="A 2-D image to verify and export the verification of.")]


async def _verification(request: Request, file: UploadFile, *, prov: bool) -> Any:
    async with uploading(request) as folder:
        image = await folder.save(file)

    def work(session: Session) -> Answer:
        result = session.verify(image, prov_export=prov, intoto_export=not prov)
        return verified_answer(result)

    return await answer_now(request, work, folder)


@router.post("/prov", summary="W3C PROV-JSON of a verification")
async def prov(request: Request, file: ImageFile) -> Any:
    """The verdict with its PROV-JSON document (``prov``); ``export_note`` says why there is none."""
    return await _verification(request, file, prov=True)


@router.post("/intoto", summary="Signed in-toto statement of a verification")
async def intoto(request: Request, file: ImageFile) -> Any:
    """The verdict with its in-toto statement in a DSSE envelope signed by a node key (``intoto``)."""
    return await _verification(request, file, prov=False)


def _statement(session: Session, tx: str) -> Answer:
    from prosima.provenance.file_exports import restoration_statement, signed

    find_transaction(session.provenance.ledger, tx)
    if tx not in session.provenance.index.refresh().by_tx:
        raise InputError(f"transaction {tx} holds no image record: no in-toto statement to make")
    return {
        "ok": True,
        "tx": tx,
        "intoto": signed(session.provenance, restoration_statement(session.provenance, tx)),
    }


@router.get("/intoto/{tx}", summary="Signed in-toto statement of a record")
async def intoto_of_record(request: Request, tx: str) -> Any:
    """The in-toto statement of an anchor or a restoration record, signed by a node key."""
    return await answer_now(request, lambda session: _statement(session, tx))


@router.post("/c2pa", summary="Read the C2PA manifest of a PNG")
async def c2pa(
    request: Request, file: Annotated[UploadFile, File(description="A PNG with a C2PA manifest.")]
) -> Any:
    """The manifest store signed into a restored PNG, validated against this service's certificates
    (when it has them)."""
    from prosima.provenance.exports import read_c2pa

    certs = service_state(request).settings.c2pa_certs
    async with uploading(request) as folder:
        png = await folder.save(file)
    return await answer_now(request, lambda session: {"ok": True, "manifest": read_c2pa(png, certs)}, folder)

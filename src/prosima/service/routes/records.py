"""Records (open to anyone): one by its id, the records of an image by its pixel digest, and the
records of an instance by its keyed link (a UID, or an uploaded file's UIDs or name), hashed here
with the site key beside the ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile

from prosima.app import record_reads
from prosima.errors import InputError
from prosima.service.work import Answer, answer_now, uploading

if TYPE_CHECKING:
    from prosima.app.records import RecordSearch

router = APIRouter(prefix="/v1/records", tags=["records"])


def search_answer(search: RecordSearch) -> Answer:
    """The records of one instance; ``ok`` when there are any (``prosima records find`` exits 0)."""
    return {
        "ok": search.found,
        "what": search.what,
        "records": search.to_json(),
        "unlinked": search.unlinked,
        "other_key": search.other_key,
    }


@router.get("", summary="Find records by image digest or by a keyed UID")
async def find_records(
    request: Request,
    digest: Annotated[str | None, Query(description="The pixel digest of an image (hex).")] = None,
    sop_uid: Annotated[str | None, Query(description="A SOP Instance UID.")] = None,
    series_uid: Annotated[str | None, Query(description="A Series Instance UID.")] = None,
    study_uid: Annotated[str | None, Query(description="A Study Instance UID.")] = None,
) -> Any:
    """Exactly one of ``digest``, ``sop_uid``, ``series_uid`` or ``study_uid``."""
    given = [v for v in (digest, sop_uid, series_uid, study_uid) if v]
    if len(given) != 1:
        raise InputError("give exactly one of digest, sop_uid, series_uid or study_uid")
    if digest:
        return await answer_now(request, lambda session: record_reads.records_by_digest(session, digest))
    return await answer_now(
        request,
        lambda session: search_answer(
            session.find_records(sop_uid=sop_uid, series_uid=series_uid, study_uid=study_uid)
        ),
    )


@router.post("/search", summary="Find the records of an uploaded file's instances")
async def find_records_of_file(
    request: Request,
    file: Annotated[UploadFile, File(description="An image file: its instances' UIDs (or its name).")],
) -> Any:
    """The records linked to the file's instances, as ``prosima records find --file``."""
    async with uploading(request) as folder:
        image = await folder.save(file)
    return await answer_now(request, lambda session: search_answer(session.find_records(file=image)), folder)


@router.get("/{tx}", summary="One record by its id")
async def record(request: Request, tx: str) -> Any:
    """The transaction decoded; for an image record also its original and the model's versions."""
    return await answer_now(request, lambda session: record_reads.record_view(session, tx))

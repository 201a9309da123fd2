"""Verify uploads (open to anyone): one file, several files, or the files of one DICOM series. The
answer's ``ok`` is true exactly where ``prosima verify`` would exit 0. A 2-D image is answered at
once; a volume, a batch or a series becomes a job."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from prosima.imaging.io import is_volume
from prosima.service.jobs import Job
from prosima.service.state import service_state
from prosima.service.uploads import check_count, safe_name
from prosima.service.work import Answer, answer_now, start_job, uploading

if TYPE_CHECKING:
    from prosima.app.session import Session, Verified

router = APIRouter(prefix="/v1/verify", tags=["verify"])

SinceFile = Annotated[
    UploadFile | None,
    File(
        description="A tree head kept earlier ('prosima ledger head'): refuse a ledger that shrank "
        "or forked since."
    ),
]


def verified_answer(result: Verified, name: str | None = None) -> Answer:
    """A verification as JSON: the verdict (or every slice's), ``ok`` first."""
    from prosima.app.verify_results import VerifyResult

    body: dict[str, Any] = {"ok": result.ok} | result.to_json()
    if name is not None:
        body = {"file": name} | body
    if isinstance(result, VerifyResult):
        body["export_note"] = result.export_note
        if result.prov_document is not None:
            body["prov"] = result.prov_document
        if result.intoto is not None:
            body["intoto"] = result.intoto
    return body


def _heatmap_png(result: Any, folder: Path) -> str:
    """The tamper heatmap as base64 PNG text."""
    from prosima.app.verifying import write_heatmap

    path = write_heatmap(result, folder / "heatmap.png")
    return base64.b64encode(path.read_bytes()).decode()


@router.post(
    "",
    summary="Verify one image (a volume: as a job)",
    responses={202: {"description": "A volume: a job verifying every slice was started."}},
)
async def verify_one(
    request: Request,
    file: Annotated[UploadFile, File(description="A 2-D image (PNG, DICOM, NIfTI, .npy) or a volume.")],
    since: SinceFile = None,
    heatmap: Annotated[bool, Query(description="Add the tamper heatmap (base64 PNG).")] = False,
    prov: Annotated[bool, Query(description="Add the W3C PROV-JSON document of the verification.")] = False,
    intoto: Annotated[
        bool, Query(description="Add the signed in-toto statement of the verification.")
    ] = False,
) -> Any:
    """Is this exactly an anchored image or a trusted restoration? Which shards differ?"""
    async with uploading(request) as folder:
        image = await folder.save(file)
        kept_head = await folder.save(since, place="since") if since is not None else None
        volume = is_volume(image)
    if volume and not (heatmap or prov or intoto):  # the session refuses those for a volume
        return start_job(
            service_state(request),
            "verify-volume",
            lambda session, job: verified_answer(
                session.verify(image, since=kept_head, on_slice=job.progress), safe_name(file.filename)
            ),
            folder,
        )

    def work(session: Session) -> Answer:
        result = session.verify(
            image, since=kept_head, heatmap=heatmap, prov_export=prov, intoto_export=intoto
        )
        answer = verified_answer(result)
        if heatmap:
            answer["heatmap_png"] = _heatmap_png(result, folder.path)
        return answer

    return await answer_now(request, work, folder)


def _batch(images: list[Path], names: list[str], kept_head: Path | None) -> Any:
    def work(session: Session, job: Job) -> Answer:
        job.progress(0, len(images))
        results = session.verify_many(
            images, on_progress=lambda i, path, result: job.progress(i + 1), since=kept_head
        )
        rows = [verified_answer(r, n) for r, n in zip(results, names, strict=True)]
        return {"ok": all(r.ok for r in results), "verified": sum(r.ok for r in results), "results": rows}

    return work


@router.post(
    "/batch",
    status_code=202,
    summary="Verify several files (a job)",
    response_class=JSONResponse,
)
async def verify_batch(
    request: Request,
    files: Annotated[list[UploadFile], File(description="Images or volumes, each verified on its own.")],
    since: SinceFile = None,
) -> JSONResponse:
    """Each file verified as ``POST /v1/verify`` would; ``ok`` when every one is."""
    state = service_state(request)
    check_count(files, state.settings.max_files)
    async with uploading(request) as folder:
        images = await folder.save_each(files)
        kept_head = await folder.save(since, place="since") if since is not None else None
    names = [safe_name(f.filename) for f in files]
    return start_job(state, "verify-batch", _batch(images, names, kept_head), folder, total=len(images))


@router.post(
    "/series",
    status_code=202,
    summary="Verify the files of one DICOM series as one volume (a job)",
    response_class=JSONResponse,
)
async def verify_series(
    request: Request,
    files: Annotated[list[UploadFile], File(description="The DICOM files of one series.")],
    since: SinceFile = None,
) -> JSONResponse:
    """Every slice of the series verified, as ``prosima verify`` does for a series folder."""
    state = service_state(request)
    check_count(files, state.settings.max_files)
    async with uploading(request) as folder:
        series = await folder.save_series(files)
        kept_head = await folder.save(since, place="since") if since is not None else None
    return start_job(
        state,
        "verify-series",
        lambda session, job: verified_answer(session.verify(series, since=kept_head, on_slice=job.progress)),
        folder,
        total=len(files),
    )

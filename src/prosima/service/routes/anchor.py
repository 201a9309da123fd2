"""Anchor uploads (a write: an API token): image files, volumes, or the files of one DICOM series.
One 2-D image is answered at once; anything more becomes a job whose progress counts the images
(every slice of a volume) as their outcomes are known."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from prosima.imaging.io import is_volume
from prosima.service.auth import require_writer
from prosima.service.commit_timing import commit_timing
from prosima.service.jobs import Job
from prosima.service.state import ServiceState, service_state
from prosima.service.uploads import UploadFolder, check_count
from prosima.service.work import Answer, clean, start_job, uploading

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.provenance.anchor import AnchorReport

router = APIRouter(prefix="/v1/anchor", tags=["anchor"], dependencies=[Depends(require_writer)])

BatchQuery = Annotated[int, Query(ge=1, le=1024, description="Images per consensus round.")]


def anchored_answer(report: AnchorReport, timing: dict[str, Any]) -> Answer:
    """The outcome of every image in input order; ``ok`` unless some could not be committed (the
    command line's exit 3). ``commit``: the consensus time of this call, wall and critical path."""
    body: dict[str, Any] = {
        "ok": not report.dropped,
        "committed": report.committed,
        "existing": report.existing,
        "dropped": len(report.dropped),
        "results": [r.to_json() for r in report.results],
    }
    return body | timing


def _count(job: Job, event: Any) -> None:
    """One image's final outcome (a drop that will be resubmitted is not one)."""
    if getattr(event, "retry", None) is None:
        job.step()


def _anchor(images: list[Path], batch: int) -> Any:
    def work(session: Session, job: Job) -> Answer:
        from prosima.provenance.anchor import read_inputs

        items = read_inputs(images)  # every file read before anything is committed
        job.progress(0, len(items))
        report = session.anchor_inputs(items, batch=batch, on_event=lambda event: _count(job, event))
        return anchored_answer(report, commit_timing(session))

    return work


@router.post(
    "",
    summary="Anchor image files (more than one 2-D image: as a job)",
    responses={202: {"description": "Several images or a volume: a job anchoring them was started."}},
)
async def anchor_files(
    request: Request,
    files: Annotated[list[UploadFile], File(description="Image files (PNG, .npy, NIfTI, DICOM) or volumes.")],
    batch: BatchQuery = 16,
) -> Any:
    """Protocol 2: shard, hash and fingerprint each image (each slice of a volume), commit the
    records; images already anchored are reported, not committed again. One 2-D image shares its
    consensus round with the other one-image requests waiting when it arrives (``commit.images``:
    how many did)."""
    state = service_state(request)
    check_count(files, state.settings.max_files)
    async with uploading(request) as folder:
        images = await folder.save_each(files)
        single = len(images) == 1 and not is_volume(images[0])
    if single:
        return await _anchor_one(state, images[0], folder)
    return start_job(state, "anchor", _anchor(images, batch), folder)


async def _anchor_one(state: ServiceState, image: Path, folder: UploadFolder) -> Answer:
    """Read and check ``image`` here (a refusal is this request's alone), then commit it in the
    next round the queue runs."""
    from prosima.provenance.anchor import AnchorReport, read_inputs

    try:
        items = await asyncio.to_thread(read_inputs, [image])
        queued = await state.anchors.anchor(items[0])
    finally:
        folder.remove()
    timing = queued.timing
    if "commit" in timing:
        timing = {"commit": timing["commit"] | {"images": queued.shared_with}}
    return clean(anchored_answer(AnchorReport([queued.result]), timing), folder)


@router.post(
    "/series",
    status_code=202,
    summary="Anchor the files of one DICOM series, every slice (a job)",
    response_class=JSONResponse,
)
async def anchor_series(
    request: Request,
    files: Annotated[list[UploadFile], File(description="The DICOM files of one series.")],
    batch: BatchQuery = 16,
) -> JSONResponse:
    """Every slice of the series anchored, as ``prosima anchor`` does for a series folder."""
    state = service_state(request)
    check_count(files, state.settings.max_files)
    async with uploading(request) as folder:
        series = await folder.save_series(files)
    return start_job(state, "anchor-series", _anchor([series], batch), folder)

"""How a route runs its ledger work: now (the answer is the response) or as a job (202 now, the
answer later at ``/v1/jobs/{id}``). Either way the work runs on the ledger thread, its uploads'
private folder is removed once it is done, and its answer is JSON-safe and names no private path."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from prosima.service.errors import error_document, remember_private_folder, scrubbed
from prosima.service.jobs import Job
from prosima.service.json_safe import json_safe
from prosima.service.state import ServiceState, service_state
from prosima.service.uploads import UploadFolder

if TYPE_CHECKING:
    from prosima.app.session import Session

log = logging.getLogger("prosima.service")

Answer = dict[str, Any]


def private_folder(request: Request) -> UploadFolder:
    """A new private folder for this request's uploads, hidden from its error messages."""
    folder = UploadFolder(service_state(request).settings.work_dir)
    remember_private_folder(request, folder.path)
    return folder


@asynccontextmanager
async def uploading(request: Request) -> AsyncIterator[UploadFolder]:
    """A private folder for this request's uploads; removed here if saving them fails, else by the
    work that reads them (``answer_now``, ``start_job``)."""
    folder = private_folder(request)
    try:
        yield folder
    except BaseException:
        folder.remove()
        raise


def clean(answer: Any, folder: UploadFolder | None) -> Any:
    """``answer`` JSON-safe, without the private folder's path."""
    return scrubbed(json_safe(answer), [folder.path] if folder is not None else [])


async def answer_now(
    request: Request, work: Callable[[Session], Answer], folder: UploadFolder | None = None
) -> Answer:
    """Run ``work`` on the ledger thread and answer with what it returns."""
    try:
        answer = await service_state(request).worker.call(work)
    finally:
        if folder is not None:
            folder.remove()
    result: Answer = clean(answer, folder)
    return result


def _finish(job: Job, folder: UploadFolder | None, outcome: Future[Answer]) -> None:
    """Record the job's answer, or its error as the request would have answered it."""
    try:
        job.finish(200, clean(outcome.result(), folder))
    except Exception as exc:
        status, body = error_document(exc, [folder.path] if folder is not None else [])
        if status == 500:
            log.error("job %s (%s) failed", job.id, job.kind, exc_info=exc)
        job.finish(status, body)
    finally:
        if folder is not None:
            folder.remove()


def start_job(
    state: ServiceState,
    kind: str,
    work: Callable[[Session, Job], Answer],
    folder: UploadFolder | None = None,
    total: int | None = None,
) -> JSONResponse:
    """Queue ``work(session, job)`` as a job (it reports progress on ``job``); answer 202 with the
    job's id and where to follow it."""
    job = state.jobs.create(kind, total)

    def run(session: Session) -> Answer:
        job.start()
        return work(session, job)

    state.worker.submit(run).add_done_callback(lambda outcome: _finish(job, folder, outcome))
    href = f"/v1/jobs/{job.id}"
    return JSONResponse(job.to_json() | {"href": href}, status_code=202, headers={"Location": href})

"""The archive beside the service: verify an instance of it (open to anyone, as verification is),
restore one and store the restoration back as a derived series (a write, as a job), poll its
changes feed now (a write) and read where the ledger is in that feed. An instance is named by its
Orthanc id or its SOP Instance UID; the archive and its login are the server's, never a request's.
Every piece of ledger work runs on the ledger thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from prosima.errors import InputError
from prosima.provenance.match_rule import DEFAULT_MARGIN_SCALE, DEFAULT_MIN_MARGIN, DEFAULT_MIN_SIMILARITY
from prosima.service.archive_follower import poll_archive
from prosima.service.auth import require_writer
from prosima.service.commit_timing import commit_timing
from prosima.service.jobs import Job
from prosima.service.portal.archive import require_archive
from prosima.service.routes import restore as restore_routes
from prosima.service.routes.verify import verified_answer
from prosima.service.state import service_state
from prosima.service.work import Answer, answer_now, start_job

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.pacs.orthanc_client import OrthancClient

router = APIRouter(prefix="/v1/pacs", tags=["pacs"])

FOLLOWER_ATTRIBUTE = "archive_follower"  # on app.state: the follower, when one runs
MAX_REF_CHARS = 64  # a SOP Instance UID's limit; an Orthanc id is 44

InstancePath = Annotated[
    str,
    Path(
        max_length=MAX_REF_CHARS,
        description="The instance: its Orthanc id (xxxxxxxx-xxxxxxxx-...) or its SOP Instance UID.",
    ),
]


def checked_ref(instance: str) -> str:
    """``instance`` if it has the form of an Orthanc id or a DICOM UID, else a 400 naming it."""
    from prosima.pacs.orthanc_client import is_dicom_uid, is_orthanc_id

    ref = instance.strip()
    if not (is_orthanc_id(ref) or is_dicom_uid(ref)):
        raise InputError(
            f"{ref[:80]!r} is neither an Orthanc instance id (five groups of 8 hex digits) nor a SOP "
            "Instance UID (digits and dots, at most 64 characters)"
        )
    return ref


def _verify(client: OrthancClient, ref: str) -> Any:
    def work(session: Session) -> Answer:
        from prosima.pacs.instances import resolve_instance, verify_instance

        instance_id = resolve_instance(client, ref)
        answer = verified_answer(verify_instance(session, client, instance_id))
        return answer | {"orthanc": {"instance": instance_id}}

    return work


@router.post("/verify/{instance}", summary="Verify an instance of the archive")
async def verify_archived(request: Request, instance: InstancePath) -> Answer:
    """Is the archive's instance exactly an anchored image or a trusted restoration? ``ok`` is true
    exactly where ``prosima pacs verify`` would exit 0."""
    client = require_archive(request)
    return await answer_now(request, _verify(client, checked_ref(instance)))


def _restore(client: OrthancClient, ref: str, **options: Any) -> Any:
    def work(session: Session, job: Job) -> Answer:
        from prosima.pacs.instances import restore_instance

        done = restore_instance(session, client, ref, **options)
        return {"ok": True} | done.to_json() | commit_timing(session)

    return work


@router.post(
    "/restore/{instance}",
    status_code=202,
    summary="Restore an instance of the archive and store it back as a derived series (a job)",
    response_class=JSONResponse,
    dependencies=[Depends(require_writer)],
)
async def restore_archived(
    request: Request,
    instance: InstancePath,
    model: restore_routes.ModelQuery = None,
    record: Annotated[
        str | None, Query(description="Record id of the original (forces it: no matching rule).")
    ] = None,
    min_similarity: restore_routes.SimilarityQuery = DEFAULT_MIN_SIMILARITY,
    min_margin: restore_routes.MarginQuery = DEFAULT_MIN_MARGIN,
    margin_scale: restore_routes.ScaleQuery = DEFAULT_MARGIN_SCALE,
) -> JSONResponse:
    """Restored against its anchored original (``record``, else the nearest passing the rule), the
    restoration committed and stored into the archive as a new series of the same study whose
    Source Image Sequence names the instance; the job's answer names the stored instance. A refusal
    (``ok: false``) commits and stores nothing."""
    client = require_archive(request)
    options = {
        "model": restore_routes._model(model),
        "record": record,
        "rule": restore_routes._rule(min_similarity, min_margin, margin_scale),
    }
    return start_job(
        service_state(request), "pacs-restore", _restore(client, checked_ref(instance), **options)
    )


@router.post("/watch/poll", summary="Anchor what was stored into the archive since the last poll")
async def poll_now(request: Request, writer: Annotated[Any, Depends(require_writer)]) -> Answer:
    """One poll of the archive's changes feed: every instance stored since the ledger's saved
    position anchored (or reported: a recorded restoration, a changed copy, no image)."""
    client = require_archive(request)
    return await answer_now(request, lambda session: poll_archive(session, client))


@router.get("/watch", summary="Where the ledger is in the archive's changes feed")
async def watch_position(request: Request) -> Answer:
    """The last change of the archive whose instances are on the ledger (0: none yet), kept under
    the archive's id when it has one (a private archive's: it outlives the ports of a restart), and
    the service's follower (its interval and last poll) when one runs."""
    from prosima.pacs.watch_state import archive_key, read_position

    client = require_archive(request)
    ledger = service_state(request).settings.ledger
    follower = getattr(request.app.state, FOLLOWER_ATTRIBUTE, None)
    return {
        "archive": client.url,
        "archive_id": client.archive_id,
        "last": read_position(ledger, archive_key(client.url, client.archive_id)),
        "follower": follower.to_json() if follower is not None else None,
    }

"""Restore an upload (a write: an API token) conditioned on its anchored original, and commit the
restoration: a 2-D image at once, a volume or a DICOM series as a job. The restored file is kept
for download at ``/v1/outputs/{id}`` (also a write: it is an image of a patient)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from prosima.errors import InputError
from prosima.imaging.io import is_volume
from prosima.provenance.match_rule import DEFAULT_MARGIN_SCALE, DEFAULT_MIN_MARGIN, DEFAULT_MIN_SIMILARITY
from prosima.service.auth import require_writer
from prosima.service.commit_timing import commit_timing
from prosima.service.jobs import Job
from prosima.service.outputs import OutputStore
from prosima.service.state import service_state
from prosima.service.uploads import check_count, safe_name
from prosima.service.work import Answer, answer_now, start_job, uploading

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.provenance.match_rule import MatchRule

router = APIRouter(tags=["restore"], dependencies=[Depends(require_writer)])

PRETRAINED = "pretrained:"

ModelQuery = Annotated[
    str | None,
    Query(
        description="A shipped model, pretrained:NAME (default: prosima-full; prosima-volume for volumes)."
    ),
]
SimilarityQuery = Annotated[
    float, Query(ge=-1.0, le=1.0, description="Matching rule: least cosine to the original.")
]
MarginQuery = Annotated[
    float, Query(ge=0.0, le=2.0, description="Matching rule: least margin over the runner-up.")
]
ScaleQuery = Annotated[
    float, Query(ge=0.0, le=100.0, description="Matching rule: margin needed per unit of dissimilarity.")
]


def _model(model: str | None) -> str | None:
    if model is not None and not model.startswith(PRETRAINED):
        raise InputError(f"model must be one of the shipped models, {PRETRAINED}NAME; got {model!r}")
    return model


def _rule(min_similarity: float, min_margin: float, margin_scale: float) -> MatchRule:
    from prosima.provenance.match_rule import MatchRule

    return MatchRule(min_similarity, min_margin, margin_scale)


def restored_answer(result: Any, outputs: OutputStore, session: Session) -> Answer:
    """The committed restoration (each slice's record for a volume) and where its file is kept."""
    from prosima.app.restoration import RestoreResult

    body: dict[str, Any] = {"ok": True} | result.to_json()
    kept = outputs.keep(result.restored.out if isinstance(result, RestoreResult) else result.out)
    body["out"] = kept.name
    body["output"] = {"id": kept.id, "name": kept.name, "href": f"/v1/outputs/{kept.id}"}
    if isinstance(result, RestoreResult) and result.intoto is not None:
        body["intoto"] = result.intoto
    return body | commit_timing(session)


def _restore(corrupted: Path, out: Path, outputs: OutputStore, rule: MatchRule, **options: Any) -> Any:
    def work(session: Session, job: Job | None = None) -> Answer:
        result = session.restore(corrupted, out, rule=rule, **options)
        return restored_answer(result, outputs, session)

    return work


def _c2pa_certs(request: Request, c2pa: bool) -> Path | None:
    if not c2pa:
        return None
    certs = service_state(request).settings.c2pa_certs
    if certs is None:
        raise InputError("this service signs no C2PA manifests: start it with --c2pa-certs DIR")
    return certs


@router.post(
    "/v1/restore",
    summary="Restore one corrupted image and commit the restoration (a volume: as a job)",
    responses={202: {"description": "A volume: a job restoring every slice was started."}},
)
async def restore_one(
    request: Request,
    file: Annotated[UploadFile, File(description="The corrupted image (2-D) or volume (3-D NIfTI).")],
    model: ModelQuery = None,
    record: Annotated[
        str | None, Query(description="Record id of the original (forces it: no matching rule).")
    ] = None,
    min_similarity: SimilarityQuery = DEFAULT_MIN_SIMILARITY,
    min_margin: MarginQuery = DEFAULT_MIN_MARGIN,
    margin_scale: ScaleQuery = DEFAULT_MARGIN_SCALE,
    intoto: Annotated[bool, Query(description="Add the restoration's signed in-toto statement.")] = False,
    c2pa: Annotated[bool, Query(description="Sign a C2PA manifest into a PNG output.")] = False,
) -> Any:
    """Protocol 3: the original is ``record`` when given, else the nearest anchor passing the rule;
    a refusal (``ok: false``, nothing written) otherwise."""
    state = service_state(request)
    rule = _rule(min_similarity, min_margin, margin_scale)
    options = {
        "model": _model(model),
        "record": record,
        "intoto": intoto,
        "c2pa_certs": _c2pa_certs(request, c2pa),
    }
    async with uploading(request) as folder:
        corrupted = await folder.save(file)
        volume = is_volume(corrupted)
    out = folder.out_path(f"restored-{safe_name(file.filename)}")
    work = _restore(corrupted, out, state.outputs, rule, **options)
    if volume:  # record, intoto and c2pa are refused for a volume there, as on the command line
        return start_job(state, "restore-volume", work, folder)
    return await answer_now(request, work, folder)


@router.post(
    "/v1/restore/series",
    status_code=202,
    summary="Restore the files of one DICOM series as one volume (a job)",
    response_class=JSONResponse,
)
async def restore_series(
    request: Request,
    files: Annotated[list[UploadFile], File(description="The DICOM files of one corrupted series.")],
    model: ModelQuery = None,
    min_similarity: SimilarityQuery = DEFAULT_MIN_SIMILARITY,
    min_margin: MarginQuery = DEFAULT_MIN_MARGIN,
    margin_scale: ScaleQuery = DEFAULT_MARGIN_SCALE,
) -> JSONResponse:
    """Every slice matched to its own original and restored; the derived series is kept as a zip."""
    state = service_state(request)
    check_count(files, state.settings.max_files)
    rule, chosen = _rule(min_similarity, min_margin, margin_scale), _model(model)
    async with uploading(request) as folder:
        series = await folder.save_series(files)
    work = _restore(series, folder.out_path("restored-series"), state.outputs, rule, model=chosen)
    return start_job(state, "restore-series", work, folder)


@router.get("/v1/outputs/{output_id}", summary="Download a restored file", response_class=FileResponse)
async def download_output(request: Request, output_id: str) -> FileResponse:
    """A restored file this service kept (the most recent ones only)."""
    kept = service_state(request).outputs.get(output_id)
    return FileResponse(kept.path, media_type=kept.media_type, filename=kept.name)

"""The verification portal (web pages, open to anyone, as verification is): verify an uploaded image
or an archive's instance and read the verdict, browse the ledger's blocks and records, search by
record id, keyed UID or digest, download a record's proof to check offline, and print an audit
report. Pages are rendered on the server, so the upload form works with JavaScript off; a refusal
is a page naming the problem with the status the JSON API would answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from prosima.app.ledger_queries import inclusion_proof
from prosima.errors import InputError, NegativeVerdict
from prosima.imaging.io import is_volume
from prosima.service.errors import FOLDERS_ATTRIBUTE, error_document
from prosima.service.portal import audit, lookups, verification
from prosima.service.portal.archive import archive_client, require_archive
from prosima.service.portal.evidence import proof_summary, quorum_summary
from prosima.service.portal.headers import PAGE_HEADERS
from prosima.service.portal.pages import render, static_file
from prosima.service.portal.record_chain import record_chain
from prosima.service.portal.verdict_page import verdict_context
from prosima.service.uploads import safe_name
from prosima.service.work import answer_now, private_folder, uploading

router = APIRouter(tags=["portal"], include_in_schema=False)
log = logging.getLogger("prosima.service")

PORTAL = "/portal"
ACCEPTED = ".png,.dcm,.dicom,.nii,.nii.gz,.npy,image/png,application/dicom"


def _failure(request: Request, exc: Exception) -> Response:
    """The error page for ``exc``: the JSON API's status and message (private folders hidden), a
    generic message for anything unexpected (the traceback goes to the log)."""
    status, body = error_document(exc, list(getattr(request.state, FOLDERS_ATTRIBUTE, [])))
    if status == 500:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    refused = isinstance(exc, NegativeVerdict)
    return render("error.html", status, status=status, message=body["error"], refused=refused)


async def _page(request: Request, make: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await make()
    except Exception as exc:  # every failure becomes a page, never a traceback
        return _failure(request, exc)


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse(PORTAL, status_code=303)


def _verify_form(request: Request, status: int = 200, error: str | None = None) -> Response:
    archive = archive_client(request) is not None
    return render("verify.html", status, archive=archive, accepted=ACCEPTED, error=error)


@router.get(PORTAL)
async def verify_form(request: Request) -> Response:
    """The verify page: choose or drop an image, or name an archive's instance."""
    return _verify_form(request)


@router.post(f"{PORTAL}/verify")
async def verify_upload(request: Request, file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Verify an uploaded image and answer its verdict page."""

    async def make() -> Response:
        if file is None or not file.filename:
            return _verify_form(request, 400, "Choose an image file to verify (PNG, DICOM, NIfTI or .npy).")
        name = safe_name(file.filename)
        async with uploading(request) as folder:
            image = await folder.save(file)
            volume = is_volume(image)
        answer = await answer_now(
            request,
            lambda session: verification.verify_upload(session, image, name, folder.path, volume=volume),
            folder,
        )
        return render("verdict.html", **verdict_context(answer))

    return await _page(request, make)


@router.post(f"{PORTAL}/verify/instance")
async def verify_instance(request: Request, instance: Annotated[str, Form()] = "") -> Response:
    """Verify an instance of the service's archive (its Orthanc id or SOP Instance UID)."""

    async def make() -> Response:
        client = require_archive(request)
        if not instance.strip():
            raise InputError("give the instance to verify: its Orthanc id or its SOP Instance UID")
        folder = private_folder(request)
        answer = await answer_now(
            request,
            lambda session: verification.verify_archived(session, client, instance, folder.path),
            folder,
        )
        return render("verdict.html", **verdict_context(answer))

    return await _page(request, make)


@router.get(f"{PORTAL}/ledger")
async def ledger_page(request: Request, page: Annotated[int, Query(ge=1)] = 1) -> Response:
    """The ledger's blocks, newest first, and the search form."""

    async def make() -> Response:
        listing = await answer_now(request, lambda session: lookups.block_list(session, page))
        return render("ledger.html", kinds=lookups.SEARCH_KINDS, **listing)

    return await _page(request, make)


@router.get(f"{PORTAL}/blocks/{{height}}")
async def block_page(request: Request, height: int) -> Response:
    """One block: header, quorum certificate (checked) and its transactions decoded."""

    async def make() -> Response:
        view = await answer_now(request, lambda session: lookups.block_page(session, height))
        return render("block.html", view=view, quorum=quorum_summary(view["check"]))

    return await _page(request, make)


@router.get(f"{PORTAL}/records/{{tx}}")
async def record_page(request: Request, tx: str) -> Response:
    """One record: decoded, its chain, the restorations made from it, its proof and quorum."""

    async def make() -> Response:
        view: dict[str, Any] = await answer_now(request, lambda session: lookups.record_page(session, tx))
        proof = view["proof"]
        return render(
            "record.html",
            view=view,
            chain=record_chain(view),
            proof=proof_summary(proof["document"], proof["ok"], proof["problems"]),
            quorum=quorum_summary(view["block"]),
        )

    return await _page(request, make)


async def _search(request: Request, q: str, by: str) -> Response:
    async def make() -> Response:
        found = await answer_now(request, lambda session: lookups.search(session, by, q))
        if "goto" in found:
            return RedirectResponse(f"{PORTAL}/records/{found['goto']}", status_code=303)
        return render("search.html", query=q, kinds=lookups.SEARCH_KINDS, **found)

    return await _page(request, make)


@router.post(f"{PORTAL}/search")
async def search_form(
    request: Request, q: Annotated[str, Form(max_length=1024)] = "", by: Annotated[str, Form()] = "auto"
) -> Response:
    """Records by record id, image digest or keyed UID, asked through the form: a POST, so that a
    UID typed in stays out of URLs, browser history and access logs."""
    return await _search(request, q, by)


@router.get(f"{PORTAL}/search")
async def search_link(
    request: Request, q: Annotated[str, Query(max_length=1024)] = "", by: str = "auto"
) -> Response:
    """The same search as a link (a record id or a digest, as the pages link them)."""
    return await _search(request, q, by)


@router.get(f"{PORTAL}/proofs/{{tx}}")
async def proof_download(request: Request, tx: str) -> Response:
    """The record's inclusion proof document, to check offline: ``prosima ledger check-proof FILE``."""

    async def make() -> Response:
        document = await answer_now(request, lambda session: inclusion_proof(session.provenance.ledger, tx))
        headers = PAGE_HEADERS | {
            "Content-Disposition": f'attachment; filename="proof-{tx.lower()[:16]}.json"'
        }
        return Response(json.dumps(document, indent=2), media_type="application/json", headers=headers)

    return await _page(request, make)


@router.get(f"{PORTAL}/audit")
async def audit_page(request: Request) -> Response:
    """The audit report of the service's ledger (printable)."""

    async def make() -> Response:
        report = await answer_now(request, audit.audit_report)
        return render("audit.html", report=report)

    return await _page(request, make)


@router.get(f"{PORTAL}/static/{{name}}")
async def static(request: Request, name: str) -> Response:
    """The portal's stylesheet and script."""
    return await _page(request, lambda: _static(name))


async def _static(name: str) -> Response:
    return static_file(name)

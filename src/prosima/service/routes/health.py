"""Health: ``/healthz`` (the process answers) and ``/readyz`` (the ledger is open and the models are
loaded; 503 until then, or with the reason when opening failed). With an archive, ``/readyz`` also
says whether it answers and serves DICOMweb (``archive``); its state does not change the status:
uploads verify with the archive down."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from prosima.service.archive_link import archive_link
from prosima.service.state import service_state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@router.get("/readyz", summary="The ledger is open and the models are loaded")
async def readyz(request: Request) -> JSONResponse:
    worker = service_state(request).worker
    link = archive_link(request)
    archive: dict[str, Any] = {} if link is None else {"archive": await asyncio.to_thread(link.status)}
    if worker.ready:
        return JSONResponse({"ok": True, "ready": True} | archive)
    reason = "opening the ledger and loading the models" if worker.opening else worker.problem
    return JSONResponse(
        {"ok": False, "ready": False, "error": reason or "not started"} | archive, status_code=503
    )

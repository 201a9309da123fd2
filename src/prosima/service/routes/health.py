"""Health: ``/healthz`` (the process answers) and ``/readyz`` (the ledger is open and the models are
loaded; 503 until then, or with the reason when opening failed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from prosima.service.state import service_state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@router.get("/readyz", summary="The ledger is open and the models are loaded")
async def readyz(request: Request) -> JSONResponse:
    worker = service_state(request).worker
    if worker.ready:
        return JSONResponse({"ok": True, "ready": True})
    reason = "opening the ledger and loading the models" if worker.opening else worker.problem
    return JSONResponse({"ok": False, "ready": False, "error": reason or "not started"}, status_code=503)

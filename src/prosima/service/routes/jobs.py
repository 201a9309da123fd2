"""Jobs (open to anyone who has a job's id: ids are random): state, progress and the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from prosima.service.state import service_state

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", summary="A job's state, progress and (once finished) its answer")
async def job(request: Request, job_id: str) -> dict[str, Any]:
    """``state``: queued, running, succeeded (the answer in ``result``) or failed (the error in
    ``result``, ``status`` the HTTP status it would have had)."""
    return service_state(request).jobs.get(job_id).to_json()

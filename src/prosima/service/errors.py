"""How an error becomes the service's answer: the same classes the command line maps to exit codes.

A ``NegativeVerdict`` (the check ran and said no; a refusal) is an ordinary 200 answer with
``ok: false``. Refused input is a 4xx with ``{"error": message}``: 404 for what does not exist, 413
for a request over the limits, 422 for an upload that is not a usable image and for a request that
does not match the API's schema, 409 for a watcher of the archive already at work on the ledger,
400 for the rest. The archive failing (unreachable, refusing, answering nonsense) is a 502 with its
message; an instance it does not hold, a 404. Anything else is a 500 whose body says only that
the service failed; the traceback goes to the server's log, never into the response. Messages never
name the service's private upload folders.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from prosima.errors import InputError, NegativeVerdict, ProsimaError
from prosima.errors import NotFound as NotFound  # what does not exist: a 404 (raised below the service too)
from prosima.imaging.validation import ImageError
from prosima.pacs.orthanc_client import OrthancError, OrthancNotFound
from prosima.pacs.watch_state import WatchStateError
from prosima.service.json_safe import json_safe

log = logging.getLogger("prosima.service")

INTERNAL_MESSAGE = "the service failed while answering this request; the error is in the service's log"
FOLDERS_ATTRIBUTE = "private_folders"  # on request.state: the folders whose paths are hidden


class TooLarge(InputError):
    """A request over the service's limits (body size, number of files)."""


class NotReady(ProsimaError):
    """The service has not opened its ledger (yet, or at all)."""


class Unauthorized(ProsimaError):
    """A write without a valid API token."""

    def __init__(self, message: str, *, configured: bool = True) -> None:
        super().__init__(message)
        self.configured = configured


def status_of(exc: BaseException) -> int:
    """The HTTP status of an error (a negative verdict is an answer: 200)."""
    if isinstance(exc, NegativeVerdict):
        return 200
    if isinstance(exc, NotFound | OrthancNotFound):
        return 404
    if isinstance(exc, OrthancError):
        return 502
    if isinstance(exc, WatchStateError):
        return 409
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, ImageError):
        return 422
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, Unauthorized):
        return 401 if exc.configured else 403
    if isinstance(exc, NotReady):
        return 503
    return 500


def hide_folders(text: str, folders: Iterable[Path]) -> str:
    """``text`` with every private folder's path removed: a file anywhere inside one is named by its
    own name, the folder itself as ``upload``."""
    for folder in folders:
        inside = re.escape(str(folder)) + r"/(?:[^/\s'\"]+/)*"
        text = re.sub(inside, "", text).replace(str(folder), "upload")
    return text


def scrubbed(value: Any, folders: Sequence[Path]) -> Any:
    """``value`` (JSON-ready data) with every private folder's path removed from its strings."""
    if not folders:
        return value
    if isinstance(value, str):
        return hide_folders(value, folders)
    if isinstance(value, dict):
        return {k: scrubbed(v, folders) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v, folders) for v in value]
    return value


def error_document(exc: BaseException, folders: Sequence[Path] = ()) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of an error: ``{"error": message}`` (with ``ok: false`` and the
    error's details for a negative verdict), a generic message for anything unexpected."""
    status = status_of(exc)
    if status == 500:
        return status, {"error": INTERNAL_MESSAGE}
    message = hide_folders(str(exc), folders)
    body: dict[str, Any] = {"error": message}
    if isinstance(exc, NegativeVerdict):
        body = {"ok": False, "refused": True, "error": message} | exc.details()
    return status, json_safe(scrubbed(body, folders))


def _folders(request: Request) -> list[Path]:
    return list(getattr(request.state, FOLDERS_ATTRIBUTE, []))


def remember_private_folder(request: Request, folder: Path) -> None:
    """Hide ``folder``'s path from any error this request answers with."""
    setattr(request.state, FOLDERS_ATTRIBUTE, [*_folders(request), folder])


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "; ".join(parts) or "the request does not match the API"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as this module says."""

    async def prosima_error(request: Request, exc: Exception) -> JSONResponse:
        status, body = error_document(exc, _folders(request))
        if status == 500:
            log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # the server logs the exception with its traceback: it is raised again after this answer
        return JSONResponse({"error": INTERNAL_MESSAGE}, status_code=500)

    app.add_exception_handler(ProsimaError, prosima_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)

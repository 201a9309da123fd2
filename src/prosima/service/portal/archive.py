"""The archive the portal verifies instances from: the service's Orthanc client, which whoever
connects the service to an archive keeps on the application as ``app.state.archive`` (absent: the
portal has no archive, and offers no instance field)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from prosima.errors import InputError

if TYPE_CHECKING:
    from prosima.pacs.orthanc_client import OrthancClient

ARCHIVE_ATTRIBUTE = "archive"  # on app.state


def archive_client(request: Request) -> OrthancClient | None:
    """The service's archive client, or ``None`` when the service has none."""
    client: OrthancClient | None = getattr(request.app.state, ARCHIVE_ATTRIBUTE, None)
    return client


def require_archive(request: Request) -> OrthancClient:
    """The service's archive client; refused (naming the missing connection) when it has none."""
    client = archive_client(request)
    if client is None:
        raise InputError("this service is not connected to an archive: it verifies uploaded files only")
    return client

"""The service's connection to its archive: a client of an existing Orthanc (its URL and login from
the server's settings, never from a request), or a private Orthanc the service starts in a folder
and stops when it stops, whose login it writes there (mode 0600) for the tools that store into it."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request

from prosima.errors import InputError
from prosima.service.settings import ServiceSettings

if TYPE_CHECKING:
    from prosima.pacs.orthanc_client import OrthancClient
    from prosima.pacs.orthanc_server import OrthancServer

log = logging.getLogger("prosima.service")

LINK_ATTRIBUTE = "archive_link"  # on app.state, when the service has an archive
DICOMWEB_PLUGIN = "dicom-web"
STATUS_TIMEOUT_S = 3.0


@dataclass
class ArchiveLink:
    """The archive's ``client``; ``server`` and ``credentials``: the private Orthanc this service
    runs and the login file written for it (``None`` for an existing archive)."""

    client: OrthancClient
    server: OrthancServer | None = None
    credentials: Path | None = None

    @classmethod
    def open(cls, settings: ServiceSettings) -> ArchiveLink | None:
        """The archive ``settings`` name (``None``: none); a private one is started here."""
        if settings.archive_folder is not None:
            return cls._private(settings.archive_folder)
        if not settings.has_archive:
            return None
        return cls(_existing_client(settings.orthanc, settings.credentials))

    @classmethod
    def _private(cls, folder: Path) -> ArchiveLink:
        from prosima.pacs.credentials import CREDENTIALS_FILE, write_credentials
        from prosima.pacs.orthanc_server import start_orthanc

        folder = folder.resolve()  # Orthanc runs in the folder: a relative path would not be found
        server = start_orthanc(folder)
        try:
            credentials = write_credentials(folder / CREDENTIALS_FILE, server.login())
        except BaseException:
            server.stop()
            raise
        return cls(server.client(), server, credentials)

    @property
    def store_command(self) -> str | None:
        """How a modality stores into the private archive over DICOM (``None``: an existing one)."""
        from prosima.pacs.orthanc_server import MODALITY_AET

        if self.server is None:
            return None
        return (
            f"storescu -aet {MODALITY_AET} -aec {self.server.aet} 127.0.0.1 {self.server.dicom_port} FILE.dcm"
        )

    def status(self) -> dict[str, Any]:
        """Whether the archive answers now (``/system``), its version and whether it serves DICOMweb;
        ``ok`` false with the reason when it does not answer."""
        from prosima.pacs.orthanc_client import OrthancError

        quick = dataclasses.replace(self.client, timeout=STATUS_TIMEOUT_S)
        answer: dict[str, Any] = {"url": self.client.url, "private": self.server is not None}
        try:
            system = quick.system()
            plugins = quick.plugins()
        except OrthancError as exc:
            return answer | {"ok": False, "error": str(exc)}
        return answer | {
            "ok": True,
            "version": system.get("Version"),
            "aet": system.get("DicomAet"),
            "dicom_web": DICOMWEB_PLUGIN in plugins,
        }

    def close(self) -> None:
        """Stop the private Orthanc, if this service started one (idempotent)."""
        if self.server is not None:
            self.server.stop()


def _existing_client(orthanc: str | None, credentials: Path | None) -> OrthancClient:
    """A client of the archive at ``orthanc`` (else the credentials file's url), logged in with the
    credentials file's user when given."""
    from prosima.pacs.credentials import read_credentials
    from prosima.pacs.orthanc_client import OrthancClient

    user = password = None
    if credentials is not None:
        login = read_credentials(credentials)
        orthanc = orthanc or login.url
        user, password = login.user, login.password
    if orthanc is None:
        raise InputError("--orthanc URL: which archive? (or a --credentials file that names its url)")
    return OrthancClient(orthanc, user, password)


def archive_link(request: Request) -> ArchiveLink | None:
    """The archive connection of the service the request came to (``None``: it has none)."""
    return archive_of(request.app)


def archive_of(app: FastAPI) -> ArchiveLink | None:
    """The archive connection of the service ``app`` (``None``: it has none)."""
    link: ArchiveLink | None = getattr(app.state, LINK_ATTRIBUTE, None)
    return link

"""A private Orthanc archive for tests and the demo: the Debian ``Orthanc`` binary (with the DICOMweb
plugin when it is installed) run on loopback ports, with its configuration, storage and index in
one temporary folder, HTTP authentication on (a generated user and password) and remote access off.
Its id (``archive_id``) is kept in its storage folder, so a restart on new ports is the same archive.

Orthanc has no option to bind its ports to one address, so the loopback rule is enforced the two
ways it offers: ``RemoteAccessAllowed: false`` (the REST API answers loopback clients only) and,
for DICOM, stores accepted only from the registered calling AE titles at 127.0.0.1
(``DicomAlwaysAllowStore: false``, ``DicomCheckModalityHost: true``)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prosima.errors import InputError
from prosima.pacs.archive_id import archive_id
from prosima.pacs.credentials import ArchiveLogin
from prosima.pacs.orthanc_client import OrthancClient, OrthancError

ORTHANC_BINARY = "Orthanc"
DICOMWEB_PLUGIN_FOLDERS = (
    Path("/usr/share/orthanc/plugins"),
    Path("/usr/lib/orthanc"),
    Path("/usr/local/share/orthanc/plugins"),
)
DICOMWEB_PLUGIN_PREFIX = "libOrthancDicomWeb.so"
ARCHIVE_AET = "PROSIMA_PACS"
MODALITY_AET = "PROSIMA_SCU"  # the calling AE title a store must come from (with host 127.0.0.1)
LOOPBACK = "127.0.0.1"
STORAGE_FOLDER = "storage"  # in the archive's folder: Orthanc's files and index, and the archive's id
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
START_ATTEMPTS = 3
_LOG_TAIL = 4000


class OrthancStartError(InputError, RuntimeError):
    """Orthanc is not installed, or did not start and answer ``/system`` in time."""


def find_orthanc() -> str | None:
    """The path of the ``Orthanc`` binary on ``PATH`` (``/usr/sbin`` included), or ``None``."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which(ORTHANC_BINARY, path=search)


def find_dicomweb_plugin() -> Path | None:
    """The installed DICOMweb plugin library (``orthanc-dicomweb``), or ``None``."""
    for folder in DICOMWEB_PLUGIN_FOLDERS:
        if folder.is_dir():
            found = sorted(p for p in folder.iterdir() if p.name.startswith(DICOMWEB_PLUGIN_PREFIX))
            if found:
                return found[0]
    return None


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on the loopback interface that are free now (the OS picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind((LOOPBACK, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    """A TCP port on the loopback interface that is free now."""
    return free_ports(1)[0]


@dataclass(frozen=True)
class OrthancConfig:
    """What the private archive is made with: its folder, ports, user, and which calling AE
    titles may store into it (from 127.0.0.1). ``overwrite_instances``: a store of a SOP Instance
    UID already held replaces the stored one (Orthanc's default, ``False``, keeps the first)."""

    folder: Path
    http_port: int
    dicom_port: int
    user: str = "prosima"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    modalities: tuple[str, ...] = (MODALITY_AET,)
    overwrite_instances: bool = False
    dicomweb_plugin: Path | None = None

    @property
    def storage(self) -> Path:
        """Where Orthanc keeps the archive's files and index (and the archive's id)."""
        return self.folder / STORAGE_FOLDER

    def document(self) -> dict[str, object]:
        """Orthanc's JSON configuration for this archive."""
        storage = self.storage
        doc: dict[str, object] = {
            "Name": "PROSIMA archive",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "StorageCompression": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "SslEnabled": False,
            "WebDavEnabled": False,
            "ExecuteLuaEnabled": False,
            "RestApiWriteToFileSystemEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": ARCHIVE_AET,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowFindWorklist": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {
                aet.lower(): {
                    "AET": aet,
                    "Host": LOOPBACK,
                    "Port": 104,  # never called: these modalities only store into the archive
                    "AllowEcho": True,
                    "AllowStore": True,
                    "AllowFind": False,
                    "AllowGet": False,
                    "AllowMove": False,
                }
                for aet in self.modalities
            },
            "OverwriteInstances": self.overwrite_instances,
            "SaveJobs": False,
            "HttpThreadsCount": 8,
            "ConcurrentJobs": 1,
            "Plugins": [str(self.dicomweb_plugin)] if self.dicomweb_plugin else [],
        }
        if self.dicomweb_plugin:
            doc["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": False}
        return doc


@dataclass
class OrthancServer:
    """A running private Orthanc: its configuration, process, log file and id (kept in its storage)."""

    config: OrthancConfig
    process: subprocess.Popen[bytes]
    log: Path
    archive_id: str | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.config.http_port}"

    @property
    def dicom_port(self) -> int:
        return self.config.dicom_port

    @property
    def aet(self) -> str:
        return ARCHIVE_AET

    def client(self, timeout: float = 30.0) -> OrthancClient:
        """A REST client of this archive, logged in as its user."""
        return OrthancClient(
            self.url, self.config.user, self.config.password, timeout=timeout, archive_id=self.archive_id
        )

    def login(self) -> ArchiveLogin:
        """What a credentials file keeps of this archive: its address, login, id and DICOM port."""
        extra = {
            "dicom_port": self.dicom_port,
            "aet": self.aet,
            "calling_aet": MODALITY_AET,
            "archive_id": self.archive_id,
        }
        return ArchiveLogin(self.url, self.config.user, self.config.password, extra)

    def log_tail(self) -> str:
        """The end of Orthanc's log (for error messages)."""
        try:
            return self.log.read_text(errors="replace")[-_LOG_TAIL:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop Orthanc (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``); idempotent."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)


class _ExitedEarly(OrthancStartError):
    """Orthanc exited before answering (a port taken meanwhile, among other causes)."""


def _wait_ready(server: OrthancServer, timeout: float) -> None:
    """Wait until ``/system`` answers as Orthanc, or fail naming why (exit, timeout), with its log."""
    client = server.client(timeout=2.0)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise _ExitedEarly(
                f"Orthanc exited with status {server.process.returncode} before answering; "
                f"its log ends:\n{server.log_tail()}"
            )
        try:
            client.system()
            return
        except OrthancError as exc:
            last = str(exc)
        time.sleep(0.2)
    server.stop()
    raise OrthancStartError(
        f"Orthanc did not answer /system within {timeout:.0f} s ({last}); log:\n{server.log_tail()}"
    )


def _launch(binary: str, config: OrthancConfig, ident: str, timeout: float) -> OrthancServer:
    """Write ``config`` (mode 0600: it holds the password), start Orthanc on it, wait until it answers."""
    config_path = config.folder / "orthanc.json"
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config.document(), f, indent=2)
    log = config.folder / "orthanc.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [binary, str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=config.folder,
            start_new_session=True,  # a Ctrl-C meant for the caller is not Orthanc's
        )
    server = OrthancServer(config, process, log, ident)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def start_orthanc(
    folder: Path,
    *,
    modalities: Sequence[str] = (MODALITY_AET,),
    overwrite_instances: bool = False,
    timeout: float = START_TIMEOUT_S,
) -> OrthancServer:
    """Start a private Orthanc whose configuration, storage and log live in ``folder`` (made), on
    free loopback ports, and wait until it answers; tried again on other ports when it exits at
    once (a port taken between choosing and binding it). The archive's id is read from its storage
    (made there at its first start). Refused when the binary is not installed."""
    binary = find_orthanc()
    if binary is None:
        raise OrthancStartError(
            "the Orthanc binary is not installed (Debian: apt-get install orthanc orthanc-dicomweb)"
        )
    folder = Path(folder).resolve()  # Orthanc runs inside it, so its configuration path must be absolute
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ident = archive_id(folder / STORAGE_FOLDER)
    attempts = 0
    while True:
        http_port, dicom_port = free_ports(2)
        config = OrthancConfig(
            folder,
            http_port,
            dicom_port,
            modalities=tuple(modalities),
            overwrite_instances=overwrite_instances,
            dicomweb_plugin=find_dicomweb_plugin(),
        )
        try:
            return _launch(binary, config, ident, timeout)
        except _ExitedEarly:
            attempts += 1
            if attempts == START_ATTEMPTS:
                raise


@contextmanager
def running_orthanc(
    folder: Path | None = None,
    *,
    modalities: Sequence[str] = (MODALITY_AET,),
    overwrite_instances: bool = False,
) -> Iterator[OrthancServer]:
    """A private Orthanc for the duration of a ``with`` block, in ``folder`` or else in a new
    temporary folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="prosima-orthanc-") as tmp:
        server = start_orthanc(
            folder or Path(tmp), modalities=modalities, overwrite_instances=overwrite_instances
        )
        try:
            yield server
        finally:
            server.stop()

"""What a running service is configured with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prosima.errors import InputError

MiB = 1024 * 1024
DEFAULT_MAX_BODY = 512 * MiB  # a whole DICOM series in one upload
DEFAULT_MAX_FILES = 1000  # the multipart parser's own ceiling
DEFAULT_KEPT_JOBS = 256
DEFAULT_KEPT_OUTPUTS = 64


@dataclass(frozen=True)
class ServiceSettings:
    """One service: the ``ledger`` it holds open and commits to (``consensus``: ``inproc``, the
    ledger's nodes run consensus here, or ``direct``, every local key signs), the node registry it
    must match (``trusted``), the API ``tokens`` file that authorizes writes (``None``: every write
    is refused), the largest request body and the most files one request may upload, how many
    finished jobs and restored files it keeps, the folder its uploads and outputs go under
    (``None``: the system's temporary folder), where the certificates that sign C2PA manifests
    are kept (``None``: none are signed), and how many threads torch computes with (``None``: its
    default, one per core). The archive beside it: an existing Orthanc (``orthanc``, its REST URL,
    and/or a ``credentials`` file with its login), or a private Orthanc the service runs in
    ``archive_folder`` while it runs; ``watch_interval`` seconds between polls of its changes feed
    by the follower that anchors what is stored into it (0: no follower)."""

    ledger: Path
    tokens: Path | None = None
    consensus: str = "inproc"
    trusted: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_files: int = DEFAULT_MAX_FILES
    kept_jobs: int = DEFAULT_KEPT_JOBS
    kept_outputs: int = DEFAULT_KEPT_OUTPUTS
    work_dir: Path | None = None
    c2pa_certs: Path | None = None
    torch_threads: int | None = None
    orthanc: str | None = None
    credentials: Path | None = None
    archive_folder: Path | None = None
    watch_interval: float = 0.0

    def __post_init__(self) -> None:
        if self.consensus not in ("inproc", "direct"):
            raise InputError(f"the service commits --consensus inproc or direct, got {self.consensus!r}")
        if self.max_body_bytes < 1:
            raise InputError(f"--max-body must be at least 1 byte, got {self.max_body_bytes}")
        if not 1 <= self.max_files <= DEFAULT_MAX_FILES:
            raise InputError(f"--max-files must be between 1 and {DEFAULT_MAX_FILES}, got {self.max_files}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise InputError(f"--torch-threads must be at least 1, got {self.torch_threads}")
        if self.kept_jobs < 1 or self.kept_outputs < 1:
            raise InputError("the service must keep at least one finished job and one restored file")
        if self.archive_folder is not None and (self.orthanc is not None or self.credentials is not None):
            raise InputError(
                "give either an existing archive (--orthanc URL / --credentials FILE) or --archive "
                "FOLDER for a private one, not both"
            )
        if not self.watch_interval >= 0:
            raise InputError(f"--watch-interval must be 0 (no follower) or more, got {self.watch_interval}")
        if self.watch_interval > 0 and not self.has_archive:
            raise InputError("--watch-interval follows an archive: give --orthanc/--credentials or --archive")

    @property
    def has_archive(self) -> bool:
        """Whether the service is connected to an archive."""
        return self.archive_folder is not None or self.orthanc is not None or self.credentials is not None

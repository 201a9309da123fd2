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
    default, one per core)."""

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

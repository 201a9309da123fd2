"""``prosima serve`` as a child process, for the commands that drive the real service from outside
(the latency benchmark, the demo through the archive): started on a free loopback port, its output
written to a log file, followed until ``/readyz`` answers 200, and stopped with SIGINT (the
service's own clean shut-down, which also stops a private archive) when the block ends."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LISTENING = re.compile(r"listening on (http://[^\s]+)")
STORE = re.compile(r"store: storescu -aet (\S+) -aec (\S+) (\S+) (\d+) ")


class ChildServiceError(RuntimeError):
    """The service did not start, or was not ready in time; the message quotes its log."""


@dataclass(frozen=True)
class DicomPeer:
    """Where a modality stores into the service's private archive over DICOM."""

    calling_aet: str
    called_aet: str
    host: str
    port: int


@dataclass(frozen=True)
class ChildService:
    """The running service: its base URL, its private archive's DICOM peer (when it runs one) and
    its log file."""

    base: str
    log: Path
    dicom: DicomPeer | None = None


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_for_lines(process: subprocess.Popen[bytes], log: Path, archive: bool, deadline: float) -> str:
    """The log once it holds the lines the service prints before serving."""
    while True:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if LISTENING.search(text) and (not archive or STORE.search(text)):
            return text
        if process.poll() is not None:
            raise ChildServiceError(f"prosima serve stopped (exit {process.returncode}):\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise ChildServiceError(f"prosima serve printed no address in time:\n{_tail(log)}")
        time.sleep(0.05)


def _wait_ready(process: subprocess.Popen[bytes], base: str, log: Path, deadline: float) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=60) as client:
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise ChildServiceError(f"prosima serve stopped (exit {process.returncode}):\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ChildServiceError(f"prosima serve was not ready in time:\n{_tail(log)}")
            time.sleep(0.1)


@contextmanager
def child_service(
    ledger: Path,
    log: Path,
    *,
    tokens: Path | None = None,
    archive: Path | None = None,
    threads: int | None = None,
    log_level: str = "warning",
    timeout: float = 600.0,
) -> Iterator[ChildService]:
    """``prosima serve`` on ``ledger`` (writes with ``tokens``; a private archive in ``archive``) on
    a free loopback port, until the block ends."""
    command = [sys.executable, "-m", "prosima.cli", "serve", "--ledger", str(ledger), "--port", "0"]
    command += ["--log-level", log_level]
    if tokens is not None:
        command += ["--tokens", str(tokens)]
    if archive is not None:
        command += ["--archive", str(archive)]
    if threads is not None:
        command += ["--torch-threads", str(threads)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        text = _wait_for_lines(process, log, archive is not None, deadline)
        found = LISTENING.search(text)
        assert found is not None  # _wait_for_lines returned only once it was there
        base = found.group(1)
        peer = STORE.search(text)
        dicom = None if peer is None else DicomPeer(peer[1], peer[2], peer[3], int(peer[4]))
        _wait_ready(process, base, log, deadline)
        yield ChildService(base, log, dicom)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

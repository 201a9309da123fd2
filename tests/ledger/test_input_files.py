"""``prosima ledger append`` and ``check-proof`` read their files with a bound: a FIFO, a device or a
folder is refused before anything is read, a file over the limit is refused after at most the limit
plus one byte, and standard input ('-') still works, bounded. A refused input appends nothing.

The inputs that a regression would read forever (a FIFO) or for gigabytes (``/dev/zero``, a sparse
2 GiB file) are given to the command in a subprocess with a timeout, so that it cannot hang the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.input_files import MAX_DOCUMENT, InputFileError, read_bounded
from prosima.ledger.log.transaction import MAX_PAYLOAD

runner = CliRunner()
TIMEOUT_S = 60


def run(*args: object, input: bytes | str | None = None):
    return runner.invoke(app, ["ledger", *map(str, args)], input=input)


def run_guarded(*args: object, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """The ledger command in a fresh process, killed after TIMEOUT_S (a regression fails, not hangs)."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "prosima.cli", "ledger", *map(str, args)],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"'prosima ledger {' '.join(map(str, args))}' still reading after {TIMEOUT_S} s")


@pytest.fixture
def ledger(tmp_path) -> Path:
    path = tmp_path / "led"
    assert run("init", path, "--nodes", 4).exit_code == 0
    return path


def blocks(ledger: Path) -> int:
    return json.loads(run("stats", "-d", ledger, "--json", "-").stdout)["blocks"]


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def sparse(tmp_path) -> Path:
    path = tmp_path / "big.bin"
    with path.open("wb") as fh:
        fh.truncate(2**31)  # 2 GiB that cost no disk
    return path


def assert_refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(ledger, fifo):
    assert_refused(run_guarded("append", fifo, "-d", ledger), f"payload {fifo}", "FIFO", "not a regular file")
    assert_refused(run_guarded("check-proof", fifo), f"proof file {fifo}", "FIFO")
    assert blocks(ledger) == 0


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_device_is_refused_and_stdin_from_it_is_bounded(ledger):
    assert_refused(run_guarded("append", "/dev/zero", "-d", ledger), "/dev/zero", "character device")
    assert_refused(run_guarded("check-proof", "/dev/zero"), "/dev/zero", "character device")
    with open("/dev/zero", "rb") as zero:  # '-' reads stdin: at most the limit plus one byte
        assert_refused(run_guarded("append", "-", "-d", ledger, stdin=zero.fileno()), "standard input")
    with open("/dev/zero", "rb") as zero:
        assert_refused(run_guarded("check-proof", "-", stdin=zero.fileno()), f"{MAX_DOCUMENT:,} bytes")
    assert blocks(ledger) == 0


def test_a_sparse_file_over_the_limit_is_refused_unread(ledger, sparse):
    assert_refused(
        run_guarded("append", sparse, "-d", ledger),
        f"payload {sparse}",
        f"{MAX_PAYLOAD:,} bytes",
        f"{2**31:,} bytes",
    )
    assert_refused(run_guarded("check-proof", sparse), f"proof file {sparse}", f"{MAX_DOCUMENT:,} bytes")
    assert blocks(ledger) == 0


def test_a_folder_is_refused_and_the_limit_is_inclusive(ledger, tmp_path):
    for args in (("append", tmp_path, "-d", ledger), ("check-proof", tmp_path)):
        res = run(*args)
        assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
        assert f"{tmp_path} is a folder" in res.output and "Traceback" not in res.output
    over = run("append", "-", "-d", ledger, input=b"x" * (MAX_PAYLOAD + 1))
    assert over.exit_code == 2 and "on standard input is larger than" in over.output
    assert blocks(ledger) == 0
    exact = tmp_path / "exact.bin"
    exact.write_bytes(b"y" * MAX_PAYLOAD)
    assert run("append", exact, "-d", ledger).exit_code == 0
    assert run("append", "-d", ledger, input="from stdin").exit_code == 0
    assert blocks(ledger) == 2


def test_read_bounded_reads_at_most_the_limit_plus_one(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert read_bounded(path, 3, "payload") == b"abc"
    with pytest.raises(
        InputFileError, match=r"payload .*f\.bin is larger than the limit of 2 bytes \(3 bytes\)"
    ):
        read_bounded(path, 2, "payload")
    assert issubclass(InputFileError, LedgerError)
    with pytest.raises(InputFileError, match="does not exist"):
        read_bounded(tmp_path / "missing", 10, "payload")

    class Stdin:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def read(self, n: int = -1) -> bytes:
            self.asked.append(n)
            return b"z" * n

    stdin = Stdin()
    monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": stdin})())
    with pytest.raises(InputFileError, match="standard input"):
        read_bounded("-", 100, "payload")
    assert stdin.asked == [101]

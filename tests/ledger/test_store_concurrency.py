"""Several processes on one ledger directory: readers see whole commits, writers wait their turn."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prosima.ledger.errors import StoreError
from prosima.ledger.log.directory import STORE_FILE, Entry, Ledger
from prosima.ledger.log.store import Store

WRITER = r"""
import sys, time
from prosima.ledger.log.directory import Entry, Ledger

with Ledger.open(sys.argv[1]) as ledger:
    print("ready", flush=True)
    end, i = time.monotonic() + float(sys.argv[2]), 0
    while time.monotonic() < end:
        ledger.append([Entry(f"w{i}.{j}".encode(), "data", bytes([i % 256, j])) for j in range(1 + i % 7)])
        i += 1
        time.sleep(0.002)
print("done", i, flush=True)
"""

APPENDER = r"""
import sys
from prosima.ledger.log.directory import Entry, Ledger

name, n = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    with Ledger.open(sys.argv[1]) as ledger:  # open, append, close: what each CLI append does
        ledger.append([Entry(f"{name}.{i}".encode(), "data", name.encode())])
print("done", flush=True)
"""


def _start(script: str, *args: object) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    assert line.startswith("ready"), child.communicate()[1]
    return child


def test_readers_beside_a_writer_see_no_fault(ledger_path):
    writer = _start(WRITER, ledger_path, 2.5)
    problems: list[str] = []
    heights = set()
    try:
        for i in range(30):
            try:
                mode = ("incremental", "full")[i % 2]
                with Ledger.open(ledger_path, verify=mode) as ledger:
                    report = ledger.verify()
                    heights.add(ledger.store.height)
                    stats = ledger.store.stats()
                    registry = ledger.registry
                if not report.ok:
                    problems.append(f"Ledger verify: {report.fault}")
                if stats["transactions"] < 21:
                    problems.append(f"stats: {stats}")
                with Store.open(ledger_path / STORE_FILE, registry) as store:
                    report = store.verify()
                    store.block(store.height)
                if not report.ok:
                    problems.append(f"Store verify: {report.fault}")
            except StoreError as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
            if writer.poll() is not None:
                break
    finally:
        _out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert not problems, problems
    assert len(heights) > 1  # the writer did commit while we read
    with Ledger.open(ledger_path, verify="full") as ledger:
        assert ledger.verify().ok


def test_concurrent_appends_all_succeed(tmp_path):
    path = tmp_path / "ledger"
    Ledger.init(path, nodes=4).close()
    procs, per = 4, 8
    children = [_start(APPENDER, path, f"p{k}", per) for k in range(procs)]
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0 and "done" in out, err
    with Ledger.open(path, verify="full") as ledger:
        report = ledger.verify()
        assert report.ok, report.fault
        assert report.blocks == procs * per == ledger.store.stats()["blocks"]
        for k in range(procs):
            assert len(ledger.store.txs_by_key(f"p{k}".encode())) == per
        assert ledger.store.checkpoint().height == procs * per - 1


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path / STORE_FILE, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def test_a_writer_waits_a_bounded_time(ledger_path, monkeypatch):
    with Ledger.open(ledger_path, lock_timeout=0.2) as ledger:
        other = _hold_write_lock(ledger_path)
        start = time.monotonic()
        with pytest.raises(
            StoreError, match=r"the ledger is busy: another writer held it for more than 0\.2 s"
        ):
            ledger.append([Entry(b"x")])
        assert 0.15 < time.monotonic() - start < 5
        assert ledger.store.height == 5
        other.execute("ROLLBACK")
        ledger.append([Entry(b"x")])
        assert ledger.store.height == 6
        other.close()
    monkeypatch.setenv("PROSIMA_LEDGER_LOCK_TIMEOUT", "0.1")
    with Ledger.open(ledger_path) as ledger:
        other = _hold_write_lock(ledger_path)
        with pytest.raises(StoreError, match=r"more than 0\.1 s"):
            ledger.append([Entry(b"y")])
        other.close()
    monkeypatch.setenv("PROSIMA_LEDGER_LOCK_TIMEOUT", "soon")
    with pytest.raises(StoreError, match="PROSIMA_LEDGER_LOCK_TIMEOUT"):
        Ledger.open(ledger_path)
    assert os.environ["PROSIMA_LEDGER_LOCK_TIMEOUT"] == "soon"

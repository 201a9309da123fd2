"""Kill a writer with SIGKILL at random moments: each block is in the store whole or not at all."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from prosima.ledger.log.directory import Ledger

KILLS = 30

CHILD = r"""
import random, sys
from prosima.ledger.log.directory import Entry, Ledger

rng = random.Random(int(sys.argv[2]))
ledger = Ledger.open(sys.argv[1])
print("ready", ledger.store.height, flush=True)
while True:
    n = rng.randrange(1, 300)
    entries = [Entry(rng.randbytes(rng.randrange(1, 2000)), "data", rng.randbytes(8)) for _ in range(n)]
    block = ledger.append(entries)
    print("committed", block.header.height, n, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_while_appending_leaves_whole_blocks(tmp_path):
    path = tmp_path / "ledger"
    Ledger.init(path, nodes=4).close()
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    mid_commit_possible = 0
    for attempt in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(attempt)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            first = child.stdout.readline().split()
            assert first and first[0] == "ready", child.stderr.read()
            committed = int(first[1])
            for _ in range(rng.randrange(0, 4)):
                line = child.stdout.readline().split()
                assert line and line[0] == "committed", child.stderr.read()
                committed = int(line[1])
            time.sleep(rng.uniform(0, 0.04))
        finally:
            child.send_signal(signal.SIGKILL)
            rest, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        for line in rest.splitlines():
            if line.startswith("committed"):
                committed = int(line.split()[1])
        with Ledger.open(path) as ledger:  # verifies every block since the last checkpoint
            height = ledger.store.height
            assert height in (committed, committed + 1), (height, committed)
            mid_commit_possible += height == committed + 1
            stored = ledger.store._conn.execute("SELECT count(*) FROM txs").fetchone()[0]
            assert stored == ledger.store.log.size
    with Ledger.open(path, verify="full") as ledger:
        report = ledger.verify()
        assert report.ok, report.fault
        assert report.blocks >= KILLS // 2

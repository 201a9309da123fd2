"""``prosima serve`` as a process: it listens on a free loopback port, answers ``/healthz`` at once
and ``/readyz`` once the ledger is open, verifies over real HTTP, and stops on SIGTERM. Refused
before it listens: no ledger, a folder that is not one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
from typer.testing import CliRunner

from prosima.cli import app as cli

READY_SECONDS = 180.0


def test_serve_runs_and_stops(service_ledger):
    ledger, originals, _, _ = service_ledger
    env = os.environ | {"OMP_NUM_THREADS": "1"}  # two test processes share two cores
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prosima.cli",
            "serve",
            "--ledger",
            str(ledger),
            "--port",
            "0",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert found, line
        base = found.group(1)
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + READY_SECONDS
            while True:
                try:
                    assert client.get("/healthz").json() == {"ok": True}
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, client.get("/readyz").text
                time.sleep(0.2)
            files = {"file": (originals[0].name, originals[0].read_bytes())}
            assert client.post("/v1/verify", files=files).json()["ok"] is True
            refused = client.post("/v1/anchor", files={"files": ("a.png", b"x")})
            assert refused.status_code == 403  # started without --tokens: no writes
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises it once shut down
    assert "Traceback" not in output


def test_serve_refuses_what_it_cannot_serve(tmp_path):
    res = CliRunner().invoke(cli, ["serve", "--ledger", str(tmp_path), "--port", "0"])
    assert res.exit_code == 2 and "is not a ledger directory" in res.output

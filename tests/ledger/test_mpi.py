"""The MPI backend: ``mpirun -n 4`` commits blocks and reaches the in-process result for the seed,
also with the nodes spread over fewer ranks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from prosima.ledger.sim.network import Network, NetworkConfig
from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids
from prosima.optional import available

MPIRUN = shutil.which("mpirun")
pytestmark = pytest.mark.skipif(
    MPIRUN is None or not available("mpi4py"),
    reason="needs Open MPI (Debian openmpi-bin, libopenmpi-dev) and mpi4py (pip install 'prosima[mpi]')",
)

ARGS = ["--images", "9", "--batch", "2", "--seed", "5", "--shards", "16"]


def _mpirun(n: int, *args: str, tmp_path) -> subprocess.CompletedProcess:
    cmd = [MPIRUN, "--oversubscribe", "--bind-to", "none", "-n", str(n)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    cmd += [sys.executable, "-m", "prosima.cli", "ledger", "network", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path)


def _inproc(byzantine: str = "") -> dict:
    cfg = NetworkConfig(nodes=4, seed=5, batch=2, byzantine=byzantine)
    wl = make_workload(9, nodes=4, seed=5, shard_ids=stand_in_shard_ids(16))
    with Network(cfg) as net:
        return net.run(wl)


@pytest.mark.parametrize("byzantine", ["", "crash-leader@hub"])
def test_mpirun_4_matches_the_in_process_run(tmp_path, byzantine):
    out = tmp_path / "mpi.json"
    proc = _mpirun(4, *ARGS, "--byzantine", byzantine, "--json", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("mpi network: 4 nodes on 4 process(es)") == 1  # only rank 0 reports
    mpi = json.loads(out.read_text())
    local = _inproc(byzantine)
    assert mpi["backend"] == "mpi" and local["backend"] == "inproc" and mpi["ranks"] == 4
    assert mpi["agreement"] and mpi["commits"]["blocks"] >= 4
    assert mpi["tip"] == local["tip"]
    assert mpi["commits"] == local["commits"]
    assert mpi["storage"]["per_node_bytes"] == local["storage"]["per_node_bytes"]
    assert mpi["faults_seen"] == local["faults_seen"]


def test_nodes_spread_over_fewer_ranks_give_the_same_chain(tmp_path):
    out = tmp_path / "mpi2.json"
    proc = _mpirun(2, "--nodes", "4", *ARGS, "--json", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mpi = json.loads(out.read_text())
    assert mpi["ranks"] == 2 and mpi["tip"] == _inproc()["tip"]


def test_fewer_nodes_than_ranks_is_refused(tmp_path):
    proc = _mpirun(3, "--nodes", "2", "--images", "1", tmp_path=tmp_path)
    assert proc.returncode != 0 and "need nodes >= ranks" in proc.stderr

"""Run N consensus nodes over a stream of anchoring transactions (in this process, or spread over the
ranks of ``mpirun``) and report commits, faults, timings and storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prosima.errors import InputError

BACKENDS = ("auto", "inproc", "mpi")


@dataclass(frozen=True)
class NetworkRun:
    """What to simulate (the options of ``prosima ledger network``)."""

    nodes: int | None = None  # None: the MPI ranks, else 20
    seed: int = 0
    images: int = 200
    batch: int = 1
    system: str = "gft"
    hubs: int = 3
    replication: int = 3
    erasure: str | None = None  # "k,m": erasure-code shards instead of copying them
    voting: str = "count"
    byzantine: str = ""
    backend: str = "auto"
    shards: int = 16
    shard_bytes: int = 4096


def simulate_network(run: NetworkRun) -> dict[str, Any] | None:
    """The network's report (``None`` on MPI ranks other than 0, which report nothing)."""
    from prosima.ledger.consensus.erasure import ErasureCode
    from prosima.ledger.consensus.mpi import MpiTransport, launched_by_mpirun
    from prosima.ledger.consensus.voting import RULES
    from prosima.ledger.sim.network import Network, NetworkConfig
    from prosima.ledger.sim.workload import make_workload, stand_in_shard_ids

    if run.backend not in BACKENDS:
        raise InputError(f"--backend must be auto, inproc or mpi, got {run.backend!r}")
    if run.voting not in RULES[:2]:
        raise InputError(f"--voting must be count or degree-capped, got {run.voting!r}")
    use_mpi = run.backend == "mpi" or (run.backend == "auto" and launched_by_mpirun())
    nodes = run.nodes
    transport = None
    if use_mpi:
        transport = MpiTransport(nodes=nodes)
        nodes = transport.size
    code = ErasureCode.parse(run.erasure) if run.erasure else None
    config = NetworkConfig(
        nodes=nodes or 20,
        seed=run.seed,
        system=run.system,
        batch=run.batch,
        hubs=run.hubs,
        replication=run.replication,
        erasure=(code.k, code.m) if code else None,
        shard_bytes=run.shard_bytes,
        voting=run.voting,
        byzantine=run.byzantine,
    )
    workload = make_workload(
        run.images, nodes=config.nodes, seed=run.seed, shard_ids=stand_in_shard_ids(run.shards)
    )
    with Network(config, transport) as net:
        report: dict[str, Any] | None = net.run(workload)
    return report

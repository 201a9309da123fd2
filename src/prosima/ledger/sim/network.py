"""A ledger network: N consensus nodes on a Barabasi-Albert overlay, run over a stream of anchoring
requests on either backend, and its report (commits, faults seen, timings, storage per node).

Systems (what is verified and stored where; the consensus protocol is the same):

- ``gft`` (ours): hubs keep the full ledger, the other nodes headers, certificates and the
  transactions mapped to them; each transaction is verified by its ``f + 1`` mapped nodes; shard
  payloads go to ``r`` nodes (local first) by GFT placement, or as ``k + m`` erasure-coded fragments.
- ``random``: as ``gft`` but every mapping is drawn at random and kept in a directory on each node.
- ``full``: every node verifies and keeps everything.

Node keys are derived from the seed so that runs are reproducible and the faulty nodes can collude;
that is a simulation device, not a way to make real keys.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prosima.ledger.consensus.erasure import ErasureCode
from prosima.ledger.consensus.overlay import Overlay
from prosima.ledger.consensus.placement import item_id, make_placement
from prosima.ledger.consensus.protocol import (
    PHASES,
    ConsensusContext,
    ConsensusNode,
    Request,
    RoundResult,
    Stalled,
    run_round,
)
from prosima.ledger.consensus.replica import FullReplica, PartialReplica, Replica
from prosima.ledger.consensus.storage import StorageAccount
from prosima.ledger.consensus.transport import LocalTransport, Transport
from prosima.ledger.consensus.verifiers import SYSTEMS, verifier_sets
from prosima.ledger.consensus.voting import VotingPower, max_faulty
from prosima.ledger.log.block import Block
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.registry import Registry
from prosima.ledger.sim.byzantine import FaultSchedule
from prosima.ledger.sim.workload import AnchorRequest


@dataclass
class NetworkConfig:
    """Everything a run depends on; the same config and seed give the same chain on any backend."""

    nodes: int = 20
    seed: int = 0
    system: str = "gft"
    batch: int = 1
    hubs: int = 3
    replication: int = 3
    erasure: tuple[int, int] | None = None
    shard_bytes: int = 4096
    overlay_m: int = 2
    voting: str = "count"
    byzantine: str = ""
    split_prepares: bool = False

    def __post_init__(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SYSTEMS)}, got {self.system!r}")
        if self.nodes < 1 or self.batch < 1 or self.hubs < 0 or self.shard_bytes < 0:
            raise ValueError("need nodes >= 1, batch >= 1, hubs >= 0 and shard_bytes >= 0")
        if not 1 <= self.replication <= self.nodes:
            raise ValueError(f"replication must be between 1 and {self.nodes}")
        if self.erasure is not None:
            code = ErasureCode(*self.erasure)
            if code.n > self.nodes:
                raise ValueError(f"erasure code needs {code.n} distinct nodes, the network has {self.nodes}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


def node_keys(n: int, seed: int) -> list[NodeKey]:
    """Node ``i``'s key for network ``seed`` (reproducible runs only; see the module note)."""
    return [
        NodeKey.from_seed(hashlib.sha256(f"prosima.network/{seed}/{i}".encode()).digest()) for i in range(n)
    ]


@dataclass
class _HostLog:
    rounds: list[dict[str, Any]] = field(default_factory=list)
    stalled: str | None = None


class Network:
    """The nodes hosted here (all of them in process, a block of them per MPI rank) and their shared
    setup. Rounds run over ``wire``: ``transport`` with the scheduled faulty nodes' messages
    rewritten on their way out (``transport`` itself when none is hosted here)."""

    def __init__(
        self,
        config: NetworkConfig,
        transport: Transport | None = None,
        *,
        schedule: FaultSchedule | None = None,
        observer: Callable[[int, int, bytes, bytes], None] | None = None,
        store_dir: str | Path | None = None,
    ) -> None:
        self.config = config
        self.transport = transport or LocalTransport(config.nodes, split_allgather=config.split_prepares)
        n = self.transport.size
        if n != config.nodes:
            raise ValueError(f"the transport has {n} nodes, the config {config.nodes}")
        self.overlay = Overlay.barabasi_albert(n, config.overlay_m, config.seed)
        keys = node_keys(n, config.seed)
        self.registry = Registry(k.public_key for k in keys)
        self.power = VotingPower.make(config.voting, self.overlay.degrees)
        self.schedule = schedule or FaultSchedule.parse(
            config.byzantine, n=n, by_degree=self.overlay.by_degree, seed=config.seed
        )
        if config.system == "full":
            self.full_nodes = frozenset(range(n))
        else:
            self.full_nodes = frozenset(self.overlay.hubs(min(config.hubs, n)))
        self.ctx = ConsensusContext(
            self.registry,
            tuple(k.node_id for k in keys),
            self.power,
            self.overlay.by_degree,
            verifier_sets(config.system, n, config.seed),
            observer=observer,
        )
        self._tmp = None
        if store_dir is None and self.full_nodes & set(self.transport.local):
            store_dir = self._tmp = tempfile.mkdtemp(prefix="prosima-network-")
        self.nodes: dict[int, ConsensusNode] = {}
        for i in self.transport.local:
            replica: Replica
            if i in self.full_nodes:
                replica = FullReplica(Path(store_dir) / f"node-{i:02d}.db", self.registry)  # type: ignore[arg-type]
            else:
                replica = PartialReplica(self.registry, self._keeper(i))
            self.nodes[i] = ConsensusNode(i, keys[i], self.ctx, replica)
        self.wire = self.schedule.wrap(
            self.transport,
            lambda i: self.nodes[i].read_only(),
            dict(enumerate(keys)),
            config.seed,
            split_prepares=config.split_prepares,
        )
        self.blocks: list[Block] = []
        self.log = _HostLog()

    def _keeper(self, i: int) -> Callable[[bytes, Any], bool]:
        ctx = self.ctx
        return lambda tid, tx: i in ctx.verifiers(tid, ctx.index_of[tx.signer])

    @property
    def honest(self) -> frozenset[int]:
        """Nodes with no fault scheduled."""
        return frozenset(range(self.transport.size)) - self.schedule.nodes

    def run_round(self, batch: Sequence[AnchorRequest]) -> RoundResult:
        """One consensus round over ``batch`` (each request goes to its origin node)."""
        requests: dict[int, list[Request]] = {}
        for r in batch:
            if r.origin in self.nodes:
                requests.setdefault(r.origin, []).append(r.request())
        result = run_round(self.nodes, self.wire, requests)
        if result.block is not None:
            self.blocks.append(result.block)
        self.log.rounds.append(
            {
                "height": result.height,
                "images": len(batch),
                "txs": len(result.block.txs) if result.block else 0,
                "views": result.views,
                "seconds": result.seconds,
                "phases": result.phases,
                "critical": result.critical,
            }
        )
        return result

    def run(self, workload: Sequence[AnchorRequest]) -> dict[str, Any] | None:
        """Run the whole stream in batches, then drain what is left; the report on host 0."""
        self.transport.barrier()  # host 0 may still be summarising the previous run
        t0 = time.perf_counter()
        step = self.config.batch
        try:
            for start in range(0, len(workload), step):
                self.run_round(workload[start : start + step])
            for _ in range(self.transport.size):
                if self.run_round([]).block is None:
                    break
        except Stalled as exc:
            self.log.stalled = str(exc)
        wall = time.perf_counter() - t0
        return self.report(workload, wall)

    def close(self) -> None:
        """Close replicas and remove the temporary store folder."""
        for node in self.nodes.values():
            node.replica.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reporting -------------------------------------------------------------------------

    def _host_part(self) -> dict[str, Any]:
        nodes = []
        for i, node in self.nodes.items():
            nodes.append(
                {
                    "node": i,
                    "height": node.replica.height,
                    "tip": node.replica.tip_hash.hex(),
                    "ledger_bytes_kept": node.replica.stored_bytes(),
                    "verifications": node.verifications,
                    "events": sorted(tuple(e) for e in node.events),
                }
            )
        return {"nodes": nodes, "rounds": self.log.rounds, "stalled": self.log.stalled}

    def report(self, workload: Sequence[AnchorRequest], wall: float) -> dict[str, Any] | None:
        """Gather every host's part at host 0 and build the report there."""
        parts = self.transport.gather_objects(self._host_part())
        if parts is None:
            return None
        nodes = sorted((n for p in parts for n in p["nodes"]), key=lambda d: d["node"])  # type: ignore[index]
        rounds_by_host = [p["rounds"] for p in parts]  # type: ignore[index]
        rounds = []
        for k, first in enumerate(rounds_by_host[0]):
            rows = [host[k] for host in rounds_by_host]
            rounds.append(
                first
                | {
                    "seconds": max(r["seconds"] for r in rows),
                    "phases": {p: statistics.fmean(r["phases"][p] for r in rows) for p in PHASES},
                    "critical": {p: max(r["critical"][p] for r in rows) for p in PHASES},
                }
            )
        stalled = next((p["stalled"] for p in parts if p["stalled"]), None)  # type: ignore[index]
        return build_report(self, workload, nodes, rounds, stalled, wall)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def account_storage(
    net: Network, workload: Sequence[AnchorRequest], config: NetworkConfig | None = None
) -> StorageAccount:
    """Bytes each node keeps for the committed chain and the committed images' shard payloads;
    ``config`` (default: the network's) chooses the payload placement, copies or erasure code."""
    cfg, n = config or net.config, net.transport.size
    account = StorageAccount(n)
    for block in net.blocks:
        raw = block.raw()
        account.add_copies("ledger", len(raw.header) + len(raw.qc), range(n))
        for tx, data in zip(block.txs, raw.txs, strict=True):
            keep = net.full_nodes | net.ctx.verifiers(tx.tx_id, net.ctx.index_of[tx.signer])
            account.add_copies("ledger", len(data), keep)
    placement = make_placement(cfg.system, n, cfg.seed)
    code = ErasureCode(*cfg.erasure) if cfg.erasure else None
    by_root = {r.root: r for r in workload}
    committed = [by_root[tx.key] for b in net.blocks for tx in b.txs if tx.key in by_root]
    for req in committed:
        for sid in req.shard_ids:
            item = item_id(req.root, sid)
            if code is None or placement.name == "full":
                account.add_copies(
                    "payload", cfg.shard_bytes, placement.nodes(item, r=cfg.replication, local=req.origin)
                )
            else:
                holders = placement.nodes(item, r=code.n, local=req.origin)
                frag = code.fragment_size(cfg.shard_bytes)
                account.add("payload", cfg.shard_bytes, dict.fromkeys(holders, frag), need=code.k)
    directory = placement.directory_bytes()
    if directory:
        account.add_overhead("directory", dict.fromkeys(range(n), directory))
    return account


def build_report(
    net: Network,
    workload: Sequence[AnchorRequest],
    nodes: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    stalled: str | None,
    wall: float,
) -> dict[str, Any]:
    """The JSON-ready report of a finished run."""
    cfg, n = net.config, net.transport.size
    honest = net.honest
    tips = {d["tip"] for d in nodes if d["node"] in honest}
    events: set[tuple[Any, ...]] = set()
    for d in nodes:
        if d["node"] in honest:
            events.update(tuple(e) for e in d["events"])
    kinds = Counter(e[2] for e in events)
    decided = [r for r in rounds if r["txs"]]
    latencies = [r["seconds"] for r in decided]
    critical = [sum(r["critical"].values()) for r in decided]
    images = sum(r["txs"] for r in decided)
    busy = sum(r["seconds"] for r in rounds)
    phases = {p: sum(r["phases"][p] for r in rounds) for p in PHASES}
    storage = account_storage(net, workload)
    s = storage.to_json()
    per_node = []
    for d in nodes:
        i = d["node"]
        fault = net.schedule.of(i)
        per_node.append(
            {
                "node": i,
                "degree": net.overlay.degrees[i],
                "role": "full" if i in net.full_nodes else "partial",
                "faulty": str(fault.behaviour) if fault else None,
                "weight": net.power.weights[i],
                "height": d["height"],
                "verifications": d["verifications"],
                "ledger_bytes": s["per_node_by_category"].get("ledger", [0] * n)[i],
                "ledger_bytes_kept": d["ledger_bytes_kept"],
                "payload_bytes": s["per_node_by_category"].get("payload", [0] * n)[i],
                "directory_bytes": s["per_node_by_category"].get("directory", [0] * n)[i],
                "total_bytes": s["per_node_bytes"][i],
            }
        )
    return {
        "config": cfg.to_json(),
        "backend": "mpi" if type(net.transport).__name__ == "MpiTransport" else "inproc",
        "ranks": getattr(net.transport, "ranks", 1),
        "nodes": n,
        "f": max_faulty(n),
        "overlay": net.overlay.to_json(),
        "voting": net.power.to_json(),
        "full_nodes": sorted(net.full_nodes),
        "leader_order": list(net.overlay.by_degree),
        "faulty": net.schedule.to_json(),
        "faulty_tolerated": net.power.tolerates(net.schedule.nodes),
        "commits": {
            "blocks": len(net.blocks),
            "transactions": sum(len(b.txs) for b in net.blocks),
            "images_submitted": len(workload),
            "images_committed": images,
            "views": [r["views"] for r in decided],
            "view_changes": sum(r["views"] - 1 for r in decided),
            "stalled": stalled,
        },
        "tip": {
            "height": net.blocks[-1].header.height if net.blocks else -1,
            "hash": next(iter(tips)) if tips else None,
        },
        "agreement": len(tips) == 1,
        "faults_seen": dict(sorted(kinds.items())),
        "fault_events": [
            {"height": e[0], "view": e[1], "kind": e[2], "culprit": e[3]} for e in sorted(events)[:200]
        ],
        "timing": {
            "wall_s": wall,
            "rounds_s": busy,
            "latency_ms": {
                "median": _quantile(latencies, 0.5) * 1e3,
                "p95": _quantile(latencies, 0.95) * 1e3,
                "mean": statistics.fmean(latencies) * 1e3 if latencies else float("nan"),
            },
            "critical_path_ms": {
                "median": _quantile(critical, 0.5) * 1e3,
                "p95": _quantile(critical, 0.95) * 1e3,
                "per_image": sum(critical) / images * 1e3 if images else float("nan"),
            },
            "ms_per_image": busy / images * 1e3 if images else float("nan"),
            "images_per_s": images / busy if busy else 0.0,
            "phases_s": phases,
            "phase_share": {p: v / busy if busy else 0.0 for p, v in phases.items()},
            "rounds": [
                {"height": r["height"], "txs": r["txs"], "views": r["views"], "ms": r["seconds"] * 1e3}
                for r in rounds
            ],
        },
        "traffic_bytes": net.transport.bytes_sent,
        "storage": s,
        "per_node": per_node,
    }


def format_report(report: dict[str, Any]) -> str:
    """A short text summary of a report."""
    c, t, s = report["commits"], report["timing"], report["storage"]
    faulty = ", ".join(f"{x['node']}={x['behaviour']}" for x in report["faulty"])
    lines = [
        f"{report['backend']} network: {report['nodes']} nodes on {report['ranks']} process(es), "
        f"f = {report['f']}, "
        f"system {report['config']['system']}, voting {report['voting']['rule']}, "
        f"batch {report['config']['batch']}",
        f"faulty: {faulty or 'none'} (tolerated: {report['faulty_tolerated']})",
        f"committed {c['images_committed']}/{c['images_submitted']} images in {c['blocks']} blocks, "
        f"view changes {c['view_changes']}, agreement {report['agreement']}, tip {report['tip']['hash']}",
        f"commit latency median {t['latency_ms']['median']:.1f} ms, p95 {t['latency_ms']['p95']:.1f} ms; "
        f"{t['ms_per_image']:.2f} ms/image, {t['images_per_s']:.1f} images/s",
        f"critical path (a core per node, no wire delay): median {t['critical_path_ms']['median']:.1f} ms "
        f"per block, {t['critical_path_ms']['per_image']:.2f} ms/image",
        "time by phase: " + ", ".join(f"{p} {v * 100:.0f}%" for p, v in t["phase_share"].items()),
        f"storage: replication {s['replication'] or 0:.2f}, losses survived {s['losses_survived']}, "
        f"max node {s['max_node_bytes']:,} B, mean node {s['mean_node_bytes']:,.0f} B",
    ]
    if c["stalled"]:
        lines.append(f"STALLED: {c['stalled']}")
    if report["faults_seen"]:
        lines.append("faults seen: " + ", ".join(f"{k} x{v}" for k, v in report["faults_seen"].items()))
    return "\n".join(lines)

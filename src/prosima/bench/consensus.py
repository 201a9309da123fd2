"""Consensus benchmark (the paper's Table 5 and Figure 3): full-ledger replication, random sharding
with duplication, and ours (GFT placement, hubs keep the ledger, with copies or erasure coding),
side by side on one workload, in process and over MPI.

Every system runs the same consensus protocol (``prosima.ledger.consensus.protocol``) over the same seeded
stream of anchoring transactions (one per 256x256 image: its root and its 16 GFT shard ids); they
differ in who verifies and keeps what. Storage counts what each node keeps: ledger blocks (headers,
certificates, transactions) and the images' shard payloads (16 x 4096 bytes per image, the pixels
of a 256x256 8-bit slice), plus the random baseline's lookup directory. Measured:

- commit latency with one image per block (median, p95), and the phases it is spent in;
- throughput with many images per block, over workloads of 200 to 1000 images;
- bytes per node, replication factor, arbitrary node losses survived.

The paper's own figures are printed beside ours as "paper (reported)": they were not measured here.
``measure`` runs; ``run_consensus_bench`` prints the tables and writes the JSON and the plots.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from prosima.bench.render import (
    Block,
    FigureFile,
    Rows,
    figure_beside,
    make_console,
    publish,
    pyplot,
    show,
)
from prosima.bench.report import environment
from prosima.imaging.shards import plan_shards
from prosima.ledger.consensus.erasure import ErasureCode
from prosima.ledger.consensus.transport import LocalTransport, Transport
from prosima.ledger.sim.network import Network, NetworkConfig, account_storage
from prosima.ledger.sim.workload import make_workload

PAPER = {
    "images_per_s": (0.47, 0.71),
    "ms_per_image": (1131, 1543),
    "commit_latency_ms": 228,
    "replication": {"gft": 1.28, "full": 20.43},
}
SYSTEMS: dict[str, dict[str, Any]] = {
    "full": {"system": "full"},
    "random": {"system": "random", "replication": 3},
    "gft": {"system": "gft", "replication": 3},
}
LABELS = {
    "full": "full-ledger replication",
    "random": "random sharding, r=3 + directory",
    "gft": "ours: GFT, r=3",
    "gft-ec": "ours: GFT + RS(k,m)",
}
EC = (8, 2)
TRADEOFF_COPIES = (1, 2, 3, 4, 5)
TRADEOFF_CODES = ((4, 1), (8, 1), (4, 2), (8, 2), (12, 3), (10, 4), (6, 3))
IMAGE_SHAPE = (256, 256)
SHARDS = 16
SHARD_BYTES = 4096
FIGURES = ("storage", "latency", "throughput", "tradeoff")


@dataclass(frozen=True)
class ConsensusConfig:
    """What ``bench consensus`` measures."""

    nodes: int = 20  # ledger nodes (MPI ranks for the mpi backend)
    workloads: tuple[int, ...] = (200, 400, 600, 800, 1000)  # images per throughput run
    batch: int = 64  # images per block in the throughput runs
    unbatched: int = 200  # images committed one per block for latency (0: none)
    backends: tuple[str, ...] = ("inproc", "mpi", "mpi:2")  # inproc, mpi (a rank per node), mpi:P
    seed: int = 0  # seed of overlay, keys and workload
    mpi_timeout: float = 900.0  # seconds an mpirun backend may take

    def __post_init__(self) -> None:
        mpi_ranks(self.backends, self.nodes)


def mpi_ranks(backends: Sequence[str], nodes: int) -> dict[str, int]:
    """The ranks of each MPI backend; an unknown backend is refused."""
    ranks = {}
    for b in backends:
        if b == "mpi":
            ranks[b] = nodes
        elif b.startswith("mpi:") and b[4:].isdigit() and 1 <= int(b[4:]) <= nodes:
            ranks[b] = int(b[4:])
        elif b != "inproc":
            raise ValueError(f"unknown backend {b!r}; use inproc, mpi or mpi:P with 1 <= P <= nodes")
    return ranks


def ec_for(nodes: int) -> tuple[int, int]:
    """RS(8,2), or a smaller code with two parity fragments when there are fewer than 10 nodes."""
    return EC if nodes >= sum(EC) else (max(1, nodes - 2), min(2, nodes - 1))


def gft_shard_ids(shape: Sequence[int] = IMAGE_SHAPE, k: int = SHARDS) -> list[str]:
    """The GFT shard ids of every image of this geometry (they depend on geometry only)."""
    return [s.shard_id for s in plan_shards(tuple(shape), k).shards]


def plan(nodes: int, workloads: Sequence[int], batch: int, unbatched: int) -> list[dict[str, Any]]:
    """The runs of one backend: each system once unbatched, then once per workload batched."""
    runs = []
    for system in SYSTEMS:
        if unbatched:
            runs.append({"system": system, "mode": "unbatched", "images": unbatched, "batch": 1})
        for w in workloads:
            runs.append({"system": system, "mode": "batched", "images": w, "batch": batch})
    return [r | {"nodes": nodes} for r in runs]


def _summary(
    net: Network, report: dict[str, Any], workload: Sequence[Any], run: dict[str, Any]
) -> dict[str, Any]:
    t, c = report["timing"], report["commits"]
    out = {
        **run,
        "label": LABELS[run["system"]],
        "backend": report["backend"] if report["backend"] == "inproc" else f"mpi/{report['ranks']}r",
        "images_committed": c["images_committed"],
        "blocks": c["blocks"],
        "view_changes": c["view_changes"],
        "agreement": report["agreement"],
        "latency_ms": t["latency_ms"],
        "critical_path_ms": t["critical_path_ms"],
        "ms_per_image": t["ms_per_image"],
        "images_per_s": t["images_per_s"],
        "phase_share": t["phase_share"],
        "verifications_per_image": sum(d["verifications"] for d in report["per_node"])
        / max(c["images_committed"], 1),
        "traffic_bytes_per_image": report["traffic_bytes"] / max(c["images_committed"], 1),
        "storage": _storage(report["storage"], net.full_nodes, report["nodes"]),
        "round_ms": [r["ms"] for r in t["rounds"] if r["txs"]],
    }
    if run["system"] == "gft" and run["mode"] == "batched":
        ec = account_storage(net, workload, replace(net.config, erasure=ec_for(net.config.nodes))).to_json()
        out["storage_ec"] = _storage(ec, net.full_nodes, report["nodes"])
        out["tradeoff"] = _tradeoff(net, workload)
    return out


def _storage(s: dict[str, Any], full_nodes: Sequence[int], n: int) -> dict[str, Any]:
    per = s["per_node_bytes"]
    return {
        "per_node_bytes": per,
        "min_node_bytes": min(per),
        "mean_node_bytes": s["mean_node_bytes"],
        "max_node_bytes": max(per),
        "replication": s["replication"],
        "replication_by_category": s["replication_by_category"],
        "losses_survived": s["losses_survived"],
        "losses_survived_by_category": s["losses_survived_by_category"],
        "directory_bytes_per_node": s["per_node_by_category"].get("directory", [0] * n)[0],
        "unique_bytes": s["unique_bytes"],
        "full_nodes": sorted(full_nodes),
    }


def _tradeoff(net: Network, workload: Sequence[Any]) -> list[dict[str, Any]]:
    points = []
    for r in TRADEOFF_COPIES:
        acc = account_storage(net, workload, replace(net.config, replication=r, erasure=None))
        points.append(
            {
                "scheme": f"{r} copies",
                "replication": acc.replication("payload"),
                "losses": acc.survives["payload"],
            }
        )
    for k, m in TRADEOFF_CODES:
        if k + m > net.config.nodes:
            continue
        acc = account_storage(net, workload, replace(net.config, erasure=(k, m)))
        points.append(
            {
                "scheme": f"RS({k},{m})",
                "replication": acc.replication("payload"),
                "losses": acc.survives["payload"],
            }
        )
    return points


def run_plan(
    runs: Sequence[dict[str, Any]], transport_factory: Any, seed: int, shard_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Run every planned run on one backend; the summaries (on host 0; an empty list elsewhere)."""
    out = []
    for run in runs:
        kw = SYSTEMS[run["system"]]
        cfg = NetworkConfig(nodes=run["nodes"], seed=seed, batch=run["batch"], shard_bytes=SHARD_BYTES, **kw)
        workload = make_workload(run["images"], nodes=run["nodes"], seed=seed, shard_ids=shard_ids)
        transport: Transport = transport_factory()
        with Network(cfg, transport) as net:
            report = net.run(workload)
            if report is not None:
                out.append(_summary(net, report, workload, run))
    return out


def _erasure_cost(images: int = 50) -> dict[str, Any]:
    """zfec RS(8,2) encode and decode time per image (16 shards of 4096 bytes), decode after 2 losses."""
    code = ErasureCode(*EC)
    rng = random.Random(0)
    shards = [[rng.randbytes(SHARD_BYTES) for _ in range(SHARDS)] for _ in range(images)]
    t0 = time.perf_counter()
    encoded = [[code.encode(s) for s in image] for image in shards]
    enc = (time.perf_counter() - t0) / images
    t0 = time.perf_counter()
    ok = True
    for image, frags in zip(shards, encoded, strict=True):
        for data, f in zip(image, frags, strict=True):
            lost = set(rng.sample(range(code.n), code.m))
            ok &= code.decode({i: x for i, x in enumerate(f) if i not in lost}, len(data)) == data
    dec = (time.perf_counter() - t0) / images
    return {
        "code": list(EC),
        "encode_ms_per_image": enc * 1e3,
        "decode_ms_per_image": dec * 1e3,
        "roundtrip_ok": ok,
    }


def mpi_command(ranks: int) -> list[str] | None:
    """``mpirun`` with the flags this machine needs, or ``None`` when MPI is not installed."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        return None
    cmd = [mpirun, "--oversubscribe", "--bind-to", "none", "-n", str(ranks)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


def _run_mpi(
    runs: Sequence[dict[str, Any]], nodes: int, ranks: int, seed: int, timeout: float
) -> list[dict[str, Any]] | str:
    """The same plan under ``mpirun -n ranks`` (nodes spread over the ranks); a reason string when
    it cannot run."""
    from prosima.optional import available

    cmd = mpi_command(ranks)
    if cmd is None or not available("mpi4py"):
        return "skipped: mpirun or mpi4py is not installed (Debian openmpi-bin, pip install 'prosima[mpi]')"
    with tempfile.TemporaryDirectory(prefix="prosima-bench-mpi-") as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"runs": list(runs), "seed": seed, "nodes": nodes}))
        full = [*cmd, sys.executable, "-m", "prosima.bench.consensus", "--worker", str(spec), str(out)]
        try:
            proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"failed: mpirun did not finish in {timeout:.0f} s"
        if proc.returncode != 0 or not out.exists():
            return f"failed: mpirun exited {proc.returncode}: {(proc.stderr or proc.stdout)[-500:]}"
        return json.loads(out.read_text())


def _worker(spec_path: str, out_path: str) -> None:
    """Entry point of every MPI rank: run the plan, rank 0 writes the summaries."""
    from prosima.ledger.consensus.mpi import MpiTransport

    spec = json.loads(Path(spec_path).read_text())
    nodes = spec["nodes"]
    results = run_plan(spec["runs"], lambda: MpiTransport(nodes=nodes), spec["seed"], gft_shard_ids())
    if MpiTransport(nodes=nodes).rank == 0:
        Path(out_path).write_text(json.dumps(results))


def measure(config: ConsensusConfig) -> dict[str, Any]:
    """Run every system on every backend; the JSON document.

    Backends: ``inproc`` (every node in this process), ``mpi`` (``mpirun -n nodes``, a rank per node)
    and ``mpi:P`` (``mpirun -n P``, the nodes spread over P ranks, e.g. one per core)."""
    nodes, seed = config.nodes, config.seed
    runs = plan(nodes, config.workloads, config.batch, config.unbatched)
    shard_ids = gft_shard_ids()
    started = time.time()
    results: dict[str, Any] = {
        "machine": environment(
            platform=platform.platform(),
            load_average_before=os.getloadavg() if hasattr(os, "getloadavg") else None,
        ),
        "settings": {
            "nodes": nodes,
            "seed": seed,
            "workloads": list(config.workloads),
            "batch": config.batch,
            "unbatched_images": config.unbatched,
            "image": {"shape": list(IMAGE_SHAPE), "shards": SHARDS, "shard_bytes": SHARD_BYTES},
            "hubs": 3,
            "voting": "count",
            "erasure": list(ec_for(nodes)),
        },
        "paper_reported": PAPER,
        "runs": [],
        "backends": {},
    }
    if "inproc" in config.backends:
        t0 = time.perf_counter()
        results["runs"] += run_plan(runs, lambda: LocalTransport(nodes), seed, shard_ids)
        results["backends"]["inproc"] = {"status": "ok", "seconds": time.perf_counter() - t0}
    for name, ranks in mpi_ranks(config.backends, nodes).items():
        t0 = time.perf_counter()
        got = _run_mpi(runs, nodes, ranks, seed, config.mpi_timeout)
        if isinstance(got, str):
            results["backends"][name] = {"status": got}
        else:
            results["runs"] += got
            results["backends"][name] = {"status": "ok", "ranks": ranks, "seconds": time.perf_counter() - t0}
    results["erasure_cost"] = _erasure_cost()
    results["machine"]["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["seconds"] = time.time() - started
    return results


def run_consensus_bench(
    *,
    nodes: int = 20,
    workloads: Sequence[int] = ConsensusConfig.workloads,
    batch: int = 64,
    unbatched: int = 200,
    backends: Sequence[str] = ConsensusConfig.backends,
    seed: int = 0,
    json_path: str | Path | None = None,
    mpi_timeout: float = 900.0,
) -> dict[str, Any]:
    """Measure, print the tables, write the JSON and the four plots beside it (their paths under
    ``figures``); return the JSON document."""
    config = ConsensusConfig(nodes, tuple(workloads), batch, unbatched, tuple(backends), seed, mpi_timeout)
    results = measure(config)
    console = make_console(160)
    show(console, report(results))
    draws = {
        "storage": draw_storage,
        "latency": draw_latency,
        "throughput": draw_throughput,
        "tradeoff": draw_tradeoff,
    }
    figures = [
        FigureFile(path, partial(draws[name], results), 110)
        for name in FIGURES
        if (path := figure_beside(json_path, name)) is not None
    ]
    if json_path is not None:
        results["figures"] = [str(f.path) for f in figures]
    publish(console, results, json_path, figures)
    return results


def _find(results: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [r for r in results["runs"] if all(r.get(k) == v for k, v in match.items())]


def _name(name: str, results: dict[str, Any]) -> str:
    k, m = results["settings"]["erasure"]
    return LABELS[name].replace("RS(k,m)", f"RS({k},{m})")


def _mb(x: float) -> str:
    return f"{x / 1e6:,.2f}"


def _biggest_runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The batched runs of the biggest workload (in process when there are some)."""
    biggest = max(results["settings"]["workloads"])
    return _find(results, mode="batched", images=biggest, backend="inproc") or _find(
        results, mode="batched", images=biggest
    )


def _storage_variants(rows: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each run's storage, and GFT's with erasure coding beside it."""
    variants = []
    for r in rows:
        variants.append((r["system"], r["storage"]))
        if "storage_ec" in r:
            variants.append(("gft-ec", r["storage_ec"]))
    return variants


def _storage_rows(results: dict[str, Any]) -> Rows:
    s = results["settings"]
    rows = []
    for name, st in _storage_variants(_biggest_runs(results)):
        paper = PAPER["replication"].get(name if name != "gft-ec" else "gft")
        rows.append(
            (
                _name(name, results),
                _mb(st["min_node_bytes"]),
                _mb(st["mean_node_bytes"]),
                _mb(st["max_node_bytes"]),
                f"{st['replication']:.2f}",
                "-" if paper is None else f"{paper:.2f}",
                str(st["losses_survived"]),
                f"{st['directory_bytes_per_node']:,} B",
                "directory" if name == "random" else ("local (all)" if name == "full" else "computed"),
            )
        )
    columns = (
        "system",
        "min MB",
        "mean MB",
        "max MB",
        "replication",
        "paper (reported)",
        "losses survived",
        "directory/node",
        "lookup",
    )
    title = (
        f"Storage per node, N={s['nodes']}, {max(s['workloads'])} images x {s['image']['shards']} shards x "
        f"{s['image']['shard_bytes']} B (+ ledger)"
    )
    return Rows(title, columns, rows)


def _latency_rows(results: dict[str, Any]) -> Rows:
    rows = [
        (
            LABELS[r["system"]],
            r["backend"],
            str(r["images_committed"]),
            f"{r['latency_ms']['median']:.1f}",
            f"{r['latency_ms']['p95']:.1f}",
            f"{r['ms_per_image']:.1f}",
            f"{r['critical_path_ms']['median']:.1f}",
            f"{r['critical_path_ms']['p95']:.1f}",
            f"{r['verifications_per_image']:.0f}",
            str(r["view_changes"]),
        )
        for r in _find(results, mode="unbatched")
    ]
    columns = (
        "system",
        "backend",
        "images",
        "median ms",
        "p95 ms",
        "ms/image",
        "critical median ms",
        "critical p95 ms",
        "verif./image",
        "view changes",
    )
    return Rows("Commit latency, one image per block (paper (reported): 228 ms)", columns, rows)


def _throughput_rows(results: dict[str, Any]) -> Rows:
    rows = [
        (
            LABELS[r["system"]],
            r["backend"],
            str(r["images"]),
            f"{r['images_per_s']:.0f}",
            f"{r['ms_per_image']:.2f}",
            f"{r['latency_ms']['median']:.0f}",
            f"{r['latency_ms']['p95']:.0f}",
            f"{1e3 / r['critical_path_ms']['per_image']:.0f}",
            f"{r['verifications_per_image']:.1f}",
        )
        for r in _find(results, mode="batched")
    ]
    columns = (
        "system",
        "backend",
        "images",
        "images/s",
        "ms/image",
        "block median ms",
        "block p95 ms",
        "critical images/s",
        "verif./image",
    )
    title = (
        f"Throughput, {results['settings']['batch']} images per block (paper (reported): 0.47-0.71 "
        "images/s, 1131-1543 ms/image)"
    )
    return Rows(title, columns, rows)


def _phase_rows(results: dict[str, Any]) -> Rows:
    biggest = max(results["settings"]["workloads"])
    phases = list(next(iter(results["runs"]), {}).get("phase_share", {}))
    rows = [
        (
            f"{r['mode']} ({r['batch']}/block)",
            r["backend"],
            *(f"{r['phase_share'][p] * 100:.0f}%" for p in phases),
        )
        for r in _find(results, system="gft")
        if r["mode"] == "unbatched" or r["images"] == biggest
    ]
    return Rows("Where the time goes (share of round time, ours)", ("run", "backend", *phases), rows)


def report(results: dict[str, Any]) -> list[Block]:
    """The benchmark's tables, with the paper's reported figures beside ours."""
    blocks: list[Block] = [
        _storage_rows(results),
        _latency_rows(results),
        _throughput_rows(results),
        "Wall-clock figures: all N nodes share this machine's cores and run one after another. "
        "Critical path: per phase, the slowest node's own work (what N machines with a core each "
        "would take, wire delay excluded).",
        _phase_rows(results),
    ]
    ec = results.get("erasure_cost")
    if ec:
        blocks.append(
            f"RS(8,2) with zfec: encode {ec['encode_ms_per_image']:.2f} ms/image, decode after 2 losses "
            f"{ec['decode_ms_per_image']:.2f} ms/image, round trip ok: {ec['roundtrip_ok']}"
        )
    for name, b in results["backends"].items():
        blocks.append(
            f"backend {name}: {b['status']}" + (f" ({b['seconds']:.0f} s)" if "seconds" in b else "")
        )
    return blocks


def draw_storage(results: dict[str, Any]) -> Any:
    """Bytes stored per node by each system (log scale), biggest workload."""
    plt = pyplot()
    biggest = max(results["settings"]["workloads"])
    fig, ax = plt.subplots(figsize=(9, 4.8))
    width = 0.2
    variants = _storage_variants(_biggest_runs(results))
    for k, (name, st) in enumerate(variants):
        per = st["per_node_bytes"]
        ax.bar(
            [i + (k - len(variants) / 2) * width for i in range(len(per))],
            [b / 1e6 for b in per],
            width,
            label=f"{_name(name, results)} (x{st['replication']:.2f})",
        )
    ax.set_yscale("log")
    ax.set_xticks(range(results["settings"]["nodes"]))
    ax.set_xlabel("node")
    ax.set_ylabel("MB stored")
    ax.set_title(f"Storage per node, {biggest} images")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    fig.tight_layout()
    return fig


def draw_latency(results: dict[str, Any]) -> Any:
    """Commit latency of the unbatched runs (box plots) against the paper's."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    data, labels = [], []
    for r in _find(results, mode="unbatched"):
        data.append(r["round_ms"])
        labels.append(f"{r['system']}\n{r['backend']}")
    if data:
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.axhline(PAPER["commit_latency_ms"], color="red", linestyle="--", label="paper (reported) 228 ms")
    ax.set_ylabel("commit latency, ms (one image per block)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def draw_throughput(results: dict[str, Any]) -> Any:
    """Images committed per second against workload size, per system and backend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for system in SYSTEMS:
        for backend in sorted({r["backend"] for r in results["runs"]}):
            pts = sorted(
                (r["images"], r["images_per_s"])
                for r in _find(results, mode="batched", system=system, backend=backend)
            )
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    marker="o",
                    linestyle="-" if backend == "inproc" else "--",
                    label=f"{LABELS[system]} ({backend})",
                )
    ax.axhspan(*PAPER["images_per_s"], color="red", alpha=0.3, label="paper (reported) 0.47-0.71")
    ax.set_yscale("log")
    ax.set_xlabel("images in the workload")
    ax.set_ylabel("images committed per second")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def draw_tradeoff(results: dict[str, Any]) -> Any:
    """Payload replication against node losses survived: copies and erasure codes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    trade = next((r["tradeoff"] for r in _biggest_runs(results) if "tradeoff" in r), [])
    for p in trade:
        marker = "s" if "copies" in p["scheme"] else "o"
        ax.scatter(p["replication"], p["losses"], marker=marker)
        ax.annotate(
            p["scheme"],
            (p["replication"], p["losses"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.axvline(PAPER["replication"]["gft"], color="red", linestyle="--", label="paper (reported) 1.28")
    ax.set_xlabel("payload replication factor (stored / unique bytes)")
    ax.set_ylabel("arbitrary node losses survived")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(
            "usage: python -m prosima.bench.consensus --worker SPEC OUT (run 'prosima bench consensus')"
        )

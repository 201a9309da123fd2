"""End-to-end pipeline benchmark: anchor -> corrupt -> restore -> verify per image at N nodes, and
the tamper suite's detection and false-positive rates on real slices.

For each workload size W a fresh ledger of ``nodes`` nodes is made and W distinct slices are
anchored through the in-process consensus (``batch`` images per round), then every slice is
corrupted (Gaussian noise, seeded per image), restored (original found by nearest-neighbour search,
one restoration transaction per image, its own consensus round) and the output verified. Latency per
stage is per image (an anchoring round's time is shared by its images); throughput is W over the
wall time of the three stages. The tamper suite runs on its own ledger over ``tamper_slices``
slices. The seed paper's figures are printed beside ours. ``measure`` runs; ``run_pipeline_bench``
prints the tables and writes the JSON and the figure.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prosima.bench.denoise import load_bench_slices
from prosima.bench.progress import SILENT, Progress
from prosima.bench.render import (
    Block,
    FigureFile,
    Rows,
    console_progress,
    figure_beside,
    make_console,
    publish,
    pyplot,
    show,
)
from prosima.bench.report import environment
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import BRATS_CONTRASTS
from prosima.imaging.io import read_image, write_png
from prosima.imaging.validation import ImageError
from prosima.ledger.log.directory import Ledger
from prosima.pipelines.latency import latency_stats
from prosima.pipelines.tamper_suite import PIXEL_TAMPERS, SUITE, run_suite
from prosima.provenance.anchor import anchor_images, read_inputs
from prosima.provenance.context import DEFAULT_GENERATOR, Provenance
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.restore import Generator, restore_file
from prosima.provenance.semantic import FAITHFUL_COSINE, shard_cosines
from prosima.provenance.verify import verify_loaded

PAPER = {"end_to_end_ms": 204.0, "images_per_s": (0.47, 0.71), "verification_rate": 1.0}
STAGES = ("anchor", "restore", "verify", "end_to_end")


@dataclass(frozen=True)
class PipelineConfig:
    """What ``bench pipeline`` measures."""

    data: str | Path | None = None  # BraTS folder (all four contrasts); None: the embedded default brain
    workloads: tuple[int, ...] = (200, 400, 600, 800, 1000)  # images per workload, each on a fresh ledger
    nodes: int = 20  # ledger nodes running consensus
    sigma: float = 0.05  # Gaussian noise sigma of the corrupted copies
    batch: int = 16  # images anchored per consensus round
    tamper_slices: int = 100  # slices the tamper suite runs on
    consensus: str = "inproc"  # how the nodes reach consensus
    seed: int = 0  # seed of slice order and noise

    def __post_init__(self) -> None:
        if not self.workloads or min(self.workloads) < 1:
            raise ImageError(f"--workloads must be positive sizes, got {list(self.workloads)}")


def _write_slices(ds: Any, picks: Sequence[int], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in picks:
        item = ds[i]
        path = folder / f"{i:05d}-{item.subject}-{item.contrast}-z{item.z:03d}.png"
        write_png(path, item.image, data_range=(0.0, 1.0))
        files.append(path)
    return files


def run_workload(
    files: Sequence[Path],
    work: Path,
    *,
    nodes: int,
    sigma: float,
    seed: int,
    batch: int,
    consensus: str,
    generator: Generator,
) -> dict[str, Any]:
    """Anchor, restore and verify ``files`` on a fresh ledger; per-image stage latencies."""
    ledger = Ledger.init(work / "ledger", nodes=nodes)
    try:
        prov = Provenance.open(ledger, consensus=consensus, seed=seed)
        anchor_model(ledger, DEFAULT_GENERATOR)
        t0 = time.perf_counter()
        per_anchor: list[float] = []
        anchored = []
        for start in range(0, len(files), batch):
            chunk = files[start : start + batch]
            t = time.perf_counter()
            anchored += anchor_images(prov, read_inputs(chunk), batch=batch)
            per_anchor += [(time.perf_counter() - t) / len(chunk)] * len(chunk)
        restore_s, verify_s, verified, matched, min_cos = [], [], 0, 0, []
        commit_wall: list[float] = []
        commit_critical: list[float] = []
        for i, f in enumerate(files):
            clean = read_image(f).array / 255.0
            noisy = np.clip(gaussian_noise(clean, sigma, seed=seed * 100_000 + i).image, 0.0, 1.0)
            cpath = work / "corrupted" / f.name
            cpath.parent.mkdir(exist_ok=True)
            (work / "restored").mkdir(exist_ok=True)  # restore refuses an --out folder that is missing
            write_png(cpath, noisy, data_range=(0.0, 1.0))
            t = time.perf_counter()
            done = restore_file(prov, cpath, work / "restored" / f.name, generator)
            restore_s.append(time.perf_counter() - t)
            if prov.committee is not None:
                commit_wall.append(prov.committee.last_seconds)
                commit_critical.append(sum(prov.committee.last_critical.values()))
            t = time.perf_counter()
            verdict = verify_loaded(prov, read_image(done.out))
            verify_s.append(time.perf_counter() - t)
            verified += verdict.ok
            matched += (
                done.match["tx"] == prov.index.by_tx[done.match["tx"]].tx and verdict.record is not None
            )
            if verdict.shard_cosines:
                min_cos.append(min(verdict.shard_cosines))
        wall = time.perf_counter() - t0
        chain_ok = ledger.verify().ok
        stats = ledger.stats()
    finally:
        ledger.close()
    e2e = [a + r + v for a, r, v in zip(per_anchor, restore_s, verify_s, strict=True)]
    return {
        "images": len(files),
        "wall_s": wall,
        "images_per_s": len(files) / wall,
        "verification_rate": verified / len(files),
        "original_found_rate": matched / len(files),
        "latency": {
            "anchor": latency_stats(per_anchor),
            "restore": latency_stats(restore_s),
            "verify": latency_stats(verify_s),
            "end_to_end": latency_stats(e2e),
        },
        # the restoration's consensus round: wall time with all nodes simulated on this machine, and
        # its critical path (the slowest node per phase, as if each node had its own machine; no network)
        "restore_commit": {
            "wall": latency_stats(commit_wall),
            "critical_path": latency_stats(commit_critical),
        }
        if commit_wall
        else None,
        "min_shard_cosine": {"min": min(min_cos), "median": statistics.median(min_cos)} if min_cos else None,
        "ledger": stats | {"chain_ok": chain_ok},
    }


def run_tamper(files: Sequence[Path], work: Path, *, nodes: int, seed: int, consensus: str) -> dict[str, Any]:
    """The tamper suite over ``files`` on a fresh ledger: rates per kind, false positives."""
    ledger = Ledger.init(work / "ledger", nodes=nodes)
    try:
        prov = Provenance.open(ledger, consensus=consensus, seed=seed)
        anchored = anchor_images(prov, read_inputs(files))
        authentic_ok = sum(verify_loaded(prov, read_image(f)).ok for f in files)
        # the negative class of the faithfulness test: each slice against a different one
        fps = [prov.anchored_fingerprint(a.record) for a in anchored]
        other = [float(shard_cosines(fps[i], fps[(i + 1) % len(fps)]).min()) for i in range(len(fps))]
        by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in SUITE}
        for i, f in enumerate(files):
            for case in run_suite(prov, f, work / "tampered", seed=seed * 100_000 + i):
                by_kind[case.kind].append(case.to_json())
                case.path.unlink()
    finally:
        ledger.close()
    kinds = {}
    for kind, cases in by_kind.items():
        mins = [c["min_cosine"] for c in cases if c["min_cosine"] is not None]
        kinds[kind] = {
            "cases": len(cases),
            "detected": sum(c["detected"] for c in cases) / len(cases),
            "localised": sum(c["localised"] for c in cases) / len(cases),
            "as_expected": sum(c["passed"] for c in cases) / len(cases),
            "min_shard_cosine_median": statistics.median(mins) if mins else None,
            "failures": [c for c in cases if not c["passed"]][:5],
        }
    pixel_cases = sum(kinds[k]["cases"] for k in PIXEL_TAMPERS)
    lossless = [c for k in ("lossless_png", "lossless_npy") for c in by_kind[k]]
    return {
        "slices": len(files),
        "kinds": kinds,
        "detection_rate": sum(kinds[k]["detected"] * kinds[k]["cases"] for k in PIXEL_TAMPERS) / pixel_cases,
        "localisation_rate": sum(kinds[k]["localised"] * kinds[k]["cases"] for k in PIXEL_TAMPERS)
        / pixel_cases,
        "false_positive_rate": (len(files) - authentic_ok + sum(c["detected"] for c in lossless))
        / (len(files) + len(lossless)),
        "other_slice_min_cosine": {
            "median": statistics.median(other),
            "max": max(other),
            "would_pass_as_faithful": sum(c >= FAITHFUL_COSINE for c in other) / len(other),
        },
    }


def measure(config: PipelineConfig, progress: Progress = SILENT) -> dict[str, Any]:
    """Run every workload and the tamper suite; the JSON document."""
    nodes, seed, consensus = config.nodes, config.seed, config.consensus
    contrasts = BRATS_CONTRASTS if config.data is not None else ("t1n",)
    ds, picks, source = load_bench_slices(config.data, contrasts=contrasts)
    order = np.random.default_rng(seed).permutation(len(picks))
    generator = Generator.load(DEFAULT_GENERATOR)
    results = []
    with tempfile.TemporaryDirectory(prefix="prosima-bench-pipeline-") as tmp:
        root = Path(tmp)
        for w in config.workloads:
            use = [picks[i] for i in order[: min(w, len(picks))]]
            if len(use) < w:
                progress.note(f"[yellow]workload {w}: only {len(use)} distinct slices in {source}[/yellow]")
            files = _write_slices(ds, use, root / f"w{w}" / "images")
            progress.note(f"workload {len(files)} images at N={nodes} ...")
            res = run_workload(
                files,
                root / f"w{w}",
                nodes=nodes,
                sigma=config.sigma,
                seed=seed,
                batch=config.batch,
                consensus=consensus,
                generator=generator,
            )
            results.append({"workload": w} | res)
        spread = np.linspace(0, len(picks) - 1, min(config.tamper_slices, len(picks))).round().astype(int)
        tamper_files = _write_slices(
            ds, [picks[i] for i in dict.fromkeys(spread.tolist())], root / "tamper" / "images"
        )
        progress.note(f"tamper suite on {len(tamper_files)} slices ...")
        tamper = run_tamper(tamper_files, root / "tamper", nodes=nodes, seed=seed, consensus=consensus)
    return {
        "benchmark": "pipeline",
        "source": source,
        "settings": {
            "nodes": nodes,
            "sigma": config.sigma,
            "batch": config.batch,
            "consensus": consensus,
            "seed": seed,
            "faithful_cosine": FAITHFUL_COSINE,
            "suite": list(SUITE),
        },
        "environment": environment(),
        "workloads": results,
        "tamper": tamper,
        "paper": PAPER,
    }


def _workload_report(out: dict[str, Any]) -> list[Block]:
    """The workload table (paper beside ours) and each workload's restoration consensus round."""
    rows: list[Sequence[str]] = []
    for r in out["workloads"]:
        lat = r["latency"]
        rows.append(
            (
                str(r["images"]),
                *(f"{lat[s]['median_ms']:.0f} / {lat[s]['p95_ms']:.0f}" for s in STAGES),
                f"{r['images_per_s']:.2f}",
                f"{100 * r['verification_rate']:.1f}%",
            )
        )
    p = out["paper"]
    rows.append(
        (
            "paper",
            "",
            "",
            "",
            f"{p['end_to_end_ms']:.0f}",
            f"{p['images_per_s'][0]}-{p['images_per_s'][1]}",
            f"{100 * p['verification_rate']:.0f}%",
        )
    )
    title = f"End to end per image at N={out['settings']['nodes']} (ms, median / p95)"
    blocks: list[Block] = [Rows(title, ("images", *STAGES, "images/s", "verified"), rows)]
    for r in out["workloads"]:
        c = r.get("restore_commit")
        if c:
            blocks.append(
                f"{r['images']} images: restoration consensus round {c['wall']['median_ms']:.0f} ms wall "
                f"(all nodes on this machine), {c['critical_path']['median_ms']:.1f} ms critical path; "
                f"original found {100 * r['original_found_rate']:.1f}%"
            )
    return blocks


def _tamper_report(out: dict[str, Any]) -> list[Block]:
    """The tamper table and its rates."""
    tam = out["tamper"]
    rows = []
    for kind, k in tam["kinds"].items():
        cos = "-" if k["min_shard_cosine_median"] is None else f"{k['min_shard_cosine_median']:.3f}"
        rows.append(
            (
                kind,
                str(k["cases"]),
                f"{100 * k['detected']:.1f}%",
                f"{100 * k['localised']:.1f}%",
                f"{100 * k['as_expected']:.1f}%",
                cos,
            )
        )
    columns = ("kind", "cases", "detected", "localised", "as expected", "median min cosine")
    o = tam["other_slice_min_cosine"]
    return [
        Rows(f"Tamper suite on {tam['slices']} slices", columns, rows),
        f"pixel tampers detected {100 * tam['detection_rate']:.1f}%, "
        f"localised {100 * tam['localisation_rate']:.1f}%; "
        f"false positives on authentic and lossless copies {100 * tam['false_positive_rate']:.1f}%",
        f"faithfulness threshold {out['settings']['faithful_cosine']}: a different slice's min shard "
        f"cosine is {o['median']:.3f} median, {o['max']:.3f} at most; "
        f"{100 * o['would_pass_as_faithful']:.1f}% would pass",
    ]


def report(out: dict[str, Any]) -> list[Block]:
    """The workload table (paper beside ours) and the tamper table."""
    return _workload_report(out) + _tamper_report(out)


def draw_summary(out: dict[str, Any]) -> Any:
    """Latency per stage against workload size, and the as-expected rate per tamper kind."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    sizes = [r["images"] for r in out["workloads"]]
    for stage in STAGES:
        a.plot(sizes, [r["latency"][stage]["median_ms"] for r in out["workloads"]], marker="o", label=stage)
    a.axhline(out["paper"]["end_to_end_ms"], ls="--", c="gray", label="paper end to end")
    a.set_xlabel("images in workload")
    a.set_ylabel("median ms per image")
    a.legend(fontsize=8)
    kinds = out["tamper"]["kinds"]
    b.barh(list(kinds), [100 * k["as_expected"] for k in kinds.values()], color="tab:green")
    b.set_xlabel("% as expected (caught and localised / still verifies / faithful)")
    b.set_xlim(0, 100)
    fig.tight_layout()
    return fig


def run_pipeline_bench(
    data: str | Path | None = None,
    *,
    workloads: Sequence[int] = PipelineConfig.workloads,
    nodes: int = 20,
    sigma: float = 0.05,
    batch: int = 16,
    tamper_slices: int = 100,
    consensus: str = "inproc",
    seed: int = 0,
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Measure, print the tables, write the JSON and the figure beside it; return the JSON document."""
    config = PipelineConfig(
        data,
        tuple(workloads),
        nodes=nodes,
        sigma=sigma,
        batch=batch,
        tamper_slices=tamper_slices,
        consensus=consensus,
        seed=seed,
    )
    console = make_console()
    with console_progress(console, bar=False) as watch:
        document = measure(config, watch)
    show(console, report(document))
    figure = figure_beside(json_path)
    figures = [] if figure is None else [FigureFile(figure, lambda: draw_summary(document))]
    publish(console, document, json_path, figures)
    return document

"""``prosima demo``: the whole provenance story on real brain slices, in one command.

Anchors a set of slices on a fresh ledger (through the nodes' consensus), corrupts copies at three
noise levels, restores them conditioned on the anchored fingerprints, verifies every restoration,
runs the tamper suite, and writes an HTML report with figures, tables, ledger statistics and the
latency of every stage. Every random choice derives from ``seed`` and is recorded in the report.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import (
    IMAGE_SUFFIXES,
    brats_slices,
    crop_or_pad,
    embedded_default_slices,
    find_brats_subjects,
    to_unit_range,
)
from prosima.imaging.io import read_image, write_png
from prosima.imaging.metrics import psnr, ssim
from prosima.imaging.validation import ImageError
from prosima.ledger.log.directory import Ledger
from prosima.pipelines.latency import latency_stats
from prosima.pipelines.tamper_suite import SUITE, TamperCase, run_suite
from prosima.provenance.anchor import anchor_images, read_inputs
from prosima.provenance.context import DEFAULT_GENERATOR, Provenance
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.restore import Generator, restore_file
from prosima.provenance.verify import verify_loaded

MARKER = ".prosima-demo"


@dataclass
class DemoConfig:
    """What the demo runs on and how."""

    out: Path = Path("out/demo")
    data: Path | None = None
    slices: int = 8
    sigmas: tuple[float, ...] = (0.02, 0.05, 0.10)
    tamper_slices: int = 2
    nodes: int = 20
    seed: int = 0
    model: str = DEFAULT_GENERATOR
    consensus: str = "inproc"
    archive: bool = False  # also run the demo through prosima serve and a private Orthanc

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"out": str(self.out), "data": None if self.data is None else str(self.data)}


@dataclass
class StageTimes:
    """Seconds per call of each stage."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, stage: str, value: float) -> None:
        self.seconds.setdefault(stage, []).append(value)

    def merge(self, prefix: str, timings: dict[str, list[float]]) -> None:
        for k, v in timings.items():
            self.seconds.setdefault(f"{prefix}.{k}", []).extend(v)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: latency_stats(values) for stage, values in self.seconds.items()}


def demo_slices(data: Path | None, n: int) -> Iterator[tuple[str, np.ndarray]]:
    """``n`` 256x256 slices in [0, 1], evenly spread: the embedded MNI152 brain by default, a BraTS
    tree (t1n), or a folder of 2-D image files."""
    if data is None:
        source = embedded_default_slices()
    elif data.is_dir() and any(p.is_dir() for p in data.iterdir()):
        find_brats_subjects(data)
        source = brats_slices(data)
    else:
        files = sorted(p for p in Path(data).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageError(f"{data}: no BraTS subjects and no image files ({', '.join(IMAGE_SUFFIXES)})")
        picks = np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)
        for i in dict.fromkeys(picks.tolist()):
            loaded = read_image(files[i], as_gray=True)
            unit = to_unit_range(loaded.array, loaded.meta.original_dtype)
            lo, hi = float(unit.min()), float(unit.max())
            unit = (unit - lo) / (hi - lo) if hi > lo and (lo < 0 or hi > 1) else unit
            yield files[i].stem, crop_or_pad(np.asarray(unit[..., 0] if unit.ndim == 3 else unit), (256, 256))
        return
    # the middle half of the usable slices: whole brain sections, not the tips of the volume
    lo, hi = (len(source) - 1) * 0.25, (len(source) - 1) * 0.75
    picks = np.linspace(lo, hi, min(n, len(source))).round().astype(int)
    for i in dict.fromkeys(picks.tolist()):
        item = source[i]
        yield f"{item.subject}-{item.contrast}-z{item.z:03d}", item.image


def _restore_row(clean: np.ndarray, noisy: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    return {
        "psnr_corrupted": psnr(clean, noisy, 1.0),
        "psnr_restored": psnr(clean, restored, 1.0),
        "ssim_corrupted": ssim(clean, noisy, 1.0),
        "ssim_restored": ssim(clean, restored, 1.0),
    }


def run_demo(cfg: DemoConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the demo into ``cfg.out`` and return the report (also written as JSON and HTML)."""
    out = Path(cfg.out)
    if (out / MARKER).is_file():
        shutil.rmtree(out)  # a previous demo's output (marked as such): the demo starts afresh
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a previous demo's output: choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by prosima demo; the next demo into this folder replaces it\n")
    for sub in ("images", "corrupted", "restored", "tampered", "figures"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    times = StageTimes()
    t_all = time.perf_counter()
    slices = list(demo_slices(cfg.data, cfg.slices))
    files = []
    for name, image in slices:
        path = out / "images" / f"{name}.png"
        write_png(path, image, data_range=(0.0, 1.0))
        files.append(path)
    # the slices with most anatomy first: they carry the tamper suite and the figures
    showcase = sorted(files, key=lambda f: -float((read_image(f).array > 12).mean()))
    ledger = Ledger.init(out / "ledger", nodes=cfg.nodes)
    try:
        prov = Provenance.open(ledger, consensus=cfg.consensus, seed=cfg.seed)
        generator = Generator.load(cfg.model)
        model_record = anchor_model(ledger, cfg.model)
        n_restore = len(files) * len(cfg.sigmas)
        n_tamper = min(cfg.tamper_slices, len(files)) * len(SUITE)
        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task("anchor", total=len(files))
            timings: dict[str, list[float]] = {}
            t0 = time.perf_counter()
            anchored = anchor_images(prov, read_inputs(files), timings=timings)
            times.add("anchor.total_per_image", (time.perf_counter() - t0) / max(1, len(files)))
            times.merge("anchor", timings)
            bar.update(task, completed=len(files))
            originals = []
            for f in files:
                t0 = time.perf_counter()
                originals.append(verify_loaded(prov, read_image(f)))
                times.add("verify.original", time.perf_counter() - t0)
            task = bar.add_task("restore + verify", total=n_restore)
            restorations = []
            for s_i, sigma in enumerate(cfg.sigmas):
                for f_i, (f, a) in enumerate(zip(files, anchored, strict=True)):
                    seed = cfg.seed * 1000 + s_i * 100 + f_i
                    clean = read_image(f).array / 255.0
                    noisy = np.clip(gaussian_noise(clean, sigma, seed=seed).image, 0.0, 1.0)
                    cpath = out / "corrupted" / f"{f.stem}.sigma{sigma:.2f}.png"
                    write_png(cpath, noisy, data_range=(0.0, 1.0))
                    rpath = out / "restored" / f"{f.stem}.sigma{sigma:.2f}.png"
                    timings = {}
                    t0 = time.perf_counter()
                    done = restore_file(prov, cpath, rpath, generator, timings=timings)
                    times.add("restore.total", time.perf_counter() - t0)
                    times.merge("restore", timings)
                    t0 = time.perf_counter()
                    verdict = verify_loaded(prov, read_image(rpath))
                    times.add("verify.restoration", time.perf_counter() - t0)
                    noisy_read = read_image(cpath).array / 255.0
                    restored = read_image(rpath).array / 255.0
                    restorations.append(
                        {
                            "slice": f.stem,
                            "sigma": sigma,
                            "noise_seed": seed,
                            "tx": done.tx,
                            "matched_original": done.match["tx"] == a.tx,
                            "similarity": done.match.get("similarity"),
                            "verified": verdict.ok,
                            "status": verdict.status,
                            "min_cosine": None
                            if verdict.shard_cosines is None
                            else min(verdict.shard_cosines),
                            "reasons": verdict.reasons,
                            **_restore_row(clean, noisy_read, restored),
                        }
                    )
                    bar.advance(task)
            task = bar.add_task("tamper suite", total=n_tamper)
            tamper_cases: list[TamperCase] = []
            for f_i, f in enumerate(showcase[: cfg.tamper_slices]):
                t0 = time.perf_counter()
                cases = run_suite(prov, f, out / "tampered", seed=cfg.seed * 1000 + f_i)
                times.add("verify.tamper_suite_per_case", (time.perf_counter() - t0) / len(cases))
                tamper_cases.extend(cases)
                bar.advance(task, len(cases))
        chain = ledger.verify()
        stats = ledger.stats()
    finally:
        ledger.close()
    archive = None
    if cfg.archive:
        from prosima.pipelines.archive_demo import ArchiveDemoConfig, run_archive_demo

        archive = run_archive_demo(
            ArchiveDemoConfig(out / "through-archive", out / "ledger", sigmas=cfg.sigmas, seed=cfg.seed),
            slices,
            note=print if progress else lambda _m: None,
        )
        with Ledger.open(out / "ledger") as again:  # the records the service added
            chain, stats = again.verify(), again.stats()
    report = {
        "config": cfg.to_json(),
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
        "seconds_total": time.perf_counter() - t_all,
        "model": model_record | {"name": generator.name},
        "encoder": prov.encoder_digest,
        "anchored": [a.to_json() for a in anchored],
        "originals_verified": sum(v.ok for v in originals),
        "originals": len(originals),
        "restorations": restorations,
        "tamper": [c.to_json() for c in tamper_cases],
        "ledger": stats
        | {
            "chain_ok": chain.ok,
            "fingerprints": len(list((out / "ledger" / "fingerprints").rglob("*.cbor"))),
        },
        "latency": times.summary(),
        "archive": archive,
    }
    from prosima.pipelines.report import write_report

    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    write_report(out, report, showcase, tamper_cases, prov.k)
    return report

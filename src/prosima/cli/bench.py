"""``prosima bench``: the benchmarks; each prints its tables, writes its JSON (``--json FILE``) and
saves its plots beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import BenchJsonOption, ConsensusOption, QuietOption
from prosima.cli.parsing import csv_list, integer_list, number_list
from prosima.errors import InputError

app = command_group("Benchmarks that print tables, write JSON and save plots.")

SigmasOption = Annotated[str, typer.Option(help="Comma-separated Gaussian noise sigmas on [0, 1].")]
MaxSlicesOption = Annotated[int | None, typer.Option("--max-slices", help="Evenly spaced subset of slices.")]
ContrastsOption = Annotated[str, typer.Option(help="Comma-separated BraTS contrasts: t1n,t1c,t2w,t2f.")]
SeedOption = Annotated[int, typer.Option(help="Base seed of the noise.")]
FigureOption = Annotated[
    Path | None, typer.Option(help="Where to save the figure (default: beside the JSON).")
]
BratsOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="BraTS folder (<subject>/<subject>-<contrast>.nii.gz); default: embedded MNI152 brain.",
    ),
]
HeldOutOption = Annotated[str, typer.Option(help="Comma-separated held-out subject folders.")]


@app.command("denoise")
def bench_denoise(
    data: BratsOption = None,
    methods: Annotated[
        str, typer.Option(help="Comma-separated: noisy,nlm,tv,wavelet,bm3d.")
    ] = "noisy,nlm,tv,wavelet,bm3d",
    sigmas: SigmasOption = "0.02,0.05,0.10",
    max_slices: MaxSlicesOption = None,
    subjects: Annotated[
        str | None, typer.Option(help="Comma-separated subject folders (default: all).")
    ] = None,
    contrasts: ContrastsOption = "t1n",
    seed: SeedOption = 0,
    json_path: BenchJsonOption = None,
    figure: FigureOption = None,
    quiet: QuietOption = False,
) -> None:
    """Classical denoisers at each noise level: PSNR, SSIM, brain PSNR, seconds per image."""
    from prosima.bench.denoise import run_denoise_bench

    run_denoise_bench(
        data,
        csv_list(methods),
        number_list(sigmas, "--sigmas"),
        max_slices=max_slices,
        subjects=csv_list(subjects) if subjects else None,
        contrasts=csv_list(contrasts),
        seed=seed,
        json_path=json_path,
        figure_path=figure,
        progress=not quiet,
    )


@app.command("restore")
def bench_restore(
    data: BratsOption = None,
    subjects: HeldOutOption = "TCGA-DU-7294",
    sigmas: SigmasOption = "0.02,0.05,0.10",
    methods: Annotated[
        str, typer.Option(help="Comma-separated methods (also: noisy).")
    ] = "unet-pixel,unet-perceptual,unet-semantic,prosima-no-fingerprint,prosima-full,bm3d,nlm",
    contrasts: ContrastsOption = "t1n,t1c,t2w,t2f",
    max_slices: MaxSlicesOption = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            help="Folder with NAME.pt or NAME/best.pt for each model (default: the shipped weights)."
        ),
    ] = None,
    seed: SeedOption = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads (timing is per slice at batch 1).")] = 2,
    noise: Annotated[
        str, typer.Option(help="Comma-separated noise kinds of the slice rows: gaussian, rician.")
    ] = "gaussian",
    volume_slices: Annotated[
        int,
        typer.Option(
            help="Also score blocks of this many consecutive slices of each volume (0: slice rows only)."
        ),
    ] = 0,
    volume_methods: Annotated[
        str, typer.Option(help="Comma-separated methods of the volume rows.")
    ] = "noisy,bm3d,bm4d,prosima-full,prosima-volume",
    json_path: BenchJsonOption = None,
    figure: FigureOption = None,
    quiet: QuietOption = False,
) -> None:
    """Learned restorers vs BM3D and NLM (and BM4D on volumes): PSNR, SSIM, brain PSNR, embedding cosine,
    seconds per slice."""
    from prosima.bench.restore import run_restore_bench

    run_restore_bench(
        data,
        csv_list(methods),
        number_list(sigmas, "--sigmas"),
        max_slices=max_slices,
        subjects=csv_list(subjects) or None,
        contrasts=csv_list(contrasts),
        weights=weights,
        seed=seed,
        threads=threads,
        noises=csv_list(noise),
        volume_slices=volume_slices,
        volume_methods=csv_list(volume_methods),
        json_path=json_path,
        figure_path=figure,
        progress=not quiet,
    )


@app.command("fingerprint")
def bench_fingerprint(
    data: Annotated[
        Path | None, typer.Option("--data", help="BraTS folder; default: embedded MNI152 brain.")
    ] = None,
    subjects: HeldOutOption = "TCGA-DU-7294",
    sigmas: SigmasOption = "0.05,0.10",
    ks: Annotated[
        str, typer.Option("--k", help="Comma-separated shard counts of the fingerprint.")
    ] = "1,4,16,64",
    bits: Annotated[
        str, typer.Option(help="Comma-separated bits kept per fingerprint code (2-8).")
    ] = "8,4,2",
    contrasts: ContrastsOption = "t1n,t1c,t2w,t2f",
    max_slices: MaxSlicesOption = None,
    weights: Annotated[
        Path | None, typer.Option(help="Folder with NAME.pt (default: the shipped weights).")
    ] = None,
    seed: SeedOption = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
    json_path: BenchJsonOption = None,
) -> None:
    """prosima-full's PSNR against fingerprint bytes per slice (shards x bits; 0 bytes = blind)."""
    from prosima.bench.fingerprint_size import run_fingerprint_bench

    run_fingerprint_bench(
        data,
        number_list(sigmas, "--sigmas"),
        ks=integer_list(ks, "--k"),
        bits=integer_list(bits, "--bits"),
        subjects=csv_list(subjects) or None,
        contrasts=csv_list(contrasts),
        max_slices=max_slices,
        weights=weights,
        seed=seed,
        threads=threads,
        json_path=json_path,
    )


@app.command("restore-match")
def bench_restore_match(
    data: Annotated[
        Path, typer.Option("--data", help="BraTS folder: every subject but --held-out is anchored.")
    ],
    xray: Annotated[
        Path | None,
        typer.Option(
            "--xray", help="Chest X-ray label folders (<label>/*.png): some anchored, others never."
        ),
    ] = None,
    held_out: Annotated[
        str, typer.Option(help="Subject never anchored (its slices: negatives).")
    ] = "TCGA-DU-7294",
    contrasts: Annotated[
        str, typer.Option(help="Comma-separated BraTS contrasts anchored.")
    ] = "t1n,t1c,t2w,t2f",
    sigmas: Annotated[str, typer.Option(help="Comma-separated noise sigmas on [0, 1].")] = "0.02,0.05,0.10",
    noise: Annotated[str, typer.Option(help="Comma-separated: gaussian, rician.")] = "gaussian,rician",
    max_slices: Annotated[
        int, typer.Option("--max-slices", min=1, help="Queries per group, evenly spaced.")
    ] = 24,
    anchored_xrays: Annotated[int, typer.Option(min=0, help="X-rays anchored beside the brain slices.")] = 16,
    negative_xrays: Annotated[int, typer.Option(min=0, help="X-rays never anchored (negatives).")] = 24,
    min_similarity: Annotated[float | None, typer.Option(help="Rule scored (default: restore's).")] = None,
    min_margin: Annotated[float | None, typer.Option(help="Rule scored (default: restore's).")] = None,
    margin_scale: Annotated[float | None, typer.Option(help="Rule scored (default: restore's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the X-ray order and of every noise draw.")] = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    json_path: BenchJsonOption = None,
) -> None:
    """How often restore's matching rule accepts the right original of a noisy copy, and refuses
    images never anchored; a sweep over other rules (calibrates restore's --min-similarity,
    --min-margin and --margin-scale). --json writes every query and the sweep."""
    from prosima.bench.restore_match import run_restore_match_bench
    from prosima.provenance.match_rule import MatchRule

    base = MatchRule()
    rule = MatchRule(
        base.min_similarity if min_similarity is None else min_similarity,
        base.min_margin if min_margin is None else min_margin,
        base.margin_scale if margin_scale is None else margin_scale,
    )
    run_restore_match_bench(
        data,
        xray,
        held_out=held_out,
        contrasts=csv_list(contrasts),
        sigmas=number_list(sigmas, "--sigmas"),
        noises=csv_list(noise),
        max_slices=max_slices,
        anchored_xrays=anchored_xrays,
        negative_xrays=negative_xrays,
        rule=rule,
        seed=seed,
        threads=threads,
        json_path=json_path,
    )


@app.command("ledger")
def bench_ledger_command(
    transactions: Annotated[int, typer.Option("--transactions", help="Transactions to append.")] = 20_000,
    json_path: BenchJsonOption = None,
) -> None:
    """Append rate, proof size and verification time, bytes per transaction."""
    from prosima.bench.ledger import run_ledger_bench

    run_ledger_bench(transactions=transactions, json_path=None if json_path is None else str(json_path))


@app.command("consensus")
def bench_consensus_command(
    nodes: Annotated[int, typer.Option("--nodes", help="Ledger nodes (MPI ranks for the mpi backend).")] = 20,
    workloads: Annotated[
        str, typer.Option(help="Comma-separated workload sizes (images).")
    ] = "200,400,600,800,1000",
    batch: Annotated[int, typer.Option("--batch", help="Images per block in the throughput runs.")] = 64,
    unbatched: Annotated[
        int, typer.Option("--unbatched", help="Images committed one per block for latency.")
    ] = 200,
    backends: Annotated[
        str, typer.Option(help="Comma-separated: inproc, mpi (a rank per node), mpi:P (P ranks).")
    ] = "inproc,mpi,mpi:2",
    seed: Annotated[int, typer.Option(help="Seed of overlay, keys and workload.")] = 0,
    json_path: BenchJsonOption = None,
) -> None:
    """Table 5 / Figure 3: full replication, random sharding and GFT side by side; storage, latency,
    throughput."""
    from prosima.bench.consensus import run_consensus_bench

    run_consensus_bench(
        nodes=nodes,
        workloads=integer_list(workloads, "--workloads"),
        batch=batch,
        unbatched=unbatched,
        backends=csv_list(backends),
        seed=seed,
        json_path=None if json_path is None else str(json_path),
    )


@app.command("watermark")
def bench_watermark_command(
    size: Annotated[int, typer.Option(help="Down-sample the chest X-rays to SIZE x SIZE.")] = 64,
    seeds: Annotated[int, typer.Option(help="Malicious / Independent-Trigger runs per method.")] = 3,
    independent_runs: Annotated[int, typer.Option(help="Independent-Model runs per method.")] = 10,
    fraction: Annotated[
        float, typer.Option(help="Fraction of the target class's training images marked.")
    ] = 0.1,
    target: Annotated[str, typer.Option(help="Target class.")] = "Pneumonia",
    epochs: Annotated[int, typer.Option(help="Epochs of every classifier trained.")] = 10,
    generator_epochs: Annotated[int, typer.Option(help="Epochs of the X-Mark generator.")] = 8,
    json_path: BenchJsonOption = None,
) -> None:
    """X-Mark against BadNets and Blended: scenarios, attacks, image quality and clean accuracy."""
    from prosima.bench.watermark import run_watermark_bench

    run_watermark_bench(
        size=size,
        seeds=seeds,
        independent_runs=independent_runs,
        fraction=fraction,
        target=target,
        epochs=epochs,
        generator_epochs=generator_epochs,
        json_path=json_path,
    )


@app.command("fusion")
def bench_fusion_command(
    data: Annotated[
        Path | None, typer.Option(help="Harvard AANLIB root (default ../shared/data/fusion/harvard_aanlib).")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="Fusion weights (default: the shipped model).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many test pairs per modality pair.")] = None,
    he_images: Annotated[
        int, typer.Option(help="Test pairs per modality pair fused under CKKS encryption.")
    ] = 2,
    he_train_steps: Annotated[
        int, typer.Option(help="Steps of encrypted output-layer training measured (0: skip).")
    ] = 5,
    json_path: BenchJsonOption = None,
) -> None:
    """Every fusion metric for ours (plaintext and under HE) and the classical baselines, per pair."""
    from prosima.bench.fusion import run_fusion_bench

    try:
        run_fusion_bench(
            data,
            model=model,
            limit=limit,
            he_images=he_images,
            he_train_steps=he_train_steps,
            json_path=json_path,
        )
    except ImportError as exc:
        raise InputError(
            f"{exc}: encrypted inference needs the 'he' extra (pip install -e '.[he]')"
        ) from None


@app.command("pipeline")
def bench_pipeline_command(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="BraTS folder (all four contrasts are used); default: embedded MNI152 brain."
        ),
    ] = None,
    workloads: Annotated[
        str, typer.Option(help="Comma-separated workload sizes (images).")
    ] = "200,400,600,800,1000",
    nodes: Annotated[int, typer.Option(help="Ledger nodes running consensus.")] = 20,
    sigma: Annotated[float, typer.Option(help="Gaussian noise sigma of the corrupted copies.")] = 0.05,
    batch: Annotated[int, typer.Option(help="Images anchored per consensus round.")] = 16,
    tamper_slices: Annotated[int, typer.Option(help="Slices the tamper suite runs on.")] = 100,
    consensus: ConsensusOption = "inproc",
    seed: Annotated[int, typer.Option(help="Seed of slice order and noise.")] = 0,
    json_path: BenchJsonOption = None,
) -> None:
    """End to end per image (anchor, restore, verify) at N nodes, and the tamper suite's rates."""
    from prosima.bench.pipeline import run_pipeline_bench

    run_pipeline_bench(
        data,
        workloads=integer_list(workloads, "--workloads"),
        nodes=nodes,
        sigma=sigma,
        batch=batch,
        tamper_slices=tamper_slices,
        consensus=consensus,
        seed=seed,
        json_path=json_path,
    )


@app.command("service")
def bench_service_command(
    nodes: Annotated[int, typer.Option(help="Ledger nodes running consensus in the service.")] = 20,
    slices: Annotated[int, typer.Option(help="Demo slices anchored through the service first.")] = 8,
    repeats: Annotated[
        int, typer.Option(min=1, help="Requests measured per operation (after a warm-up).")
    ] = 20,
    batch: Annotated[int, typer.Option(min=1, help="New slices in the batched anchor request.")] = 16,
    concurrent: Annotated[
        int, typer.Option(min=1, help="One-slice anchor requests sent at once (group commit).")
    ] = 32,
    clients: Annotated[int, typer.Option(min=1, help="Clients sending them.")] = 8,
    threads: Annotated[int, typer.Option(min=1, help="torch threads of the service process.")] = 2,
    seed: SeedOption = 0,
    json_path: BenchJsonOption = None,
) -> None:
    """Latency of the running service over HTTP: verify, anchor, restore + record (critical path
    beside wall time), against the aims."""
    from prosima.bench.service import ServiceBenchConfig, run_service_bench

    config = ServiceBenchConfig(
        nodes=nodes,
        slices=slices,
        repeats=repeats,
        batch=batch,
        concurrent=concurrent,
        clients=clients,
        threads=threads,
        seed=seed,
    )
    run_service_bench(config, json_path=json_path)

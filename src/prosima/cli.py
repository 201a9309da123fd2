"""The ``prosima`` command line: one entry point, a subcommand group per task.

Heavy libraries are imported inside commands so that ``prosima --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from prosima.ledger.cli import app as ledger_app

app = typer.Typer(
    name="prosima",
    help="PROSIMA: provenance-secured semantic restoration of medical images.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect medical image files and folders.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print tables, write JSON and save plots.", no_args_is_help=True)
models_app = typer.Typer(help="Trained weights and their anchored versions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.add_typer(ledger_app, name="ledger")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"prosima {version('prosima')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    max_pixels: int | None = typer.Option(
        None,
        "--max-pixels",
        min=1,
        help="Refuse image files whose header claims more values (pixels x channels) than this; "
        "default 536870912 (2 GiB as float32) or $PROSIMA_MAX_IMAGE_PIXELS. "
        "Give it before the command: prosima --max-pixels N verify ...",
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    from prosima.imaging.limits import pixel_limit

    ctx.with_resource(pixel_limit(max_pixels))


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _sigmas(text: str) -> list[float]:
    try:
        return [float(s) for s in _csv(text)]
    except ValueError:
        raise _fail(f"--sigmas must be comma-separated numbers, got {text!r}") from None


def _write_json(obj: object, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2))


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@data_app.command("info")
def data_info(
    path: Path = typer.Argument(..., help="A file (PNG, JPEG, .npy, NIfTI, DICOM) or a folder."),
    min_brain_fraction: float = typer.Option(
        0.05, help="Foreground fraction for a slice to count as usable."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the description as JSON."),
) -> None:
    """Describe a file or folder: modality, shape, spacing, intensity range, usable slices."""
    from prosima.imaging.describe import describe_path
    from prosima.imaging.validation import ImageError

    try:
        info = describe_path(path, min_brain_fraction)
    except ImageError as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(info, indent=2))
    _write_json(info, json_path)


@bench_app.command("denoise")
def bench_denoise(
    data: Path | None = typer.Option(
        None,
        "--data",
        help="BraTS folder (<subject>/<subject>-<contrast>.nii.gz); default: embedded MNI152 brain.",
    ),
    methods: str = typer.Option(
        "noisy,nlm,tv,wavelet,bm3d", help="Comma-separated: noisy,nlm,tv,wavelet,bm3d."
    ),
    sigmas: str = typer.Option("0.02,0.05,0.10", help="Comma-separated Gaussian noise sigmas on [0, 1]."),
    max_slices: int | None = typer.Option(None, "--max-slices", help="Evenly spaced subset of slices."),
    subjects: str | None = typer.Option(None, help="Comma-separated subject folders (default: all)."),
    contrasts: str = typer.Option("t1n", help="Comma-separated BraTS contrasts: t1n,t1c,t2w,t2f."),
    seed: int = typer.Option(0, help="Base seed of the noise."),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write results as JSON (and a PNG beside it)."
    ),
    figure: Path | None = typer.Option(None, help="Where to save the figure (default: beside the JSON)."),
) -> None:
    """Classical denoisers at each noise level: PSNR, SSIM, brain PSNR, seconds per image."""
    from prosima.bench.denoise import run_denoise_bench
    from prosima.imaging.validation import ImageError
    from prosima.optional import MissingExtraError

    sigma_values = _sigmas(sigmas)
    try:
        run_denoise_bench(
            data,
            _csv(methods),
            sigma_values,
            max_slices=max_slices,
            subjects=_csv(subjects) if subjects else None,
            contrasts=_csv(contrasts),
            seed=seed,
            json_path=json_path,
            figure_path=figure,
        )
    except (ImageError, MissingExtraError) as exc:
        raise _fail(str(exc)) from None


@bench_app.command("restore")
def bench_restore(
    data: Path | None = typer.Option(
        None,
        "--data",
        help="BraTS folder (<subject>/<subject>-<contrast>.nii.gz); default: embedded MNI152 brain.",
    ),
    subjects: str = typer.Option("TCGA-DU-7294", help="Comma-separated held-out subject folders."),
    sigmas: str = typer.Option("0.02,0.05,0.10", help="Comma-separated Gaussian noise sigmas on [0, 1]."),
    methods: str = typer.Option(
        "unet-pixel,unet-perceptual,unet-semantic,prosima-no-fingerprint,prosima-full,bm3d,nlm",
        help="Comma-separated methods (also: noisy).",
    ),
    contrasts: str = typer.Option("t1n,t1c,t2w,t2f", help="Comma-separated BraTS contrasts."),
    max_slices: int | None = typer.Option(None, "--max-slices", help="Evenly spaced subset of slices."),
    weights: Path | None = typer.Option(
        None, help="Folder with NAME.pt or NAME/best.pt for each model (default: the shipped weights)."
    ),
    seed: int = typer.Option(0, help="Base seed of the noise."),
    threads: int = typer.Option(2, help="torch CPU threads (timing is per slice at batch 1)."),
    noise: str = typer.Option(
        "gaussian", help="Comma-separated noise kinds of the slice rows: gaussian, rician."
    ),
    volume_slices: int = typer.Option(
        0, help="Also score blocks of this many consecutive slices of each volume (0: slice rows only)."
    ),
    volume_methods: str = typer.Option(
        "noisy,bm3d,bm4d,prosima-full,prosima-volume", help="Comma-separated methods of the volume rows."
    ),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write results as JSON (and a PNG beside it)."
    ),
    figure: Path | None = typer.Option(None, help="Where to save the figure (default: beside the JSON)."),
) -> None:
    """Learned restorers vs BM3D and NLM (and BM4D on volumes): PSNR, SSIM, brain PSNR, embedding cosine,
    seconds per slice."""
    from prosima.bench.restore import run_restore_bench
    from prosima.imaging.validation import ImageError
    from prosima.models.checkpoint import CheckpointError
    from prosima.optional import MissingExtraError

    sigma_values = _sigmas(sigmas)
    try:
        run_restore_bench(
            data,
            _csv(methods),
            sigma_values,
            max_slices=max_slices,
            subjects=_csv(subjects) or None,
            contrasts=_csv(contrasts),
            weights=weights,
            seed=seed,
            threads=threads,
            noises=_csv(noise),
            volume_slices=volume_slices,
            volume_methods=_csv(volume_methods),
            json_path=json_path,
            figure_path=figure,
        )
    except (ImageError, CheckpointError, MissingExtraError) as exc:
        raise _fail(str(exc)) from None


@bench_app.command("fingerprint")
def bench_fingerprint(
    data: Path | None = typer.Option(None, "--data", help="BraTS folder; default: embedded MNI152 brain."),
    subjects: str = typer.Option("TCGA-DU-7294", help="Comma-separated held-out subject folders."),
    sigmas: str = typer.Option("0.05,0.10", help="Comma-separated Gaussian noise sigmas on [0, 1]."),
    ks: str = typer.Option("1,4,16,64", "--k", help="Comma-separated shard counts of the fingerprint."),
    bits: str = typer.Option("8,4,2", help="Comma-separated bits kept per fingerprint code (2-8)."),
    contrasts: str = typer.Option("t1n,t1c,t2w,t2f", help="Comma-separated BraTS contrasts."),
    max_slices: int | None = typer.Option(None, "--max-slices", help="Evenly spaced subset of slices."),
    weights: Path | None = typer.Option(None, help="Folder with NAME.pt (default: the shipped weights)."),
    seed: int = typer.Option(0, help="Base seed of the noise."),
    threads: int = typer.Option(2, help="torch CPU threads."),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write results as JSON (and a PNG beside it)."
    ),
) -> None:
    """prosima-full's PSNR against fingerprint bytes per slice (shards x bits; 0 bytes = blind)."""
    from prosima.bench.fingerprint_size import run_fingerprint_bench
    from prosima.imaging.validation import ImageError
    from prosima.models.checkpoint import CheckpointError

    try:
        k_values = [int(v) for v in _csv(ks)]
        bit_values = [int(v) for v in _csv(bits)]
    except ValueError:
        raise _fail(f"--k and --bits take comma-separated integers, got {ks!r} and {bits!r}") from None
    try:
        run_fingerprint_bench(
            data,
            _sigmas(sigmas),
            ks=k_values,
            bits=bit_values,
            subjects=_csv(subjects) or None,
            contrasts=_csv(contrasts),
            max_slices=max_slices,
            weights=weights,
            seed=seed,
            threads=threads,
            json_path=json_path,
        )
    except (ImageError, CheckpointError, ValueError) as exc:
        raise _fail(str(exc)) from None


@bench_app.command("restore-match")
def bench_restore_match(
    data: Path = typer.Option(..., "--data", help="BraTS folder: every subject but --held-out is anchored."),
    xray: Path | None = typer.Option(
        None, "--xray", help="Chest X-ray label folders (<label>/*.png): some anchored, others never."
    ),
    held_out: str = typer.Option("TCGA-DU-7294", help="Subject never anchored (its slices: negatives)."),
    contrasts: str = typer.Option("t1n,t1c,t2w,t2f", help="Comma-separated BraTS contrasts anchored."),
    sigmas: str = typer.Option("0.02,0.05,0.10", help="Comma-separated noise sigmas on [0, 1]."),
    noise: str = typer.Option("gaussian,rician", help="Comma-separated: gaussian, rician."),
    max_slices: int = typer.Option(24, "--max-slices", min=1, help="Queries per group, evenly spaced."),
    anchored_xrays: int = typer.Option(16, min=0, help="X-rays anchored beside the brain slices."),
    negative_xrays: int = typer.Option(24, min=0, help="X-rays never anchored (negatives)."),
    min_similarity: float | None = typer.Option(None, help="Rule scored (default: restore's)."),
    min_margin: float | None = typer.Option(None, help="Rule scored (default: restore's)."),
    margin_scale: float | None = typer.Option(None, help="Rule scored (default: restore's)."),
    seed: int = typer.Option(0, help="Seed of the X-ray order and of every noise draw."),
    threads: int = typer.Option(1, help="torch CPU threads."),
    json_path: Path | None = typer.Option(None, "--json", help="Write every query and the sweep as JSON."),
) -> None:
    """How often restore's matching rule accepts the right original of a noisy copy, and refuses
    images never anchored; a sweep over other rules (calibrates restore's --min-similarity,
    --min-margin and --margin-scale)."""
    from prosima.bench.restore_match import run_restore_match_bench
    from prosima.imaging.validation import ImageError
    from prosima.provenance.match_rule import MatchRule

    try:
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
            contrasts=_csv(contrasts),
            sigmas=_sigmas(sigmas),
            noises=_csv(noise),
            max_slices=max_slices,
            anchored_xrays=anchored_xrays,
            negative_xrays=negative_xrays,
            rule=rule,
            seed=seed,
            threads=threads,
            json_path=json_path,
        )
    except (ImageError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None


@app.command("train")
def train_command(
    config: Path = typer.Option(..., "--config", help="YAML config (see configs/; every field documented)."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a field: section.field=VALUE (VALUE is YAML); repeatable."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in the output folder."),
    steps: int | None = typer.Option(None, "--steps", help="Total steps (overrides train.steps)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (overrides out_dir)."),
    export: str | None = typer.Option(
        None, "--export", help="After training, export the best weights under this name, with a model card."
    ),
    weights_dir: Path | None = typer.Option(
        None, "--weights-dir", help="Where --export writes (default: the package's weights folder)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train an encoder or a restoration generator from a config; checkpoints, validation, resume."""
    from prosima.models.checkpoint import CheckpointError
    from prosima.models.config import ConfigError, load_config
    from prosima.models.pretrained import export_pretrained
    from prosima.models.training import train

    extra = list(overrides)
    if steps is not None:
        extra.append(f"train.steps={steps}")
    if out is not None:
        extra.append(f"out_dir={out}")
    try:
        cfg = load_config(config, extra)
        summary = train(cfg, resume=resume, progress=progress)
        if export:
            source = summary["best_checkpoint"] or summary["checkpoint"]
            card = export_pretrained(source, export, weights_dir)
            summary["exported"] = {"name": card.name, "file": card.file, "sha256": card.sha256}
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(summary, indent=2))


@app.command("train-federated")
def train_federated_command(
    config: Path = typer.Option(
        ..., "--config", help="YAML config with a 'federated' section (see configs/)."
    ),
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory the rounds are anchored on."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a field: section.field=VALUE (VALUE is YAML); repeatable."
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (overrides out_dir)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the per-round summary as JSON."),
) -> None:
    """Protocol 1: FedAvg over sites on NVIDIA FLARE's simulator; every round's weights anchored."""
    from prosima.federated.job import run_federated
    from prosima.ledger.errors import LedgerError
    from prosima.models.checkpoint import CheckpointError
    from prosima.models.config import ConfigError, load_config
    from prosima.optional import MissingExtraError

    try:
        cfg = load_config(config, list(overrides))
        summary = run_federated(cfg, ledger, out_dir=out)
    except (
        ConfigError,
        CheckpointError,
        LedgerError,
        MissingExtraError,
        ValueError,
        FileNotFoundError,
    ) as exc:
        raise _fail(str(exc)) from None
    for r in summary["rounds"]:
        v = r["validation"]
        typer.echo(
            f"round {r['round']}: val PSNR {v['val_psnr']:.2f} dB, weights {r['digest'][:16]}, "
            f"anchored tx {r['tx'][:16]} at height {r['height']}"
        )
    _write_json(summary, json_path)


@models_app.command("curve")
def models_curve_command(
    sources: list[str] = typer.Argument(
        ..., help="pretrained:NAME (the curve its card carries across sessions) or a run folder."
    ),
    png: Path = typer.Option(..., "--png", help="Where to save the plot."),
    bench: Path | None = typer.Option(
        None, "--bench", help="A 'bench restore' JSON: draw BM3D / NLM at each sigma as the bar to clear."
    ),
) -> None:
    """Plot validation PSNR against cumulative training steps, one panel per validation sigma."""
    import json

    from prosima.bench.curves import save_curves
    from prosima.models.checkpoint import CheckpointError

    try:
        curves = save_curves(sources, png, bench)
    except (CheckpointError, FileNotFoundError, json.JSONDecodeError, KeyError) as exc:
        raise _fail(str(exc)) from None
    for label, rows in curves.items():
        last = rows[-1]
        figures = ", ".join(
            f"{k.removeprefix('val_psnr@')}: {v:.2f}" for k, v in last.items() if k.startswith("val_psnr@")
        )
        typer.echo(f"{label}: {len(rows)} validations, last at step {last['step']} ({figures} dB)")
    typer.echo(f"wrote {png}")


@models_app.command("verify")
def models_verify_command(
    weights: Path = typer.Argument(..., help="A checkpoint or exported weights file."),
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory to look the weights up in."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the verdict as JSON."),
) -> None:
    """Is this weights file an anchored model version, and which round made it? Exit 0 only if so."""
    from prosima.ledger.errors import LedgerError
    from prosima.ledger.log.directory import Ledger
    from prosima.models.checkpoint import CheckpointError
    from prosima.provenance.model_versions import find_versions, weights_digest

    try:
        digest, _ = weights_digest(weights)
        with Ledger.open(ledger) as led:
            found = find_versions(led, digest)
    except (CheckpointError, LedgerError) as exc:
        raise _fail(str(exc)) from None
    anchored = any(f["proof_ok"] for f in found)
    verdict = {"weights": str(weights), "digest": digest, "anchored": anchored, "records": found}
    if not found:
        typer.echo(f"NOT ANCHORED: weights {digest} are not a model version on this ledger")
    for f in found:
        v = f["version"]
        where = f"round {v['round']} of {v['rounds']}" if v.get("round") is not None else "no round"
        sites = ", ".join(s["name"] for s in v.get("sites", [])) or "-"
        state = "ANCHORED" if f["proof_ok"] else "PROOF FAILED: " + "; ".join(f["proof_problems"])
        typer.echo(
            f"{state}: {v['name']} {digest[:16]}, {where}, sites {sites}, tx {f['tx'][:16]} "
            f"at height {f['height']}"
        )
    _write_json(verdict, json_path)
    if not anchored:
        raise typer.Exit(1)


@bench_app.command("ledger")
def bench_ledger_command(
    transactions: int = typer.Option(20_000, "--transactions", help="Transactions to append."),
    json_path: str | None = typer.Option(None, "--json", help="Write results as JSON to this path."),
) -> None:
    """Append rate, proof size and verification time, bytes per transaction."""
    from prosima.bench.ledger import run_ledger_bench

    run_ledger_bench(transactions=transactions, json_path=json_path)


@bench_app.command("consensus")
def bench_consensus_command(
    nodes: int = typer.Option(20, "--nodes", help="Ledger nodes (MPI ranks for the mpi backend)."),
    workloads: str = typer.Option("200,400,600,800,1000", help="Comma-separated workload sizes (images)."),
    batch: int = typer.Option(64, "--batch", help="Images per block in the throughput runs."),
    unbatched: int = typer.Option(200, "--unbatched", help="Images committed one per block for latency."),
    backends: str = typer.Option(
        "inproc,mpi,mpi:2", help="Comma-separated: inproc, mpi (a rank per node), mpi:P (P ranks)."
    ),
    seed: int = typer.Option(0, help="Seed of overlay, keys and workload."),
    json_path: str | None = typer.Option(None, "--json", help="Write results as JSON (plots beside it)."),
) -> None:
    """Table 5 / Figure 3: full replication, random sharding and GFT side by side; storage, latency,
    throughput."""
    from prosima.bench.consensus import run_consensus_bench

    try:
        sizes = [int(w) for w in _csv(workloads)]
        run_consensus_bench(
            nodes=nodes,
            workloads=sizes,
            batch=batch,
            unbatched=unbatched,
            backends=_csv(backends),
            seed=seed,
            json_path=json_path,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None


@bench_app.command("watermark")
def bench_watermark_command(
    size: int = typer.Option(64, help="Down-sample the chest X-rays to SIZE x SIZE."),
    seeds: int = typer.Option(3, help="Malicious / Independent-Trigger runs per method."),
    independent_runs: int = typer.Option(10, help="Independent-Model runs per method."),
    fraction: float = typer.Option(0.1, help="Fraction of the target class's training images marked."),
    target: str = typer.Option("Pneumonia", help="Target class."),
    epochs: int = typer.Option(10, help="Epochs of every classifier trained."),
    generator_epochs: int = typer.Option(8, help="Epochs of the X-Mark generator."),
    json_path: Path | None = typer.Option(None, "--json", help="Write results as JSON (figure beside it)."),
) -> None:
    """X-Mark against BadNets and Blended: scenarios, attacks, image quality and clean accuracy."""
    from prosima.bench.watermark import run_watermark_bench
    from prosima.watermark.data import DataError

    try:
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
    except (DataError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None


@bench_app.command("fusion")
def bench_fusion_command(
    data: Path | None = typer.Option(
        None, help="Harvard AANLIB root (default ../shared/data/fusion/harvard_aanlib)."
    ),
    model: Path | None = typer.Option(None, help="Fusion weights (default: the shipped model)."),
    limit: int | None = typer.Option(None, help="At most this many test pairs per modality pair."),
    he_images: int = typer.Option(2, help="Test pairs per modality pair fused under CKKS encryption."),
    he_train_steps: int = typer.Option(
        5, help="Steps of encrypted output-layer training measured (0: skip)."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write results as JSON (figure beside it)."),
) -> None:
    """Every fusion metric for ours (plaintext and under HE) and the classical baselines, per pair."""
    from prosima.bench.fusion import run_fusion_bench
    from prosima.fusion.data import FusionDataError

    try:
        run_fusion_bench(
            data,
            model=model,
            limit=limit,
            he_images=he_images,
            he_train_steps=he_train_steps,
            json_path=json_path,
        )
    except (FusionDataError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    except ImportError as exc:
        raise _fail(f"{exc}: encrypted inference needs the 'he' extra (pip install -e '.[he]')") from None


from prosima import provenance_cli  # noqa: E402, F401  (registers anchor, restore, verify, demo)
from prosima.fusion_cli import fuse_command, fusion_app  # noqa: E402
from prosima.records_cli import records_app  # noqa: E402
from prosima.watermark_cli import watermark_app  # noqa: E402

app.add_typer(watermark_app, name="watermark")
app.add_typer(fusion_app, name="fusion")
app.add_typer(records_app, name="records")
app.command("fuse")(fuse_command)

if __name__ == "__main__":
    app()

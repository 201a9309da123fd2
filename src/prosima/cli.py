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
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
app.add_typer(ledger_app, name="ledger")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


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

    try:
        sigma_values = [float(s) for s in _csv(sigmas)]
    except ValueError:
        raise _fail(f"--sigmas must be comma-separated numbers, got {sigmas!r}") from None
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


@bench_app.command("ledger")
def bench_ledger_command(
    transactions: int = typer.Option(20_000, "--transactions", help="Transactions to append."),
    json_path: str | None = typer.Option(None, "--json", help="Write results as JSON to this path."),
) -> None:
    """Append rate, proof size and verification time, bytes per transaction."""
    from prosima.bench.ledger import run_ledger_bench

    run_ledger_bench(transactions=transactions, json_path=json_path)


if __name__ == "__main__":
    app()

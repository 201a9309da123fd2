"""``prosima watermark``: ``train`` an X-Mark marker, ``embed`` it in a dataset (and commit the key to
a ledger), ``verify`` a suspicious model against a key.

Exit status: 0 success (for ``verify``: ownership is claimed), 1 a negative verdict, 2 an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import JsonOption, OptionalLedgerOption, QuietOption
from prosima.cli.output import Output

app = command_group("X-Mark: clean-label dataset watermarks and black-box ownership verification.")

DatasetArgument = Annotated[
    Path, typer.Argument(help="A folder of class folders of PNGs, or a PneumoniaMNIST .npz.")
]
SIZE_HELP = "Down-sample PNG images to SIZE x SIZE (0: as stored); ignored for .npz."


@app.command("train")
def train_command(
    dataset: DatasetArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for surrogate.pt, generator.pt and train.json.")],
    target: Annotated[
        str | None, typer.Option(help="Target class (name or index); default: the first.")
    ] = None,
    size: Annotated[int, typer.Option(help=SIZE_HELP)] = 128,
    eps: Annotated[int, typer.Option(help="L-infinity budget of the mark, in 1/255 steps.")] = 8,
    mask_fraction: Annotated[
        float, typer.Option(help="Fraction of pixels (the most salient) the mark may touch.")
    ] = 0.25,
    arch: Annotated[str, typer.Option(help="Surrogate architecture: cnn or resnet.")] = "cnn",
    surrogate_epochs: Annotated[int, typer.Option(help="Surrogate training epochs.")] = 10,
    epochs: Annotated[int, typer.Option(help="Generator training epochs.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the surrogate and generator training.")] = 0,
    split_seed: Annotated[int, typer.Option(help="Seed of the split by file.")] = 0,
    quiet: QuietOption = False,
) -> None:
    """Train the surrogate classifier and the mark generator on the training split."""
    from prosima.app.watermarking import train_marker

    output = Output(quiet=quiet)
    trained = train_marker(
        dataset,
        out,
        target=target,
        size=size,
        eps=eps,
        mask_fraction=mask_fraction,
        arch=arch,
        surrogate_epochs=surrogate_epochs,
        epochs=epochs,
        seed=seed,
        split_seed=split_seed,
        log=output.info,
    )
    output.result(trained.describe())


@app.command("embed")
def embed_command(
    dataset: DatasetArgument,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for release/ (the marked training split) and key/.")
    ],
    ledger: OptionalLedgerOption = None,
    marker: Annotated[
        Path | None,
        typer.Option(
            "--marker", help="Output of 'watermark train' (X-Mark); default: train one now into OUT/marker."
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="xmark, badnets or blended.")] = "xmark",
    target: Annotated[
        str | None, typer.Option(help="Target class (without --marker); default: the first.")
    ] = None,
    size: Annotated[int, typer.Option(help=SIZE_HELP + " Without --marker.")] = 128,
    fraction: Annotated[
        float, typer.Option(help="Fraction of the target-class training images to mark.")
    ] = 0.1,
    queries: Annotated[int, typer.Option(help="Held-out non-target images kept for verification.")] = 100,
    alpha_blend: Annotated[
        float, typer.Option("--blend-alpha", help="Blended: weight of the pattern.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of which images are marked and which are queries.")] = 0,
    split_seed: Annotated[int, typer.Option(help="Seed of the split by file (without --marker).")] = 0,
    calibrate: Annotated[
        bool, typer.Option(help="X-Mark: set tau from a clean reference model trained here (seed + 1000).")
    ] = True,
    json_path: JsonOption = None,
    quiet: QuietOption = False,
) -> None:
    """Mark a fraction of the target class (labels untouched), write the release and the key, and
    commit the key to the --ledger given. --json writes the key's summary."""
    from prosima.app.watermarking import embed_watermark

    output = Output(json_path, quiet)
    done = embed_watermark(
        dataset,
        out,
        ledger=ledger,
        marker=marker,
        method=method,
        target=target,
        size=size,
        fraction=fraction,
        queries=queries,
        blend_alpha=alpha_blend,
        seed=seed,
        split_seed=split_seed,
        calibrate=calibrate,
        log=output.info,
    )
    if done.calibrated_tau is not None:
        output.info(f"tau calibrated on a clean reference model: {done.calibrated_tau:.3f}")
    summary = done.summary
    output.result(
        f"marked {summary['marked']} of the {summary['target']} training images ({method}); "
        f"release {done.release}; key {done.key_path} digest {summary['digest']}"
    )
    if done.committed is not None:
        output.result(f"key committed: tx {done.committed['tx']} height {done.committed['height']}")
    else:
        output.warn("warning: no --ledger; the key is not committed")
    output.json(summary)


@app.command("verify")
def verify_command(
    model: Annotated[Path, typer.Option("--model", help="Suspicious classifier file ({arch, spec, state}).")],
    key: Annotated[Path, typer.Option("--key", help="The owner's key.json.")],
    ledger: OptionalLedgerOption = None,
    label_only: Annotated[
        bool, typer.Option(help="Use predicted labels only (Wilcoxon signed-rank).")
    ] = False,
    tau: Annotated[float | None, typer.Option(help="Margin of the test; default: the key's.")] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Significance level; default: the key's (0.01).")
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Query the model on clean and marked held-out images; exit 0 only when ownership is claimed
    (and, with --ledger, the key is committed there)."""
    from prosima.app.watermarking import verify_watermark

    output = Output(json_path)
    found = verify_watermark(model, key, ledger=ledger, label_only=label_only, tau=tau, alpha=alpha)
    v = found.verdict
    head = "OWNERSHIP CLAIMED" if found.claimed else "NO CLAIM"
    extra = "" if v["delta_p"] is None else f", delta-P {v['delta_p']:+.3f}"
    output.result(
        f"{head}: {v['test']} p = {v['p_value']:.3g} (alpha {v['alpha']}, tau {v['tau']}); "
        f"WSR {v['wsr']:.3f} vs clean {v['wsr_clean']:.3f} to '{found.target}'{extra}; n = {v['n']}"
    )
    if "ledger" in v:
        led = v["ledger"]
        if led["committed"]:
            output.result(f"  key {led['digest'][:16]} committed at height {led['height']} (tx {led['tx']})")
        else:
            output.result(f"  key NOT committed: {'; '.join(led['problems'])}")
    output.json(found.to_json())
    if not found.claimed:
        raise typer.Exit(1)

"""``prosima models``: anchor a set of weights as a model version, check a weights file against the
ledger, plot learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import JsonOption, LedgerOption
from prosima.cli.output import Output

app = command_group("Trained weights and their anchored versions.")


@app.command("anchor")
def models_anchor_command(
    weights: Annotated[str, typer.Argument(help="pretrained:NAME or a checkpoint / exported weights file.")],
    ledger: LedgerOption,
    json_path: JsonOption = None,
) -> None:
    """Anchor a set of weights as a model version (skipped when already anchored)."""
    from prosima.app.model_versions import anchor_model_version

    out = Output(json_path)
    done = anchor_model_version(ledger, weights)
    state = "already anchored" if done.existing else "anchored"
    out.result(f"{state}: {done.name} {done.digest} tx {done.tx} height {done.height}")
    out.json(done.to_json())


@app.command("verify")
def models_verify_command(
    weights: Annotated[Path, typer.Argument(help="A checkpoint or exported weights file.")],
    ledger: LedgerOption,
    json_path: JsonOption = None,
) -> None:
    """Is this weights file an anchored model version, and which round made it? Exit 0 only if so."""
    from prosima.app.model_versions import check_model_version

    out = Output(json_path)
    check = check_model_version(weights, ledger)
    if not check.records:
        out.result(f"NOT ANCHORED: weights {check.digest} are not a model version on this ledger")
    for f in check.records:
        v = f["version"]
        where = f"round {v['round']} of {v['rounds']}" if v.get("round") is not None else "no round"
        sites = ", ".join(s["name"] for s in v.get("sites", [])) or "-"
        state = "ANCHORED" if f["proof_ok"] else "PROOF FAILED: " + "; ".join(f["proof_problems"])
        out.result(
            f"{state}: {v['name']} {check.digest[:16]}, {where}, sites {sites}, tx {f['tx'][:16]} "
            f"at height {f['height']}"
        )
    out.json(check.to_json())
    if not check.anchored:
        raise typer.Exit(1)


@app.command("curve")
def models_curve_command(
    sources: Annotated[
        list[str],
        typer.Argument(help="pretrained:NAME (the curve its card carries across sessions) or a run folder."),
    ],
    png: Annotated[Path, typer.Option("--png", help="Where to save the plot.")],
    bench: Annotated[
        Path | None,
        typer.Option(
            "--bench", help="A 'bench restore' JSON: draw BM3D / NLM at each sigma as the bar to clear."
        ),
    ] = None,
) -> None:
    """Plot validation PSNR against cumulative training steps, one panel per validation sigma."""
    from prosima.bench.curves import save_curves

    curves = save_curves(sources, png, bench)
    for label, rows in curves.items():
        last = rows[-1]
        figures = ", ".join(
            f"{k.removeprefix('val_psnr@')}: {v:.2f}" for k, v in last.items() if k.startswith("val_psnr@")
        )
        typer.echo(f"{label}: {len(rows)} validations, last at step {last['step']} ({figures} dB)")
    typer.echo(f"wrote {png}")

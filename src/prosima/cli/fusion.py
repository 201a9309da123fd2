"""The fusion commands: ``prosima fuse MRI OTHER --out F`` with the shipped model, ``prosima fusion
train`` (the shipped weights' recipe) and ``prosima fusion chain`` (proof-of-useful-work rounds).

Exit status: 0 success, 1 a chain round with no winner, 2 an error (bad input, nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import JsonOption, QuietOption
from prosima.cli.output import Output

app = command_group("BMIF: multimodal fusion, under encryption, trained by useful work.")

AanlibOption = Annotated[
    Path | None, typer.Option(help="Harvard AANLIB root (default ../shared/data/fusion/harvard_aanlib).")
]


def fuse_command(
    mri: Annotated[Path, typer.Argument(help="The MRI (grayscale PNG).")],
    other: Annotated[
        Path, typer.Argument(help="The co-registered CT (grayscale) or PET / SPECT (colour) PNG.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The fused PNG to write (refused if it exists).")],
    model: Annotated[Path | None, typer.Option(help="Fusion weights (default: the shipped model).")] = None,
) -> None:
    """Fuse an MRI with a CT, PET or SPECT image; colour sources keep their chroma (YCbCr)."""
    from prosima.app.fusion import fuse_files

    fused = fuse_files(mri, other, out, model)
    typer.echo(f"{fused.out}: fused {'colour' if fused.colour else 'grayscale'} {fused.width}x{fused.height}")


@app.command("train")
def train_command(
    out: Annotated[Path, typer.Option(help="Where to write the weights.")] = Path("out/fusion/fusion.pt"),
    data: AanlibOption = None,
    steps: Annotated[int, typer.Option(help="Adam steps (the shipped weights: 1500).")] = 1500,
    seed: Annotated[int, typer.Option(help="Seed of the split and of training.")] = 0,
    select: Annotated[
        int,
        typer.Option(
            min=0,
            help="Add the learnt output to a polynomial maximum of this many sign compositions (0: mean).",
        ),
    ] = 0,
    quiet: QuietOption = False,
) -> None:
    """Train the fusion network on the training split of all three modality pairs."""
    from prosima.app.fusion import train_fusion_model

    output = Output(quiet=quiet)
    trained = train_fusion_model(out, data, steps=steps, seed=seed, select=select, log=output.info)
    output.result(f"{trained.out}: sha256 {trained.digest} ({trained.info['seconds']:.0f} s)")


@app.command("chain")
def chain_command(
    ledger: Annotated[
        Path, typer.Option("--ledger", "-d", help="Ledger directory (created if absent).")
    ] = Path("out/fusion/chain"),
    nodes: Annotated[int, typer.Option(help="Consensus nodes (each trains the model every round).")] = 8,
    rounds: Annotated[int, typer.Option(help="Rounds of proof of useful work.")] = 3,
    byzantine: Annotated[
        str, typer.Option(help="Cheating nodes, e.g. '2:copy,5:inflated_score,7:bad_reveal'.")
    ] = "",
    seed: Annotated[int, typer.Option(help="Seed of everything random.")] = 0,
    pair: Annotated[
        str, typer.Option(help="Modality pair whose training split the nodes learn: ct, pet, spect.")
    ] = "ct",
    data: AanlibOption = None,
    json_path: JsonOption = None,
) -> None:
    """Run proof-of-useful-work rounds: nodes train, commit, reveal; validators re-score; blocks."""
    from rich.console import Console
    from rich.table import Table

    from prosima.pipelines.fusion_chain import run_chain

    out = Output(json_path)
    summary = run_chain(ledger, nodes, rounds, byzantine or None, seed, data_root=data, pair=pair)
    if not out.json_on_stdout:
        table = Table(title=f"Proof of useful work: {nodes} nodes, {rounds} rounds")
        for col in (
            "round",
            "height",
            "winner",
            "score",
            "threshold",
            "refused",
            "train s",
            "validate s",
            "total s",
        ):
            table.add_column(col, justify="right")
        for r in summary["rounds"]:
            refused = ", ".join(f"{x['node']}:{x['code']}" for x in r["refusals"]) or "-"
            winner = "-" if r["winner"] is None else str(r["winner"])
            table.add_row(
                str(r["round"]),
                str(r["height"]),
                winner,
                f"{r['score']:.4f}" if r["score"] is not None else "-",
                f"{r['threshold']:.4f}",
                refused,
                *(f"{r['seconds'].get(k, 0.0):.1f}" for k in ("train", "validate", "total")),
            )
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(table)
        for r in summary["rounds"]:
            for x in r["refusals"]:
                console.print(f"round {r['round']}, node {x['node']} refused ({x['code']}): {x['reason']}")
    out.result(
        f"chain verification: {'ok' if summary['chain_ok'] else 'FAILED: ' + str(summary['chain_fault'])}"
    )
    if summary.get("audit"):
        out.result("audit: " + "; ".join(summary["audit"]))
    out.json(summary)
    if not summary["chain_ok"] or any(r["winner"] is None for r in summary["rounds"]):
        raise typer.Exit(code=1)

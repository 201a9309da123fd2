"""``prosima demo``: the main job on a fresh ledger, with its HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.options import ConsensusOption, QuietOption


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the ledger, images and report.")] = Path(
        "out/demo"
    ),
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="A BraTS tree or a folder of 2-D images; default: the embedded MNI152 brain."
        ),
    ] = None,
    slices: Annotated[int, typer.Option(help="Slices to anchor.")] = 8,
    tamper_slices: Annotated[int, typer.Option(help="Slices the tamper suite runs on.")] = 2,
    nodes: Annotated[int, typer.Option(help="Ledger nodes running consensus.")] = 20,
    consensus: ConsensusOption = "inproc",
    seed: Annotated[int, typer.Option(help="Seed of every random choice (recorded in the report).")] = 0,
    quiet: QuietOption = False,
) -> None:
    """The main job: anchor, corrupt, restore, verify, tamper; writes an HTML report."""
    from prosima.pipelines.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out=out,
        data=data,
        slices=slices,
        tamper_slices=tamper_slices,
        nodes=nodes,
        consensus=consensus,
        seed=seed,
    )
    report = run_demo(cfg, progress=not quiet)
    rest = report["restorations"]
    tam = report["tamper"]
    typer.echo(
        f"anchored {len(report['anchored'])} slices; originals verified {report['originals_verified']}/"
        f"{report['originals']}; restorations verified {sum(r['verified'] for r in rest)}/{len(rest)}; "
        f"tamper cases as expected {sum(c['passed'] for c in tam)}/{len(tam)}; "
        f"{report['seconds_total']:.0f} s"
    )
    typer.echo(f"report: {out / 'report.html'}")

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
    archive: Annotated[
        bool,
        typer.Option(
            "--archive",
            help="Then run it through prosima serve with a private Orthanc: store over DICOM, anchor, "
            "verify, restore and store back (needs Debian's orthanc and dcmtk).",
        ),
    ] = False,
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
        archive=archive,
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
    through = report.get("archive")
    if through:
        rs = through["restorations"]
        typer.echo(
            f"through the service and Orthanc: stored over DICOM {through['stored']}; verified by SOP UID "
            f"{sum(o['ok'] for o in through['originals'])}/{len(through['originals'])}; restored and stored "
            f"back {sum(r['verified'] for r in rs)}/{len(rs)} verified; tampered upload "
            f"{through['tamper']['status']}"
        )
        archive_dir = out / "through-archive" / "archive"
        typer.echo(f"browse: prosima serve --ledger {out / 'ledger'} --archive {archive_dir}, then /portal")
    typer.echo(f"report: {out / 'report.html'}")

"""The root of the command line: the global options, then every group and top-level command."""

from __future__ import annotations

from typing import Annotated

import typer

from prosima.cli import (
    anchor,
    bench,
    data,
    demo,
    fusion,
    ledger,
    models,
    records,
    restore,
    train,
    verify,
    watermark,
)
from prosima.cli.group import command_group

app = command_group("PROSIMA: provenance-secured semantic restoration of medical images.", name="prosima")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"prosima {version('prosima')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            "--max-pixels",
            min=1,
            help="Refuse image files whose header claims more values (pixels x channels) than this; "
            "default 536870912 (2 GiB as float32) or $PROSIMA_MAX_IMAGE_PIXELS. "
            "Give it before the command: prosima --max-pixels N verify ...",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    from prosima.imaging.limits import pixel_limit

    ctx.with_resource(pixel_limit(max_pixels))


app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(bench.app, name="bench")
app.add_typer(ledger.app, name="ledger")
app.add_typer(watermark.app, name="watermark")
app.add_typer(fusion.app, name="fusion")
app.add_typer(records.app, name="records")
app.command("anchor")(anchor.anchor_command)
app.command("restore")(restore.restore_command)
app.command("verify")(verify.verify_command)
app.command("demo")(demo.demo_command)
app.command("train")(train.train_command)
app.command("train-federated")(train.train_federated_command)
app.command("fuse")(fusion.fuse_command)

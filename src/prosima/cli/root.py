"""The root of the command line: the global options, then every group and top-level command."""

from __future__ import annotations

from typing import Annotated

import typer

from prosima.cli.anchor import anchor_command
from prosima.cli.bench import app as bench_app
from prosima.cli.data import app as data_app
from prosima.cli.demo import demo_command
from prosima.cli.fusion import app as fusion_app
from prosima.cli.fusion import fuse_command
from prosima.cli.group import command_group
from prosima.cli.ledger import app as ledger_app
from prosima.cli.models import app as models_app
from prosima.cli.pacs import app as pacs_app
from prosima.cli.records import app as records_app
from prosima.cli.restore import restore_command
from prosima.cli.serve import app as serve_app
from prosima.cli.train import train_command, train_federated_command
from prosima.cli.verify import verify_command
from prosima.cli.watermark import app as watermark_app

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


app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.add_typer(ledger_app, name="ledger")
app.add_typer(watermark_app, name="watermark")
app.add_typer(fusion_app, name="fusion")
app.add_typer(records_app, name="records")
app.add_typer(serve_app, name="serve")
app.add_typer(pacs_app, name="pacs")
app.command("anchor")(anchor_command)
app.command("restore")(restore_command)
app.command("verify")(verify_command)
app.command("demo")(demo_command)
app.command("train")(train_command)
app.command("train-federated")(train_federated_command)
app.command("fuse")(fuse_command)

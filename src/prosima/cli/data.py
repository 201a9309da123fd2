"""``prosima data``: describe medical image files and folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import JsonOption
from prosima.cli.output import Output

app = command_group("Inspect medical image files and folders.")


@app.command("info")
def data_info(
    path: Annotated[Path, typer.Argument(help="A file (PNG, JPEG, .npy, NIfTI, DICOM) or a folder.")],
    min_brain_fraction: Annotated[
        float, typer.Option(help="Foreground fraction for a slice to count as usable.")
    ] = 0.05,
    json_path: JsonOption = None,
) -> None:
    """Describe a file or folder: modality, shape, spacing, intensity range, usable slices (as JSON)."""
    from prosima.imaging.describe import describe_path

    out = Output(json_path)
    info = describe_path(path, min_brain_fraction)
    out.result(json.dumps(info, indent=2))
    out.json(info)

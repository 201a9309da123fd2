"""``prosima records find``: the ledger's records of one image instance, by its keyed link.

Exit status: 0 records found, 1 none, 2 an error (no site key, an unreadable file, not a ledger).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.group import command_group
from prosima.cli.options import JsonOption, LedgerOption
from prosima.cli.output import Output

app = command_group("Look up the records of an image instance by its keyed link.")


@app.callback()
def _records() -> None:
    """Look up the records of an image instance by its keyed link."""


@app.command("find")
def find_command(
    ledger: LedgerOption,
    sop_uid: Annotated[
        str | None, typer.Option("--sop-uid", help="A SOP Instance UID: that image's records.")
    ] = None,
    series_uid: Annotated[str | None, typer.Option("--series-uid", help="A Series Instance UID.")] = None,
    study_uid: Annotated[str | None, typer.Option("--study-uid", help="A Study Instance UID.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="An image file or DICOM series folder: the records of its instances."),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """List the records (tx, height, kind, slice) of one instance: its anchors and their restorations.

    The UIDs (or the file's UIDs, or its name for other formats) are hashed here with the site key
    beside the ledger (its site.key); nothing given is sent anywhere or written to the ledger."""
    from prosima.app.records import find_records

    out = Output(json_path)
    search = find_records(ledger, sop_uid=sop_uid, series_uid=series_uid, study_uid=study_uid, file=file)
    out.json(search.to_json())
    if not search.found:
        out.result(f"no record on this ledger is linked to {search.what}")
        if search.unlinked or search.other_key:
            out.result(
                f"  ({search.unlinked} anchors carry no instance link (format v1) and "
                f"{search.other_key} were linked with another site key: those cannot be matched here)"
            )
        raise typer.Exit(1)
    out.result(f"{len(search.records)} records linked to {search.what}:")
    for r in search.records:
        at = "" if r.slice is None else f" slice {r.slice}"
        of = f" of {r.original}" if r.original is not None else ""
        out.result(f"  {r.tx} height {r.height} {r.kind}{of}{at}")

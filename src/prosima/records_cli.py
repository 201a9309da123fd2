"""The ``records`` commands: ``find`` lists the ledger's records of one image instance.

A record holds no identifier in clear, only its instance's keyed link (``prosima.provenance.
site_key``), so the lookup hashes the given UID (or the given file's UIDs, or its name) with the
site key kept beside the ledger, on this machine, and compares.

Exit status: 0 records found, 1 none, 2 an error (no site key, an unreadable file, not a ledger).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

records_app = typer.Typer(
    help="Look up the records of an image instance by its keyed link.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


@records_app.callback()
def _records() -> None:
    """Look up the records of an image instance by its keyed link."""


def _wanted(key: Any, uids: dict[str, str | None], file: Path | None) -> tuple[dict[str, set[str]], str]:
    """The link digests to look for, and how the instance is named in messages here."""
    from prosima.provenance.site_key import FIELD_NAMES, instance_of, most_specific

    given = {n: v for n, v in uids.items() if v}
    if file is None:
        ((name, uid),) = given.items()
        return {name: {key.digest(name, uid)}}, f"{FIELD_NAMES[name]} {uid}"
    from prosima.imaging.io import read_input

    loaded, axis = read_input(file)
    slices = 1 if axis is None else loaded.array.shape[axis]
    wanted: dict[str, set[str]] = {}
    for i in range(slices):
        instance = instance_of(loaded, i)
        name = most_specific(instance)
        wanted.setdefault(name, set()).add(key.digest(name, instance[name]))
    return wanted, f"the file {file}"


def _row(item: Any, index: Any) -> dict[str, Any]:
    """One found record as a JSON row: tx, height, kind and slice (a restoration: its original's)."""
    record = item.record
    row = {"tx": item.tx, "height": item.height, "kind": item.kind}
    if item.kind == "anchor":
        return row | {"slice": record.source.get("slice")}
    original = index.by_tx[record.original].record
    return row | {
        "slice": record.params.get("slice", original.source.get("slice")),
        "original": record.original,
    }


@records_app.command("find")
def find_command(
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory (its site.key is read)."),
    sop_uid: str | None = typer.Option(None, "--sop-uid", help="A SOP Instance UID: that image's records."),
    series_uid: str | None = typer.Option(None, "--series-uid", help="A Series Instance UID."),
    study_uid: str | None = typer.Option(None, "--study-uid", help="A Study Instance UID."),
    file: Path | None = typer.Option(
        None, "--file", help="An image file or DICOM series folder: the records of its instances."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the records found as JSON."),
) -> None:
    """List the records (tx, height, kind, slice) of one instance: its anchors and their restorations.

    The UIDs (or the file's UIDs, or its name for other formats) are hashed here with the site key
    beside the ledger; nothing given is sent anywhere or written to the ledger."""
    from prosima.imaging.validation import ImageError
    from prosima.ledger.errors import LedgerError
    from prosima.ledger.log.directory import Ledger
    from prosima.provenance.index import RecordIndex
    from prosima.provenance.records import AnchorRecord
    from prosima.provenance.site_key import SITE_KEY_FILE, SiteKey, linked_records

    uids = {"sop": sop_uid, "series": series_uid, "study": study_uid}
    if sum(bool(v) for v in uids.values()) + (file is not None) != 1:
        raise _fail("give exactly one of --sop-uid, --series-uid, --study-uid or --file")
    try:
        with Ledger.open(ledger) as led:
            key = SiteKey.find(ledger)
            if key is None:
                raise ValueError(
                    f"no site key {ledger / SITE_KEY_FILE}: the links on this ledger are keyed by the site "
                    "that anchored them and cannot be resolved here (that site's key, mode 0600, goes there)"
                )
            wanted, what = _wanted(key, uids, file)
            index = RecordIndex(led).refresh()
            rows = [_row(item, index) for item in linked_records(index, key, wanted)]
            anchors = [i.record for i in index.anchors if isinstance(i.record, AnchorRecord)]
    except (ImageError, LedgerError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(rows, indent=2))
    if not rows:
        unlinked = sum(not a.link for a in anchors)
        other = sum(bool(a.link) and a.link.get("key") != key.id for a in anchors)
        typer.echo(f"no record on this ledger is linked to {what}")
        if unlinked or other:
            typer.echo(
                f"  ({unlinked} anchors carry no instance link (format v1) and {other} were linked with "
                "another site key: those cannot be matched here)"
            )
        raise typer.Exit(1)
    typer.echo(f"{len(rows)} records linked to {what}:")
    for r in rows:
        at = "" if r["slice"] is None else f" slice {r['slice']}"
        of = f" of {r['original']}" if "original" in r else ""
        typer.echo(f"  {r['tx']} height {r['height']} {r['kind']}{of}{at}")

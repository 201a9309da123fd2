"""``prosima verify``: is this exactly an anchored image or a trusted restoration?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prosima.cli.options import JsonOption, LedgerOption, TrustedRegistryOption
from prosima.cli.output import Output, write_json_file

if TYPE_CHECKING:
    from prosima.app.verifying import VerifyResult, VolumeVerifyResult


def _render_image(result: VerifyResult, out: Output) -> None:
    from prosima.provenance.verdict_text import verdict_lines

    for line in verdict_lines(result.verdict):
        out.result(line)
    if result.instance is not None:
        out.result("  " + result.instance.text())  # clear identifiers: this terminal only


def _render_volume(result: VolumeVerifyResult, out: Output) -> None:
    from prosima.provenance.verdict_text import slice_line

    verdicts = result.verdicts
    ok = [v.ok for v in verdicts]
    statuses: dict[str, int] = {}
    for v in verdicts:
        statuses[v.status] = statuses.get(v.status, 0) + 1
    out.result(
        ("VERIFIED " if all(ok) else "NOT VERIFIED ")
        + f"{sum(ok)} of {len(ok)} slices: "
        + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    )
    for z, v in enumerate(verdicts):
        if not v.ok:
            out.result(slice_line(z, v))
    judged = next((v.faithfulness for v in verdicts if v.faithfulness), None)
    if judged is not None:
        out.result(f"  faithfulness: {judged['rule']}")
    linked = [i.resolution for i in result.instances if i is not None]
    same = sum(r.same_instance for r in linked)
    unresolved = next((r for r in linked if not r.resolved), None)
    if linked:
        out.result(
            f"  instance: not resolved here: {unresolved.reason}"
            if unresolved is not None
            else f"  instances: {same} of {len(verdicts)} slices' records are of this volume's own slices"
        )
    other = next(
        (
            (z, i)
            for z, i in enumerate(result.instances)
            if i is not None and i.resolution.resolved and not i.resolution.same_instance
        ),
        None,
    )
    if other is not None:
        out.result(f"  slice {other[0]}: " + other[1].text())  # this terminal only


def verify_command(
    image: Annotated[
        Path,
        typer.Argument(
            help="The 2-D image to verify, or a volume (3-D NIfTI, DICOM series folder): every slice."
        ),
    ],
    ledger: LedgerOption,
    json_path: JsonOption = None,
    heatmap: Annotated[
        Path | None, typer.Option("--heatmap", help="Write the tamper heatmap as PNG.")
    ] = None,
    prov_path: Annotated[
        Path | None, typer.Option("--prov", help="Write the record as W3C PROV-JSON.")
    ] = None,
    intoto_path: Annotated[
        Path | None, typer.Option("--intoto", help="Write the record as an in-toto statement.")
    ] = None,
    registry: TrustedRegistryOption = None,
    since_head: Annotated[
        Path | None,
        typer.Option(
            "--since",
            help="A tree head kept earlier ('prosima ledger head'): refuse a ledger that shrank or "
            "forked since.",
        ),
    ] = None,
) -> None:
    """Is this exactly an anchored image or a trusted restoration? Which shards differ? Exit 0 if exact.

    --json writes the verdict with its proof."""
    from prosima.app.verifying import VerifyResult, verify_file, write_heatmap

    out = Output(json_path)
    result = verify_file(
        image,
        ledger,
        registry=registry,
        since=since_head,
        prov_export=prov_path is not None,
        intoto_export=intoto_path is not None,
        heatmap=heatmap is not None,
    )
    if isinstance(result, VerifyResult):
        if result.export_note is not None:
            out.warn(f"note: {result.export_note}")
        if prov_path is not None and result.prov_document is not None:
            write_json_file(result.prov_document, prov_path)
        if intoto_path is not None and result.intoto is not None:
            write_json_file(result.intoto, intoto_path)
        _render_image(result, out)
    else:
        _render_volume(result, out)
    out.json(result.to_json())
    if heatmap is not None and isinstance(result, VerifyResult):
        write_heatmap(result, heatmap)
    if not result.ok:
        raise typer.Exit(1)

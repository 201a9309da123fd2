"""``prosima verify``: is this exactly an anchored image or a trusted restoration?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prosima.cli.options import JsonOption, LedgerOption, QuietOption, TrustedRegistryOption
from prosima.cli.output import Output, write_json_file
from prosima.errors import InputError

if TYPE_CHECKING:
    from prosima.app.session import Session
    from prosima.app.verify_input import VerifyInput
    from prosima.app.verify_results import VerifyResult, VolumeVerifyResult
    from prosima.provenance.verify import Verdict


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


def _statuses(verdicts: list[Verdict]) -> str:
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _verdicts(result: VerifyResult | VolumeVerifyResult) -> list[Verdict]:
    from prosima.app.verify_results import VolumeVerifyResult

    return result.verdicts if isinstance(result, VolumeVerifyResult) else [result.verdict]


def batch_rows(results: list[VerifyResult | VolumeVerifyResult]) -> list[dict[str, Any]]:
    """One JSON row per image (per slice of a volume), named by its position in the run and its
    slice: file names can carry patient identifiers, so they stay on the terminal."""
    from prosima.app.verify_results import VolumeVerifyResult

    rows: list[dict[str, Any]] = []
    for i, result in enumerate(results):
        if isinstance(result, VolumeVerifyResult):
            rows += [{"input": i, "slice": z} | s for z, s in enumerate(result.to_json()["slices"])]
        else:
            rows.append({"input": i, "slice": None} | result.to_json())
    return rows


def _render_batch(paths: list[Path], results: list[VerifyResult | VolumeVerifyResult], out: Output) -> None:
    rows = []
    for i, (path, result) in enumerate(zip(paths, results, strict=True)):
        verdicts = _verdicts(result)
        rows.append(
            [
                str(i),
                str(path),  # this terminal only
                str(len(verdicts)),
                f"{sum(v.ok for v in verdicts)}/{len(verdicts)}",
                _statuses(verdicts),
                "VERIFIED" if result.ok else "NOT VERIFIED",
            ]
        )
    out.table("verify", ["#", "image", "slices", "verified", "verdicts", "result"], rows)
    images = sum(r.ok for r in results)
    slices = [v for r in results for v in _verdicts(r)]
    good = sum(v.ok for v in slices)
    out.result(
        ("VERIFIED " if images == len(results) else "NOT VERIFIED ")
        + f"{images} of {len(results)} images ({good} of {len(slices)} slices)"
    )


def _verify_all(
    session: Session, items: list[Path | VerifyInput], out: Output, since: Path | None
) -> list[VerifyResult | VolumeVerifyResult]:
    """Verify every input in turn (a path is read when its turn comes, so a batch of volumes is not
    held in memory at once) under one bar of images and one of slices per volume."""
    from prosima.app.verify_input import read_verify_input

    results: list[VerifyResult | VolumeVerifyResult] = []
    with out.progress() as bars:
        images = bars.add_task("verify", total=len(items)) if len(items) > 1 else None
        for item in items:
            found = read_verify_input(item) if isinstance(item, Path) else item
            slices = bars.add_task(f"  {found.path.name}", total=found.slices) if found.is_volume else None

            def advance(done: int, total: int, task: Any = slices) -> None:
                if task is not None:
                    bars.update(task, completed=done)

            results.append(session.verify_input(found, since=since, on_slice=advance))
            if slices is not None:
                bars.remove_task(slices)
            if images is not None:
                bars.advance(images)
    return results


def verify_command(
    images: Annotated[
        list[Path],
        typer.Argument(
            help="The 2-D images to verify, volumes (3-D NIfTI, DICOM series folder: every slice) or "
            "folders of them (a batch: its image files in name order and its DICOM series subfolders).",
            show_default=False,
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
    quiet: QuietOption = False,
) -> None:
    """Is this exactly an anchored image or a trusted restoration? Which shards differ? Exit 0 if exact.

    --json writes the verdict with its proof. Several images, or a folder of them, are verified as a
    batch against one open ledger: a table of the verdicts, --json one row per image (per slice of
    a volume), exit 0 only when every image verifies."""
    from prosima.app.batch_inputs import expand_inputs
    from prosima.app.session import Session
    from prosima.app.verify_input import read_verify_input
    from prosima.app.verifying import VerifyResult, write_heatmap

    out = Output(json_path, quiet)
    inputs = expand_inputs(images)
    if inputs.batch:
        if heatmap is not None or prov_path is not None or intoto_path is not None:
            raise InputError("--heatmap, --prov and --intoto apply to one 2-D image, not to a batch")
        if inputs.skipped:
            out.info(f"skipped {len(inputs.skipped)} entries of the folders that are not images")
        with Session.open(ledger, "direct", trusted=registry) as session:
            results = _verify_all(session, list(inputs.paths), out, since_head)
        _render_batch(inputs.paths, results, out)
        out.json(batch_rows(results))
        if not all(r.ok for r in results):
            raise typer.Exit(1)
        return
    found = read_verify_input(
        inputs.paths[0],
        heatmap=heatmap is not None,
        prov_export=prov_path is not None,
        intoto_export=intoto_path is not None,
    )
    with Session.open(ledger, "direct", trusted=registry) as session:
        if found.is_volume:
            (result,) = _verify_all(session, [found], out, since_head)
        else:
            result = session.verify_input(
                found,
                since=since_head,
                prov_export=prov_path is not None,
                intoto_export=intoto_path is not None,
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

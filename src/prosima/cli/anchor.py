"""``prosima anchor``: Protocol 2 on image files, each record printed as it commits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prosima.cli.options import ConsensusOption, JsonOption, LedgerOption, QuietOption
from prosima.cli.output import Output

if TYPE_CHECKING:
    from prosima.provenance.anchor import AnchorEvent, AnchorReport, Drop


def _name(source: dict[str, str]) -> str:
    """``file`` or ``file slice N``: how an image is named here."""
    return source.get("file", "") + (f" slice {source['slice']}" if "slice" in source else "")


def _drops(drops: tuple[Drop, ...]) -> str:
    return "; then ".join(d.reason for d in drops)


class _AnchorLog:
    """What ``anchor`` says as outcomes come in, one line each, with the JSON file rewritten whole
    after each so that an interrupted run leaves valid JSON; progress bars of the images
    fingerprinted and settled (on a terminal)."""

    def __init__(self, out: Output, bars: Any) -> None:
        self.out = out
        self.done: list[dict[str, Any]] = []
        self.counts: list[int] = []
        self.bars = bars
        self._settled: Any = None
        self._prepared: Any = None

    def read(self, counts: list[int]) -> None:
        self.counts = counts
        self._settled = self.bars.add_task("anchor", total=sum(counts))

    def prepared(self, done: int, total: int) -> None:
        if self._prepared is None:
            self._prepared = self.bars.add_task("  fingerprint", total=total)
        self.bars.update(self._prepared, completed=done)
        if done == total:
            self.bars.remove_task(self._prepared)

    def event(self, e: AnchorEvent) -> None:
        from prosima.provenance.anchor import Anchored

        name = _name(e.source)
        if isinstance(e, Anchored):
            if e.existing:
                self.out.info(f"already anchored {name} (tx {e.tx}, height {e.height})")
            else:
                via = "" if e.origin is None else f" via node {e.origin}"
                self.out.info(
                    f"anchored {name}: record {e.tx} root {e.record.root.hex()} height {e.height}{via}"
                )
                if e.drops:
                    self.out.info(f"  resubmitted: {_drops(e.drops)}")
        elif e.retry is not None:
            self.out.info(f"dropped {name}: {e.drops[-1].reason}; resubmitting through node {e.retry}")
            return
        else:
            self.out.info(f"not anchored {name}: {_drops(e.drops)}")
        if self._settled is not None:
            self.bars.advance(self._settled)
        self.done.append(e.to_json())
        self.out.json_progress(self.done)

    def table(self, paths: list[Path], report: AnchorReport) -> None:
        """One row per file of a batch: its images committed, found anchored, not committed."""
        rows, start = [], 0
        for i, (path, n) in enumerate(zip(paths, self.counts, strict=True)):
            mine = report.results[start : start + n]
            start += n
            committed = sum(r.status == "committed" for r in mine)
            existing = sum(r.status == "already-anchored" for r in mine)
            rows.append(
                [str(i), str(path), str(n), str(committed), str(existing), str(n - committed - existing)]
            )
        self.out.table(
            "anchor", ["#", "image", "slices", "committed", "already anchored", "not committed"], rows
        )

    def finish(self, report: AnchorReport) -> None:
        total = len(report.results)
        self.out.result(
            f"committed {report.committed}/{total} images, {report.existing} already anchored, "
            f"{len(report.dropped)} not committed"
            + (f" ({report.resubmitted} resubmitted through another node)" if report.resubmitted else "")
        )
        self.out.json([r.to_json() for r in report.results])  # in input order


def anchor_command(
    images: Annotated[
        list[Path],
        typer.Argument(
            help="Image files (PNG, .npy, NIfTI, DICOM), DICOM series folders, or folders of images (a "
            "batch: its image files in name order and its DICOM series subfolders).",
            show_default=False,
        ),
    ],
    ledger: LedgerOption,
    consensus: ConsensusOption = "inproc",
    batch: Annotated[int, typer.Option(help="Images per consensus round.")] = 16,
    json_path: JsonOption = None,
    origins: Annotated[
        str,
        typer.Option(
            "--origins",
            help="Which node signs each image: local (this ledger's node), spread (a node per image drawn "
            "from --seed, as from clients at every node) or a node index.",
        ),
    ] = "local",
    byzantine: Annotated[
        str,
        typer.Option(
            "--byzantine",
            help="Rehearse with faulty committee nodes (inproc), e.g. 'silent@1' or 'garbage@2' "
            "(the syntax of 'prosima ledger network --byzantine').",
        ),
    ] = "",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the --byzantine committee and of --origins spread.")
    ] = 0,
    resubmit: Annotated[
        bool,
        typer.Option(
            "--resubmit/--no-resubmit", help="Resubmit an image its origin dropped through the next node."
        ),
    ] = True,
    allow_partial: Annotated[
        bool, typer.Option("--allow-partial", help="Exit 0 even when some images could not be committed.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Protocol 2: shard, hash and fingerprint each image (each slice of a volume), commit the records.

    Each record is printed as it commits (and --json rewritten after every commit); images already
    anchored (the same pixels) are reported and not committed again, so an interrupted run can be
    re-run as it was. Several files, or a folder of images, are one run with a table per file at the
    end. Exit 3 when some images were dropped by every node they went through (nothing else is lost;
    re-run to retry)."""
    from prosima.app.anchoring import anchor_files
    from prosima.app.batch_inputs import expand_inputs
    from prosima.app.ledger_access import reports_results

    reports = reports_results(consensus)
    out = Output(json_path, quiet) if reports else Output(quiet=True)
    inputs = expand_inputs(images)
    if inputs.skipped:
        out.info(f"skipped {len(inputs.skipped)} entries of the folders that are not images")
    with out.progress() as bars:
        log = _AnchorLog(out, bars)
        report = anchor_files(
            inputs.paths,
            ledger,
            consensus=consensus,
            batch=batch,
            origins=origins,
            byzantine=byzantine,
            seed=seed,
            resubmit=resubmit,
            on_event=log.event,
            on_faults=lambda s: out.info(
                "faulty: " + ", ".join(f"node {f.node} {f.behaviour}" for f in s.faults)
            ),
            on_read=log.read,
            on_prepared=log.prepared,
        )
    if not reports:
        return
    if inputs.batch:
        log.table(inputs.paths, report)
    log.finish(report)
    if report.dropped and not allow_partial:
        typer.secho(
            f"error: {len(report.dropped)} of {len(report.results)} images were not committed (see "
            "'not anchored' above); re-run to retry them, or pass --allow-partial",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(3)

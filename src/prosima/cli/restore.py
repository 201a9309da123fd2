"""``prosima restore``: Protocol 3, restoration conditioned on the anchored fingerprints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prosima.cli.options import ConsensusOption, JsonOption, LedgerOption, QuietOption
from prosima.cli.output import Output
from prosima.errors import InputError, NegativeVerdict
from prosima.provenance.match_rule import DEFAULT_MARGIN_SCALE, DEFAULT_MIN_MARGIN, DEFAULT_MIN_SIMILARITY

if TYPE_CHECKING:
    from prosima.app.restoration import RestoreResult
    from prosima.app.session import Session
    from prosima.provenance.match_rule import MatchRule
    from prosima.provenance.restore_volume import RestoredVolume

RENAMED_SUFFIXES = {".jpg": ".png", ".jpeg": ".png"}  # restored as PNG: no lossy output


def _margin_text(margin: float | None) -> str:
    return "no other anchored image of this shape" if margin is None else f"{margin:.4f}"


def batch_output(path: Path, folder: Path) -> Path:
    """Where a batch writes the restoration of ``path``: its name in ``folder`` (a JPEG as PNG, a
    DICOM file without a suffix as ``.dcm``; a DICOM series folder as a folder)."""
    from prosima.imaging.loaded import suffix

    if path.is_dir():
        return folder / path.name
    ext = suffix(path)
    if ext in RENAMED_SUFFIXES:
        return folder / (path.name[: -len(ext)] + RENAMED_SUFFIXES[ext])
    return folder / (path.name if ext else f"{path.name}.dcm")


def _batch_plan(paths: list[Path], folder: Path, consensus: str, c2pa_certs: Path | None) -> list[Path]:
    """Each input's output, everything that can be refused refused before any work."""
    from prosima.app.restoration import check_restore_request

    if not folder.is_dir():
        raise InputError(f"--out {folder}: restoring several images writes into a folder; create it first")
    outs = [batch_output(path, folder) for path in paths]
    seen: dict[Path, Path] = {}
    for path, out in zip(paths, outs, strict=True):
        if out in seen:
            raise InputError(f"{seen[out]} and {path} would both be restored into {out}; rename one")
        seen[out] = path
        if out.exists():
            raise InputError(f"--out {out} exists; refusing to overwrite it")
        check_restore_request(path, out, consensus=consensus, c2pa_certs=c2pa_certs)
    return outs


def _rows(i: int, done: RestoreResult | RestoredVolume) -> list[dict[str, Any]]:
    """The JSON rows of one restored input, one per image (per slice), without file names."""
    from prosima.app.restoration import RestoreResult

    if isinstance(done, RestoreResult):
        r = done.restored.to_json()
        r.pop("out")
        return [{"input": i, "slice": None, "status": "restored"} | r]
    document = done.to_json()
    common = {"height": document["height"], "model_anchored": document["model_anchored"]}
    return [
        {"input": i, "slice": row.pop("slice"), "status": "restored"} | common | row
        for row in document["slices"]
    ]


def _restore_batch(
    session: Session,
    paths: list[Path],
    outs: list[Path],
    output: Output,
    *,
    model: str | None,
    rule: MatchRule,
    c2pa_certs: Path | None,
) -> bool:
    """Restore each input in turn; a refusal (no confident match, a constant image) is reported and
    the batch goes on, refused input stops it (exit 2). A table, then the JSON rows; whether every
    input was restored."""
    from prosima.app.restoration import RestoreResult

    rows: list[dict[str, Any]] = []
    table: list[list[str]] = []
    with output.progress() as bars:
        task = bars.add_task("restore", total=len(paths))
        for i, (path, out) in enumerate(zip(paths, outs, strict=True)):
            try:
                done = session.restore(path, out, model=model, rule=rule, c2pa_certs=c2pa_certs)
            except NegativeVerdict as exc:
                rows.append({"input": i, "slice": None, "status": "refused", "reason": str(exc)})
                table.append([str(i), str(path), "-", "refused", str(exc).split(". ")[0]])  # in full above
                output.info(f"refused {path}: {exc}")
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
            else:
                rows += _rows(i, done)
                if isinstance(done, RestoreResult):
                    slices, written, block = "1", done.restored.out, done.restored.height
                else:
                    slices, written, block = str(len(done.txs)), done.out, done.height
                table.append([str(i), str(path), slices, "restored", f"{written} (block {block})"])
            output.json_progress(rows)
            bars.advance(task)
    output.table("restore", ["#", "image", "slices", "result", "output or reason"], table)
    refused = sum(row[3] == "refused" for row in table)
    output.result(f"restored {len(paths) - refused} of {len(paths)} inputs, {refused} refused")
    output.json(rows)
    return refused == 0


def restore_command(
    corrupted: Annotated[
        list[Path],
        typer.Argument(
            help="The corrupted 2-D image, or a volume: a 3-D NIfTI file or a DICOM series folder; "
            "several, or folders of them, are a batch (--out is then a folder).",
            show_default=False,
        ),
    ],
    ledger: LedgerOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output file (.png, .npy, .nii[.gz]; .dcm for DICOM input); a folder for a DICOM series; "
            "for a batch an existing folder, where each restoration takes its input's name.",
        ),
    ],
    record: Annotated[
        str | None,
        typer.Option(
            "--record",
            help="Record id of the original (forces it: no similarity rule); default: the nearest anchor, "
            "if it passes --min-similarity, --min-margin and --margin-scale.",
        ),
    ] = None,
    min_similarity: Annotated[
        float,
        typer.Option(
            "--min-similarity",
            help="Refuse (exit 1, nothing written) unless the nearest anchor's similarity (mean shard "
            "cosine over its anatomy shards) reaches this. Calibrated by 'prosima bench restore-match': "
            "it refused every never-anchored X-ray and held-out brain slice measured (README).",
        ),
    ] = DEFAULT_MIN_SIMILARITY,
    min_margin: Annotated[
        float,
        typer.Option(
            "--min-margin",
            help="Refuse (exit 1) unless the nearest anchor leads the runner-up (the best other anchored "
            "image) by at least this similarity, and by --margin-scale x (1 - similarity): neighbouring "
            "slices of one volume differ by a few thousandths.",
        ),
    ] = DEFAULT_MIN_MARGIN,
    margin_scale: Annotated[
        float,
        typer.Option(
            "--margin-scale",
            help="The margin over the runner-up must also reach this times (1 - similarity), the distance "
            "noise puts between an image and its original. With these defaults 'prosima bench "
            "restore-match' measured no wrong original accepted (README).",
        ),
    ] = DEFAULT_MARGIN_SCALE,
    model: Annotated[
        str | None,
        typer.Option(
            help="Generator: pretrained:NAME or a checkpoint (default: prosima-full for 2-D images, "
            "the 2.5-D prosima-volume for volumes). Its version must be anchored ('prosima models anchor').",
        ),
    ] = None,
    consensus: ConsensusOption = "inproc",
    json_path: JsonOption = None,
    c2pa_certs: Annotated[
        Path | None,
        typer.Option(
            "--c2pa", help="Sign a C2PA manifest (the in-toto statement) into a PNG output; certs kept here."
        ),
    ] = None,
    intoto_path: Annotated[
        Path | None,
        typer.Option(
            "--intoto",
            help="Write the restoration as an in-toto statement about the output file (its SHA-256 and "
            "pixel digest) in a DSSE envelope signed by the ledger's local node.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Protocol 3: restore conditioned on the anchored fingerprints; commit the restoration.

    The original is the --record given, or the nearest anchor when it passes the matching rule; exit 1
    (nothing written) when none does, or the input is a constant image. The model version must be
    anchored first. A volume is restored slice by slice, each slice matched to its own anchored
    original under the same rule (any slice refused refuses the volume) and recorded by its own
    restoration record, all in one block. Several inputs, or a folder of them, are restored as a
    batch through one open ledger: a refused input is reported and the rest go on; a table, --json
    one row per image (per slice); exit 1 when any was refused."""
    from prosima.app.batch_inputs import expand_inputs
    from prosima.app.restoring import RestoreResult, restore_file
    from prosima.app.session import Session
    from prosima.cli.output import write_json_file
    from prosima.provenance.match_rule import MatchRule

    output = Output(json_path, quiet)
    inputs = expand_inputs(corrupted)
    if inputs.batch:
        if record is not None or intoto_path is not None:
            raise InputError("--record and --intoto apply to one 2-D image, not to a batch")
        outs = _batch_plan(inputs.paths, out, consensus, c2pa_certs)
        if inputs.skipped:
            output.info(f"skipped {len(inputs.skipped)} entries of the folders that are not images")
        rule = MatchRule(min_similarity, min_margin, margin_scale)
        with Session.open(ledger, consensus) as session:
            ok = _restore_batch(
                session, inputs.paths, outs, output, model=model, rule=rule, c2pa_certs=c2pa_certs
            )
        if not ok:
            raise typer.Exit(1)
        return
    (source,) = inputs.paths
    done = restore_file(
        source,
        ledger,
        out,
        rule=MatchRule(min_similarity, min_margin, margin_scale),
        model=model,
        record=record,
        consensus=consensus,
        c2pa_certs=c2pa_certs,
        intoto=intoto_path is not None,
    )
    if not isinstance(done, RestoreResult):  # a volume
        sims = [m["similarity"] for m in done.matches]
        margins = [m["margin"] for m in done.matches if m["margin"] is not None]
        output.result(
            f"restored {source} -> {done.out}: {len(done.txs)} slices, one record each, block "
            f"{done.height}; originals by nearest fingerprint (similarity {min(sims):.3f} .. {max(sims):.3f}"
            + (f", smallest margin {min(margins):.4f})" if margins else ")")
        )
        output.json(done.to_json())
        return
    restored = done.restored
    if done.c2pa_certs is not None:
        output.info(f"C2PA manifest signed into {restored.out} (certificates in {done.c2pa_certs})")
    m = restored.match
    how = (
        "given record"
        if m["method"] == "record"
        else f"nearest, similarity {m['similarity']:.3f}, margin {_margin_text(m['margin'])}"
    )
    output.result(f"original {m['tx']} ({how})")
    output.result(f"restored {source} -> {restored.out}: record {restored.tx} height {restored.height}")
    if intoto_path is not None and done.intoto is not None:
        write_json_file(done.intoto, intoto_path)
    output.json(done.to_json())

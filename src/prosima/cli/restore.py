"""``prosima restore``: Protocol 3, restoration conditioned on the anchored fingerprints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.cli.options import ConsensusOption, JsonOption, LedgerOption, QuietOption
from prosima.cli.output import Output
from prosima.provenance.match_rule import DEFAULT_MARGIN_SCALE, DEFAULT_MIN_MARGIN, DEFAULT_MIN_SIMILARITY


def _margin_text(margin: float | None) -> str:
    return "no other anchored image of this shape" if margin is None else f"{margin:.4f}"


def restore_command(
    corrupted: Annotated[
        Path,
        typer.Argument(
            help="The corrupted 2-D image, or a volume: a 3-D NIfTI file or a DICOM series folder."
        ),
    ],
    ledger: LedgerOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output file (.png, .npy, .nii[.gz]; .dcm for DICOM input); a folder for a DICOM series.",
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
    restoration record, all in one block."""
    from prosima.app.restoring import RestoreResult, restore_file
    from prosima.cli.output import write_json_file
    from prosima.provenance.match_rule import MatchRule

    output = Output(json_path, quiet)
    done = restore_file(
        corrupted,
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
            f"restored {corrupted} -> {done.out}: {len(done.txs)} slices, one record each, block "
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
    output.result(f"restored {corrupted} -> {restored.out}: record {restored.tx} height {restored.height}")
    if intoto_path is not None and done.intoto is not None:
        write_json_file(done.intoto, intoto_path)
    output.json(done.to_json())

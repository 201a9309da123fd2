"""The image-provenance commands: ``anchor``, ``restore``, ``verify``, ``models anchor``.

Exit status: 0 success (for ``verify``: these exact pixels are on the ledger), 1 a negative
verdict, 2 an error (bad input, not a ledger, a forged fingerprint); an error writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from prosima.cli import _fail, _write_json, app, bench_app, models_app
from prosima.provenance.match_rule import DEFAULT_MARGIN_SCALE, DEFAULT_MIN_MARGIN, DEFAULT_MIN_SIMILARITY

CONSENSUS_HELP = "How records are committed: inproc (the ledger's nodes run consensus here), mpi, direct."

TRUSTED_ENV = "PROSIMA_TRUSTED_REGISTRY"


def _open(  # noqa: ANN202
    ledger: Path, consensus: str, encoder: str = "pretrained:semantic-encoder", trusted: Path | None = None
):
    """Open the ledger (refused when a pinned registry is given, or configured in
    ``PROSIMA_TRUSTED_REGISTRY``, and the ledger's node keys are not those) and its provenance."""
    from prosima.ledger.errors import LedgerError
    from prosima.ledger.log.directory import Ledger
    from prosima.ledger.log.registry import Registry
    from prosima.provenance.context import Provenance

    pinned = trusted or (Path(os.environ[TRUSTED_ENV]) if os.environ.get(TRUSTED_ENV) else None)
    led = Ledger.open(ledger)
    try:
        if pinned is not None and Registry.load(pinned).digest != led.registry.digest:
            raise LedgerError(
                f"the ledger's node registry is not the pinned one ({pinned.name}): its node keys "
                "were replaced, so nothing it holds can be trusted"
            )
        return Provenance.open(led, encoder=encoder, consensus=consensus)
    except BaseException:
        led.close()
        raise


def _since(prov, kept: Path | None) -> list[str]:  # noqa: ANN001
    """Problems with the ledger against a tree head the user kept (rollback, fork)."""
    if kept is None:
        return []
    from prosima.ledger.log.witness import read_head, since

    return [f"ledger: {p}" for p in since(prov.ledger, read_head(kept))]


def _reports(consensus: str) -> bool:
    """Whether this process prints and writes results: always, except MPI ranks other than 0."""
    if consensus != "mpi":
        return True
    from prosima.ledger.consensus.mpi import world

    return world().Get_rank() == 0


def _errors() -> tuple[type[BaseException], ...]:
    from prosima.imaging.validation import ImageError
    from prosima.ledger.errors import LedgerError
    from prosima.models.checkpoint import CheckpointError

    return (ImageError, LedgerError, CheckpointError, ValueError, FileNotFoundError, KeyError)


@app.command("anchor")
def anchor_command(
    images: list[Path] = typer.Argument(
        ..., help="Image files (PNG, .npy, NIfTI, DICOM) or DICOM series folders."
    ),
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory (see 'prosima ledger init')."),
    consensus: str = typer.Option("inproc", help=CONSENSUS_HELP),
    batch: int = typer.Option(16, help="Images per consensus round."),
    json_path: Path | None = typer.Option(
        None, "--json", help="Write the records as JSON (rewritten after every commit)."
    ),
    origins: str = typer.Option(
        "local",
        "--origins",
        help="Which node signs each image: local (this ledger's node), spread (a node per image drawn "
        "from --seed, as from clients at every node) or a node index.",
    ),
    byzantine: str = typer.Option(
        "",
        "--byzantine",
        help="Rehearse with faulty committee nodes (inproc), e.g. 'silent@1' or 'garbage@2' "
        "(the syntax of 'prosima ledger network --byzantine').",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --byzantine committee and of --origins spread."),
    resubmit: bool = typer.Option(
        True, "--resubmit/--no-resubmit", help="Resubmit an image its origin dropped through the next node."
    ),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Exit 0 even when some images could not be committed."
    ),
) -> None:
    """Protocol 2: shard, hash and fingerprint each image (each slice of a volume), commit the records.

    Each record is printed as it commits; images already anchored (the same pixels) are reported and
    not committed again, so an interrupted run can be re-run as it was. Exit 3 when some images were
    dropped by every node they went through (nothing else is lost; re-run to retry)."""
    from prosima.imaging.io import read_input
    from prosima.provenance.anchor import anchor_run, rehearse_faults, slices_of, spread_origins

    reports = _reports(consensus)
    if byzantine and consensus != "inproc":
        raise _fail("--byzantine rehearses faulty nodes in this process: use it with --consensus inproc")
    if origins != "local" and consensus == "direct":
        raise _fail("--origins needs a consensus committee (--consensus inproc or mpi)")
    log = _AnchorLog(json_path if reports else None, reports)
    try:
        items = [item for path in images for item in slices_of(read_input(path)[0])]  # verify's rule
        prov = _open(ledger, consensus)
        try:
            if byzantine:
                schedule = rehearse_faults(prov, byzantine, seed=seed)
                log.say("faulty: " + ", ".join(f"node {f.node} {f.behaviour}" for f in schedule.faults))
            nodes = prov.committee.n if prov.committee is not None else 1
            where = _anchor_origins(origins, nodes, len(items), seed, spread_origins)
            report = anchor_run(
                prov, items, batch=batch, on_event=log.event, origins=where, resubmit=resubmit
            )
        finally:
            prov.ledger.close()
    except _errors() as exc:
        raise _fail(str(exc)) from None
    if not reports:
        return
    log.finish(report)
    if report.dropped and not allow_partial:
        typer.secho(
            f"error: {len(report.dropped)} of {len(report.results)} images were not committed (see "
            "'not anchored' above); re-run to retry them, or pass --allow-partial",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(3)


def _anchor_origins(spec: str, nodes: int, count: int, seed: int, spread) -> list[int] | None:  # noqa: ANN001
    """The origin node of each image for ``anchor --origins``; ``None``: the local node."""
    if spec == "local":
        return None
    if spec == "spread":
        return spread(nodes, count, seed=seed)
    if spec.isdigit():
        if int(spec) >= nodes:
            raise ValueError(f"--origins {spec}: the committee has nodes 0 to {nodes - 1}")
        return [int(spec)] * count
    raise ValueError(f"--origins must be local, spread or a node index, got {spec!r}")


class _AnchorLog:
    """What ``anchor`` prints as results come in (one flushed line each), and its JSON file,
    rewritten whole (atomically) after each result so that an interrupted run leaves valid JSON."""

    def __init__(self, json_path: Path | None, reports: bool) -> None:
        self.json_path = json_path
        self.reports = reports
        self.done: list[dict] = []

    def say(self, line: str) -> None:
        if self.reports:
            typer.echo(line)  # click flushes after every line

    def event(self, e) -> None:  # noqa: ANN001
        from prosima.provenance.anchor import Anchored, _where

        name = _where(e.source)
        if isinstance(e, Anchored):
            if e.existing:
                self.say(f"already anchored {name} (tx {e.tx}, height {e.height})")
            else:
                via = "" if e.origin is None else f" via node {e.origin}"
                self.say(f"anchored {name}: record {e.tx} root {e.record.root.hex()} height {e.height}{via}")
                if e.drops:
                    self.say(f"  resubmitted: {_drops_text(e.drops)}")
        elif e.retry is not None:
            self.say(f"dropped {name}: {e.drops[-1].reason}; resubmitting through node {e.retry}")
            return
        else:
            self.say(f"not anchored {name}: {_drops_text(e.drops)}")
        self.done.append(e.to_json())
        self._write(self.done)

    def finish(self, report) -> None:  # noqa: ANN001
        total = len(report.results)
        self.say(
            f"committed {report.committed}/{total} images, {report.existing} already anchored, "
            f"{len(report.dropped)} not committed"
            + (f" ({report.resubmitted} resubmitted through another node)" if report.resubmitted else "")
        )
        self._write([r.to_json() for r in report.results])  # in input order

    def _write(self, obj: object) -> None:
        if self.json_path is None:
            return
        import json
        import os

        path = self.json_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(json.dumps(obj, indent=2))
        os.replace(tmp, path)


def _drops_text(drops) -> str:  # noqa: ANN001
    return "; then ".join(d.reason for d in drops)


@app.command("restore")
def restore_command(
    corrupted: Path = typer.Argument(
        ..., help="The corrupted 2-D image, or a volume: a 3-D NIfTI file or a DICOM series folder."
    ),
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory holding the anchored original."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output file (.png, .npy, .nii[.gz]; .dcm for DICOM input); a folder for a DICOM series.",
    ),
    record: str | None = typer.Option(
        None,
        "--record",
        help="Record id of the original (forces it: no similarity rule); default: the nearest anchor, "
        "if it passes --min-similarity, --min-margin and --margin-scale.",
    ),
    min_similarity: float = typer.Option(
        DEFAULT_MIN_SIMILARITY,
        "--min-similarity",
        help="Refuse (exit 1, nothing written) unless the nearest anchor's similarity (mean shard "
        "cosine over its anatomy shards) reaches this. Calibrated by 'prosima bench restore-match': "
        "it refused every never-anchored X-ray and held-out brain slice measured (README).",
    ),
    min_margin: float = typer.Option(
        DEFAULT_MIN_MARGIN,
        "--min-margin",
        help="Refuse (exit 1) unless the nearest anchor leads the runner-up (the best other anchored "
        "image) by at least this similarity, and by --margin-scale x (1 - similarity): neighbouring "
        "slices of one volume differ by a few thousandths.",
    ),
    margin_scale: float = typer.Option(
        DEFAULT_MARGIN_SCALE,
        "--margin-scale",
        help="The margin over the runner-up must also reach this times (1 - similarity), the distance "
        "noise puts between an image and its original. With these defaults 'prosima bench "
        "restore-match' measured no wrong original accepted (README).",
    ),
    model: str | None = typer.Option(
        None,
        help="Generator: pretrained:NAME or a checkpoint (default: prosima-full for 2-D images, "
        "the 2.5-D prosima-volume for volumes). Its version must be anchored ('prosima models anchor').",
    ),
    consensus: str = typer.Option("inproc", help=CONSENSUS_HELP),
    json_path: Path | None = typer.Option(None, "--json", help="Write the restoration record as JSON."),
    c2pa_certs: Path | None = typer.Option(
        None,
        "--c2pa",
        help="Sign a C2PA manifest (the in-toto statement) into a PNG output; certs kept here.",
    ),
    intoto_path: Path | None = typer.Option(
        None,
        "--intoto",
        help="Write the restoration as an in-toto statement about the output file (its SHA-256 and "
        "pixel digest) in a DSSE envelope signed by the ledger's local node.",
    ),
) -> None:
    """Protocol 3: restore conditioned on the anchored fingerprints; commit the restoration.

    The original is the --record given, or the nearest anchor when it passes the matching rule; exit 1
    (nothing written) when none does, or the input is a constant image. The model version must be
    anchored first. A volume is restored slice by slice, each slice matched to its own anchored
    original under the same rule (any slice refused refuses the volume) and recorded by its own
    restoration record, all in one block."""
    from prosima.optional import MissingExtraError
    from prosima.provenance.matching import Refusal
    from prosima.provenance.restore import Generator, restore_file

    rule = _match_rule(min_similarity, min_margin, margin_scale)
    if not out.parent.is_dir():
        raise _fail(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if _is_volume(corrupted):
        if record is not None or c2pa_certs is not None or intoto_path is not None:
            raise _fail(
                "--record, --c2pa and --intoto apply to 2-D images; a volume's slices are matched one by one"
            )
        _restore_volume(
            corrupted, ledger, out, model or "pretrained:prosima-volume", consensus, json_path, rule
        )
        return
    model = model or "pretrained:prosima-full"
    if consensus == "mpi":
        raise _fail(
            "restore commits one record through --consensus inproc or direct; MPI is for 'prosima anchor'"
        )
    if c2pa_certs is not None and out.suffix.lower() != ".png":
        raise _fail("--c2pa manifests are signed into PNG outputs only")
    try:
        generator = Generator.load(model)
        prov = _open(ledger, consensus)
        try:
            done = restore_file(prov, corrupted, out, generator, record_tx=record, rule=rule)
            if c2pa_certs is not None:
                _sign_c2pa(prov, done, c2pa_certs, corrupted)
            if intoto_path is not None:
                _restoration_intoto(prov, done, intoto_path)
        finally:
            prov.ledger.close()
    except Refusal as exc:
        raise _refused(exc) from None
    except (*_errors(), MissingExtraError) as exc:
        raise _fail(str(exc)) from None
    m = done.match
    how = (
        "given record"
        if m["method"] == "record"
        else f"nearest, similarity {m['similarity']:.3f}, margin {_margin_text(m['margin'])}"
    )
    typer.echo(f"original {m['tx']} ({how})")
    typer.echo(f"restored {corrupted} -> {done.out}: record {done.tx} height {done.height}")
    _write_json(done.to_json(), json_path)


def _match_rule(min_similarity: float, min_margin: float, margin_scale: float):  # noqa: ANN202
    from prosima.provenance.match_rule import MatchRule

    try:
        return MatchRule(min_similarity, min_margin, margin_scale)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _margin_text(margin: float | None) -> str:
    return "no other anchored image of this shape" if margin is None else f"{margin:.4f}"


def _refused(exc: BaseException) -> typer.Exit:
    """Exit 1: the ledger does not support the restoration asked for; nothing was written."""
    typer.secho(f"refused: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def _is_volume(path: Path) -> bool:
    """A DICOM series folder or a NIfTI file holding more than one slice (the one rule, in imaging.io)."""
    from prosima.imaging.io import is_volume

    return is_volume(path)


def _restore_volume(
    corrupted: Path,
    ledger: Path,
    out: Path,
    model: str,
    consensus: str,
    json_path: Path | None,
    rule,  # noqa: ANN001
) -> None:
    from prosima.provenance.matching import Refusal
    from prosima.provenance.restore import Generator
    from prosima.provenance.restore_volume import restore_volume_file

    if consensus == "mpi":
        raise _fail("restore commits through --consensus inproc or direct; MPI is for 'prosima anchor'")
    try:
        generator = Generator.load(model)
        prov = _open(ledger, consensus)
        try:
            done = restore_volume_file(prov, corrupted, out, generator, rule=rule)
        finally:
            prov.ledger.close()
    except Refusal as exc:
        raise _refused(exc) from None
    except _errors() as exc:
        raise _fail(str(exc)) from None
    sims = [m["similarity"] for m in done.matches]
    margins = [m["margin"] for m in done.matches if m["margin"] is not None]
    typer.echo(
        f"restored {corrupted} -> {done.out}: {len(done.txs)} slices, one record each, block {done.height}; "
        f"originals by nearest fingerprint (similarity {min(sims):.3f} .. {max(sims):.3f}"
        + (f", smallest margin {min(margins):.4f})" if margins else ")")
    )
    _write_json(done.to_json(), json_path)


def _sign_c2pa(prov, done, cert_dir: Path, parent: Path) -> None:  # noqa: ANN001
    """Sign the restoration's C2PA manifest (an edit of ``parent``, carrying the in-toto statement)
    into its PNG; the pixels (and so the recorded digest) are unchanged, which is checked."""
    from prosima.imaging.io import read_image
    from prosima.provenance.file_exports import sign_restoration_c2pa
    from prosima.provenance.pixels import pixel_digest

    signed = done.out.with_name(f".prosima-c2pa-{done.out.name}")
    try:
        sign_restoration_c2pa(prov, done.tx, done.out, signed, parent, cert_dir)
        if pixel_digest(read_image(signed).array).hex() != done.record.output_pixels:
            raise ValueError("signing the C2PA manifest changed the pixels; output left unsigned")
        signed.replace(done.out)
    finally:
        signed.unlink(missing_ok=True)
    typer.echo(f"C2PA manifest signed into {done.out} (certificates in {cert_dir})")


def _restoration_intoto(prov, done, path: Path) -> None:  # noqa: ANN001
    """The restoration's in-toto statement about the output file as it is now, signed (DSSE)."""
    from prosima.provenance.file_exports import restoration_statement, signed

    _write_json(signed(prov, restoration_statement(prov, done.tx, done.out)), path)


@app.command("verify")
def verify_command(
    image: Path = typer.Argument(
        ..., help="The 2-D image to verify, or a volume (3-D NIfTI, DICOM series folder): every slice."
    ),
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the verdict, with its proof, as JSON."),
    heatmap: Path | None = typer.Option(None, "--heatmap", help="Write the tamper heatmap as PNG."),
    prov_path: Path | None = typer.Option(None, "--prov", help="Write the record as W3C PROV-JSON."),
    intoto_path: Path | None = typer.Option(
        None, "--intoto", help="Write the record as an in-toto statement."
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        envvar=TRUSTED_ENV,
        help="Trust only the node keys in this pinned copy of registry.cbor (kept apart from the ledger).",
    ),
    since_head: Path | None = typer.Option(
        None,
        "--since",
        help="A tree head kept earlier ('prosima ledger head'): refuse a ledger that shrank or forked since.",
    ),
) -> None:
    """Is this exactly an anchored image or a trusted restoration? Which shards differ? Exit 0 if exact."""
    from prosima.imaging.io import read_image_2d
    from prosima.provenance.intensity import model_range, to_model
    from prosima.provenance.verify import verify_loaded

    if _is_volume(image):
        if heatmap is not None or prov_path is not None or intoto_path is not None:
            raise _fail(
                "--heatmap, --prov and --intoto apply to 2-D images; verify a volume's slice for them"
            )
        _verify_volume(image, ledger, json_path, registry, since_head)
        return
    try:
        loaded = read_image_2d(image)
        prov = _open(ledger, "direct", trusted=registry)
        try:
            verdict = verify_loaded(prov, loaded)
            rolled_back = _since(prov, since_head)
            if rolled_back:
                verdict.ok = False
                verdict.reasons += rolled_back
            _exports(prov, verdict, prov_path, intoto_path, image)
            (instance,) = _instances(prov, [verdict], loaded)
        finally:
            prov.ledger.close()
    except _errors() as exc:
        raise _fail(str(exc)) from None
    _print_verdict(verdict)
    if instance is not None:
        typer.echo("  " + instance[0].text(instance[1]))  # clear identifiers: this terminal only
    _write_json(verdict.to_json() | {"instance": instance and instance[0].to_json()}, json_path)
    if heatmap is not None:
        from prosima.provenance.heatmap import save_heatmap

        unit = to_model(loaded.array, model_range(loaded))
        save_heatmap(heatmap, unit, prov.k, verdict.differing_shards, verdict.shard_cosines, verdict.status)
    if not verdict.ok:
        raise typer.Exit(1)


def _verify_volume(
    image: Path, ledger: Path, json_path: Path | None, registry: Path | None, since_head: Path | None
) -> None:
    """Verify every slice of a volume; exit 0 only if every slice verifies."""
    from prosima.imaging.io import read_volume
    from prosima.provenance.verify import verify_volume

    try:
        prov = _open(ledger, "direct", trusted=registry)
        try:
            verdicts = verify_volume(prov, image)
            instances = _instances(prov, verdicts, read_volume(image)[0], volume=True)
            rolled_back = _since(prov, since_head)
            for v in verdicts if rolled_back else []:
                v.ok = False
                v.reasons += rolled_back
        finally:
            prov.ledger.close()
    except _errors() as exc:
        raise _fail(str(exc)) from None
    ok = [v.ok for v in verdicts]
    statuses: dict[str, int] = {}
    for v in verdicts:
        statuses[v.status] = statuses.get(v.status, 0) + 1
    typer.echo(
        ("VERIFIED " if all(ok) else "NOT VERIFIED ")
        + f"{sum(ok)} of {len(ok)} slices: "
        + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    )
    from prosima.provenance.verdict_text import slice_line

    for z, v in enumerate(verdicts):
        if not v.ok:
            typer.echo(slice_line(z, v))
    judged = next((v.faithfulness for v in verdicts if v.faithfulness), None)
    if judged is not None:
        typer.echo(f"  faithfulness: {judged['rule']}")
    linked = [i[0] for i in instances if i is not None]
    same = sum(r.same_instance for r in linked)
    unresolved = next((r for r in linked if not r.resolved), None)
    if linked:
        typer.echo(
            f"  instance: not resolved here: {unresolved.reason}"
            if unresolved is not None
            else f"  instances: {same} of {len(verdicts)} slices' records are of this volume's own slices"
        )
    other = next(
        ((z, i) for z, i in enumerate(instances) if i and i[0].resolved and not i[0].same_instance), None
    )
    if other is not None:
        typer.echo(f"  slice {other[0]}: " + other[1][0].text(other[1][1]))  # this terminal only
    slices = [
        v.to_json() | {"instance": i and i[0].to_json()} for v, i in zip(verdicts, instances, strict=True)
    ]
    _write_json({"ok": all(ok), "slices": slices}, json_path)
    if not all(ok):
        raise typer.Exit(1)


def _instances(prov, verdicts: list, loaded, volume: bool = False) -> list:  # noqa: ANN001
    """For each verdict, how its record's keyed link compares with the verified file's instance
    (slice by slice) and that instance's clear identifiers; ``None`` where nothing matched."""
    from prosima.provenance.site_key import SiteKey, instance_of, resolve

    key = SiteKey.find(prov.ledger.path)
    out = []
    for z, v in enumerate(verdicts):
        tx = (v.record or v.nearest or {}).get("tx")
        instance = instance_of(loaded, z)
        found = resolve(prov.index, key, tx, instance, z if volume else None) if tx else None
        out.append(None if found is None else (found, instance))
    return out


def _exports(prov, verdict, prov_path: Path | None, intoto_path: Path | None, image: Path) -> None:  # noqa: ANN001
    """PROV-JSON and the signed in-toto statement of this verification of ``image``."""
    if prov_path is None and intoto_path is None:
        return
    from prosima.provenance.exports import ExportError
    from prosima.provenance.file_exports import signed, verify_exports

    try:
        document, statement = verify_exports(prov, verdict, image)
    except ExportError as exc:  # the verdict still stands; only the exports have nothing to say
        typer.echo(f"note: {exc}", err=True)
        return
    _write_json(document, prov_path)
    if intoto_path is not None:
        _write_json(signed(prov, statement), intoto_path)


def _print_verdict(v) -> None:  # noqa: ANN001
    from prosima.provenance.verdict_text import verdict_lines

    for line in verdict_lines(v):
        typer.echo(line)


@models_app.command("anchor")
def models_anchor_command(
    weights: str = typer.Argument(..., help="pretrained:NAME or a checkpoint / exported weights file."),
    ledger: Path = typer.Option(..., "--ledger", help="Ledger directory."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the record as JSON."),
) -> None:
    """Anchor a set of weights as a model version (skipped when already anchored)."""
    from prosima.ledger.log.directory import Ledger
    from prosima.provenance.model_versions import anchor_model

    try:
        with Ledger.open(ledger) as led:
            result = anchor_model(led, weights)
    except _errors() as exc:
        raise _fail(str(exc)) from None
    state = "already anchored" if result["existing"] else "anchored"
    typer.echo(f"{state}: {result['name']} {result['digest']} tx {result['tx']} height {result['height']}")
    _write_json(result, json_path)


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Folder for the ledger, images and report."),
    data: Path | None = typer.Option(
        None, "--data", help="A BraTS tree or a folder of 2-D images; default: the embedded MNI152 brain."
    ),
    slices: int = typer.Option(8, help="Slices to anchor."),
    tamper_slices: int = typer.Option(2, help="Slices the tamper suite runs on."),
    nodes: int = typer.Option(20, help="Ledger nodes running consensus."),
    consensus: str = typer.Option("inproc", help=CONSENSUS_HELP),
    seed: int = typer.Option(0, help="Seed of every random choice (recorded in the report)."),
) -> None:
    """The main job: anchor, corrupt, restore, verify, tamper; writes an HTML report."""
    from prosima.pipelines.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        out=out,
        data=data,
        slices=slices,
        tamper_slices=tamper_slices,
        nodes=nodes,
        consensus=consensus,
        seed=seed,
    )
    try:
        report = run_demo(cfg)
    except (*_errors(), FileExistsError) as exc:
        raise _fail(str(exc)) from None
    rest = report["restorations"]
    tam = report["tamper"]
    typer.echo(
        f"anchored {len(report['anchored'])} slices; originals verified {report['originals_verified']}/"
        f"{report['originals']}; restorations verified {sum(r['verified'] for r in rest)}/{len(rest)}; "
        f"tamper cases as expected {sum(c['passed'] for c in tam)}/{len(tam)}; "
        f"{report['seconds_total']:.0f} s"
    )
    typer.echo(f"report: {out / 'report.html'}")


@bench_app.command("pipeline")
def bench_pipeline_command(
    data: Path | None = typer.Option(
        None, "--data", help="BraTS folder (all four contrasts are used); default: embedded MNI152 brain."
    ),
    workloads: str = typer.Option("200,400,600,800,1000", help="Comma-separated workload sizes (images)."),
    nodes: int = typer.Option(20, help="Ledger nodes running consensus."),
    sigma: float = typer.Option(0.05, help="Gaussian noise sigma of the corrupted copies."),
    batch: int = typer.Option(16, help="Images anchored per consensus round."),
    tamper_slices: int = typer.Option(100, help="Slices the tamper suite runs on."),
    consensus: str = typer.Option("inproc", help=CONSENSUS_HELP),
    seed: int = typer.Option(0, help="Seed of slice order and noise."),
    json_path: Path | None = typer.Option(None, "--json", help="Write results as JSON (figure beside it)."),
) -> None:
    """End to end per image (anchor, restore, verify) at N nodes, and the tamper suite's rates."""
    from prosima.bench.pipeline import run_pipeline_bench

    try:
        sizes = [int(w) for w in workloads.split(",") if w.strip()]
        run_pipeline_bench(
            data,
            workloads=sizes,
            nodes=nodes,
            sigma=sigma,
            batch=batch,
            tamper_slices=tamper_slices,
            consensus=consensus,
            seed=seed,
            json_path=json_path,
        )
    except _errors() as exc:
        raise _fail(str(exc)) from None

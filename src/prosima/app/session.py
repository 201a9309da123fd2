"""One open ledger with its provenance (the encoder, the fingerprint store, the record index) kept
in memory for many actions: verify, anchor, restore and find records without loading the models
and reading the ledger again for each. The path-based functions of ``prosima.app`` open one for a
single call; a batch on the command line or the HTTP service keeps one open."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from prosima.app.ledger_access import open_provenance, rollback_problems
from prosima.app.origins import anchor_origins
from prosima.app.records import RecordSearch, search_records
from prosima.app.restoration import VOLUME_GENERATOR, RestoreResult, check_restore_request
from prosima.app.verify_input import VerifyInput, read_verify_input
from prosima.app.verify_results import (
    VerifyResult,
    VolumeVerifyResult,
    distrust,
    instance_links,
)
from prosima.errors import InputError
from prosima.imaging.io import read_image
from prosima.provenance.anchor import AnchorEvent, AnchorInput, AnchorReport, anchor_run, read_inputs
from prosima.provenance.context import DEFAULT_GENERATOR, Provenance
from prosima.provenance.exports import ExportError
from prosima.provenance.file_exports import (
    restoration_statement,
    sign_restoration_c2pa,
    signed,
    verify_exports,
)
from prosima.provenance.intensity import model_range, to_model
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.pixels import pixel_digest
from prosima.provenance.restore import Generator, Restored
from prosima.provenance.restore import restore_file as restore_into
from prosima.provenance.restore_volume import RestoredVolume, restore_volume_file
from prosima.provenance.verify import Verdict, verify_array, verify_loaded
from prosima.provenance.volume_verify import bind_constant_slices

SliceProgress = Callable[[int, int], None]  # (slices done, slices in all)
Verified = VerifyResult | VolumeVerifyResult


class Session:
    """One open ledger with its Provenance (models, fingerprint index) kept in memory, for many
    calls. Not thread-safe: callers hold ``session.lock`` (a ``threading.RLock``) around each call.

    ``refresh`` catches up with blocks other writers appended since: verify and find_records see
    the ledger as of the last refresh or commit made through this session; anchor and restore
    refresh first, since a block must be built on the newest tip."""

    def __init__(self, ledger: Path, consensus: str, provenance: Provenance, stack: ExitStack) -> None:
        self.ledger = ledger
        self.consensus = consensus
        self.provenance = provenance
        self.lock = threading.RLock()
        self._stack = stack
        self._generators: dict[str, Generator] = {}

    @classmethod
    def open(
        cls,
        ledger: Path,
        consensus: str = "inproc",
        *,
        encoder: str | None = None,
        trusted: Path | None = None,
    ) -> Session:
        """Open the ledger at ``ledger`` committing the ``consensus`` way (inproc, mpi, direct),
        with the semantic ``encoder``; refused when a pinned registry (``trusted`` or
        ``$PROSIMA_TRUSTED_REGISTRY``) is not the ledger's."""
        stack = ExitStack()
        try:
            prov = stack.enter_context(open_provenance(ledger, consensus, encoder=encoder, trusted=trusted))
        except BaseException:
            stack.close()
            raise
        return cls(Path(ledger), consensus, prov, stack)

    def close(self) -> None:
        """Close the ledger (a checkpoint is written when blocks were appended)."""
        with self.lock:
            self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self) -> None:
        """Verify and take in the blocks other writers appended since this session last looked."""
        with self.lock:
            with self.provenance.ledger.store.writing():  # catches up; writes nothing
                pass
            self.provenance.index.refresh()

    # -- verify ------------------------------------------------------------------------------

    def verify(
        self,
        image: Path,
        *,
        since: Path | None = None,
        heatmap: bool = False,
        prov_export: bool = False,
        intoto_export: bool = False,
        on_slice: SliceProgress | None = None,
    ) -> Verified:
        """Verify ``image`` (a 2-D image, or every slice of a volume), by the rules of
        ``prosima.app.verifying.verify_file``; ``on_slice`` hears of each slice verified."""
        found = read_verify_input(
            image, heatmap=heatmap, prov_export=prov_export, intoto_export=intoto_export
        )
        return self.verify_input(
            found, since=since, prov_export=prov_export, intoto_export=intoto_export, on_slice=on_slice
        )

    def verify_input(
        self,
        found: VerifyInput,
        *,
        since: Path | None = None,
        prov_export: bool = False,
        intoto_export: bool = False,
        on_slice: SliceProgress | None = None,
    ) -> Verified:
        """Verify a file already read (``read_verify_input``)."""
        with self.lock:
            prov = self.provenance
            if found.axis is not None:
                verdicts = self._verify_slices(found, on_slice)
                instances = instance_links(prov, verdicts, found.loaded, volume=True)
                distrust(verdicts, rollback_problems(prov, since))
                return VolumeVerifyResult(verdicts, instances)
            loaded = found.loaded
            verdict = verify_loaded(prov, loaded)
            distrust([verdict], rollback_problems(prov, since))
            result = VerifyResult(verdict, None, to_model(loaded.array, model_range(loaded)), prov.k)
            if prov_export or intoto_export:
                try:
                    document, statement = verify_exports(prov, verdict, found.path)
                except ExportError as exc:  # the verdict still stands; only the exports have nothing to say
                    result.export_note = str(exc)
                else:
                    result.prov_document = document if prov_export else None
                    result.intoto = signed(prov, statement) if intoto_export else None
            (result.instance,) = instance_links(prov, [verdict], loaded)
            if on_slice is not None:
                on_slice(1, 1)
            return result

    def _verify_slices(self, found: VerifyInput, on_slice: SliceProgress | None) -> list[Verdict]:
        """Every slice of a volume, scaled with the volume's one range (as anchoring scales it); a
        constant slice by its place (``volume_verify``)."""
        value_range = model_range(found.loaded)
        planes = np.moveaxis(found.loaded.array, found.axis or 0, 0)
        verdicts = []
        for z, plane in enumerate(planes):
            verdicts.append(verify_array(self.provenance, plane, value_range))
            if on_slice is not None:
                on_slice(z + 1, len(planes))
        bind_constant_slices(self.provenance, verdicts, found.loaded, found.axis or 0)
        return verdicts

    def verify_many(
        self,
        images: Sequence[Path],
        on_progress: Callable[[int, Path, Verified], None] | None = None,
        *,
        since: Path | None = None,
        on_slice: SliceProgress | None = None,
    ) -> list[Verified]:
        """Verify each of ``images`` in turn, each read when its turn comes; ``on_progress`` gets
        ``(index, path, result)`` after each, ``on_slice`` each slice of each."""
        results: list[Verified] = []
        for i, image in enumerate(images):
            result = self.verify_input(read_verify_input(image), since=since, on_slice=on_slice)
            results.append(result)
            if on_progress is not None:
                on_progress(i, image, result)
        return results

    # -- anchor ------------------------------------------------------------------------------

    def anchor(
        self,
        images: Sequence[Path],
        *,
        batch: int = 16,
        on_event: Callable[[AnchorEvent], None] | None = None,
        origins: str = "local",
        seed: int = 0,
        resubmit: bool = True,
        on_prepared: SliceProgress | None = None,
    ) -> AnchorReport:
        """Anchor every image (every slice of a volume) in ``images``: see ``anchor_inputs``."""
        return self.anchor_inputs(
            read_inputs(images),
            batch=batch,
            on_event=on_event,
            origins=origins,
            seed=seed,
            resubmit=resubmit,
            on_prepared=on_prepared,
        )

    def anchor_inputs(
        self,
        items: Sequence[AnchorInput],
        *,
        batch: int = 16,
        on_event: Callable[[AnchorEvent], None] | None = None,
        origins: str = "local",
        seed: int = 0,
        resubmit: bool = True,
        on_prepared: SliceProgress | None = None,
    ) -> AnchorReport:
        """Anchor ``items``, ``batch`` per consensus round, each signed by its node of ``origins``
        (local, spread from ``seed``, or a node index). Images already anchored are reported, not
        committed again; ``on_prepared`` hears ``(done, total)`` as each new image is fingerprinted,
        ``on_event`` each outcome as soon as it is known."""
        if origins != "local" and self.consensus == "direct":
            raise InputError("--origins needs a consensus committee (--consensus inproc or mpi)")
        with self.lock:
            self.refresh()
            prov = self.provenance
            nodes = prov.committee.n if prov.committee is not None else 1
            where = anchor_origins(origins, nodes, len(items), seed)
            return anchor_run(
                prov,
                items,
                batch=batch,
                on_event=on_event,
                origins=where,
                resubmit=resubmit,
                on_prepared=on_prepared,
            )

    # -- restore -----------------------------------------------------------------------------

    def generator(self, ref: str) -> Generator:
        """The generator ``ref`` (``pretrained:NAME`` or a checkpoint), loaded once per session."""
        if ref not in self._generators:
            self._generators[ref] = Generator.load(ref)
        return self._generators[ref]

    def restore(
        self,
        corrupted: Path,
        out: Path,
        *,
        model: str | None = None,
        record: str | None = None,
        rule: MatchRule | None = None,
        c2pa_certs: Path | None = None,
        intoto: bool = False,
    ) -> RestoreResult | RestoredVolume:
        """Restore ``corrupted`` into ``out`` and commit the restoration record(s), by the rules of
        ``prosima.app.restoring.restore_file``."""
        rule = rule or MatchRule()
        volume = check_restore_request(
            corrupted, out, consensus=self.consensus, record=record, c2pa_certs=c2pa_certs, intoto=intoto
        )
        with self.lock:
            self.refresh()
            prov = self.provenance
            if volume:
                generator = self.generator(model or VOLUME_GENERATOR)
                return restore_volume_file(prov, corrupted, out, generator, rule=rule)
            generator = self.generator(model or DEFAULT_GENERATOR)
            done = restore_into(prov, corrupted, out, generator, record_tx=record, rule=rule)
            if c2pa_certs is not None:
                self._sign_c2pa(done, c2pa_certs, corrupted)
            statement = signed(prov, restoration_statement(prov, done.tx, done.out)) if intoto else None
            return RestoreResult(done, c2pa_certs, statement)

    def _sign_c2pa(self, done: Restored, cert_dir: Path, parent: Path) -> None:
        """Sign the restoration's C2PA manifest (an edit of ``parent``, carrying the in-toto
        statement) into its PNG; the pixels (and so the recorded digest) are unchanged, which is
        checked."""
        staged = done.out.with_name(f".prosima-c2pa-{done.out.name}")
        try:
            sign_restoration_c2pa(self.provenance, done.tx, done.out, staged, parent, cert_dir)
            if pixel_digest(read_image(staged).array).hex() != done.record.output_pixels:
                raise ExportError("signing the C2PA manifest changed the pixels; output left unsigned")
            staged.replace(done.out)
        finally:
            staged.unlink(missing_ok=True)

    # -- records -----------------------------------------------------------------------------

    def find_records(
        self,
        *,
        sop_uid: str | None = None,
        series_uid: str | None = None,
        study_uid: str | None = None,
        file: Path | None = None,
    ) -> RecordSearch:
        """The records of one instance, by the rules of ``prosima.app.records.find_records``."""
        with self.lock:
            return search_records(
                self.ledger,
                self.provenance.index,
                sop_uid=sop_uid,
                series_uid=series_uid,
                study_uid=study_uid,
                file=file,
            )

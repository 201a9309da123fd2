"""The provenance pipeline end to end on real brain slices: anchor, corrupt, restore, verify; the
tamper suite and tampers checked by hand; forged fingerprints refused; restorations by unanchored
models refused; bad input refused with nothing committed; the demo."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from prosima.imaging.io import ImageReadError, read_image, write_npy, write_png
from prosima.imaging.metrics import psnr
from prosima.imaging.tamper import TAMPERS, tamper
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.proof import check_document
from prosima.pipelines.demo import DemoConfig, run_demo
from prosima.pipelines.tamper_suite import PIXEL_TAMPERS, SUITE, run_suite
from prosima.provenance.anchor import AnchorError, AnchorInput, anchor_images, read_inputs
from prosima.provenance.context import Provenance
from prosima.provenance.fingerprint_store import FingerprintStoreError
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.restore import ModelNotAnchored, RestoreError, restore_file
from prosima.provenance.semantic import FAITHFUL_COSINE
from prosima.provenance.verify import verify_array, verify_loaded

GENERATOR = "pretrained:prosima-full"


def _fingerprint_file(w, i):
    name = w.anchored[i].record.fingerprint
    path = w.ledger_dir / "fingerprints" / name[:2] / f"{name}.cbor"
    assert path.is_file()
    return path


def _no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".prosima-tmp-")]


# -- 1. anchor -> corrupt -> restore -> verify, through consensus ---------------------------------


def test_end_to_end_through_inproc_consensus(fresh_world, generator, helpers, tmp_path):
    w = fresh_world(3, consensus="inproc", nodes=4)
    assert w.ledger.store.height == 0  # one consensus round for the batch
    assert len({a.tx for a in w.anchored}) == 3 and {a.height for a in w.anchored} == {0}

    # the anchored original verifies with a checked inclusion proof and a quorum
    original = verify_loaded(w.prov, read_image(w.files[0]))
    assert original.ok and original.status == "anchored-original" and not original.reasons
    assert original.record["tx"] == w.anchored[0].tx and original.record["kind"] == "anchor"
    assert original.proof["ok"] and check_document(original.proof["document"], registry=w.ledger.registry).ok
    assert original.block["quorum_ok"] and original.block["nodes"] == 4
    assert original.block["signatures"] >= original.block["threshold"] == 3

    # a noisy copy is not on the ledger, but is recognised as the second slice
    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[1], sigma=0.05, seed=7)
    seen = verify_loaded(w.prov, read_image(noisy))
    assert not seen.ok and seen.status in ("changed", "tampered")
    assert seen.nearest["tx"] == w.anchored[1].tx

    # the model is not anchored yet: refused before any work, nothing written or committed
    with pytest.raises(ModelNotAnchored, match=f"prosima models anchor {GENERATOR} --ledger"):
        restore_file(w.prov, noisy, tmp_path / "restored.png", generator)
    assert w.ledger.store.height == 0 and not (tmp_path / "restored.png").exists()

    # once it is anchored, restore by nearest-neighbour match finds the right original
    anchor_model(w.ledger, GENERATOR)
    done = restore_file(w.prov, noisy, tmp_path / "restored.png", generator)
    assert done.match["method"] == "nearest" and done.match["tx"] == w.anchored[1].tx
    assert done.record.original == w.anchored[1].tx and done.model_anchored
    assert w.ledger.store.height == 2 and done.height == 2
    assert not _no_leftovers(tmp_path)
    clean = read_image(w.files[1]).array / 255.0
    restored = read_image(done.out).array / 255.0
    assert psnr(clean, restored, 1.0) > psnr(clean, read_image(noisy).array / 255.0, 1.0) + 3.0

    # and its output verifies
    after = verify_loaded(w.prov, read_image(done.out))
    assert after.ok and after.status == "recorded-restoration" and not after.reasons, after.reasons
    assert after.record["tx"] == done.tx and after.record["original"] == w.anchored[1].tx
    assert after.model["anchored"] and after.model["digest"] == generator.digest
    assert after.proof["ok"] and after.block["quorum_ok"]
    assert not after.unfaithful_shards and min(after.shard_cosines) >= FAITHFUL_COSINE

    # restore by record id: the named original is used, and the output verifies too
    by_record = restore_file(w.prov, noisy, tmp_path / "by-record.png", generator, record_tx=w.anchored[1].tx)
    assert by_record.match["method"] == "record" and by_record.match["tx"] == w.anchored[1].tx
    assert by_record.model_anchored
    again = verify_loaded(w.prov, read_image(by_record.out))
    assert again.ok and again.status == "recorded-restoration"
    assert w.ledger.verify().ok


def test_restore_into_npy_records_what_is_read_back(world, generator, helpers, tmp_path):
    anchor_model(world.ledger, GENERATOR)
    noisy = helpers.write_noisy(tmp_path / "noisy.png", world.files[2], seed=3)
    done = restore_file(world.prov, noisy, tmp_path / "out.npy", generator)
    assert done.match["tx"] == world.anchored[2].tx
    verdict = verify_loaded(world.prov, read_image(done.out))
    assert verdict.status == "recorded-restoration" and verdict.record["tx"] == done.tx


# -- 2. tampers: caught and localised; lossless re-encodes verify; lossy JPEG is faithful ---------


@pytest.mark.parametrize("seed", [0, 1])
def test_tamper_suite_catches_and_localises_every_kind(world, tmp_path, seed):
    cases = run_suite(world.prov, world.files[0], tmp_path, seed=seed)
    assert [c.kind for c in cases] == list(SUITE)
    assert set(PIXEL_TAMPERS) == {"one_pixel", "copy_move", "lesion_blob", "erase", "rescale_intensity"}
    failed = [c.to_json() for c in cases if not c.passed]
    assert not failed, json.dumps(failed, indent=1, default=str)
    target = world.anchored[0].tx
    for c in cases:
        v = c.verdict
        if c.kind in PIXEL_TAMPERS:
            assert not v.ok and v.status in ("tampered", "changed")
            assert c.true_shards and sorted(v.differing_shards) == c.true_shards
            assert v.nearest["tx"] == target
        elif c.kind.startswith("lossless"):
            assert v.ok and v.status == "anchored-original" and v.record["tx"] == target
        else:  # lossy JPEG: changed, yet semantically faithful to the right original
            assert c.kind == "lossy_jpeg"
            assert not v.ok and v.status in ("tampered", "changed")
            assert v.nearest["tx"] == target and v.nearest["semantically_faithful"]
            assert not v.unfaithful_shards and min(v.shard_cosines) >= FAITHFUL_COSINE


@pytest.mark.parametrize("kind", sorted(TAMPERS))
def test_tamper_by_hand_is_localised_to_the_shards_that_changed(world, helpers, tmp_path, kind):
    clean = read_image(world.files[1]).array
    t = tamper(clean, kind, seed=5)
    assert t.array.min() >= 0 and t.array.max() <= 255
    changed = t.array != clean
    expected = helpers.touched_shards(changed)
    assert expected
    path = tmp_path / f"{kind}.png"
    Image.fromarray(t.array.astype(np.uint8)).save(path, format="PNG")
    v = verify_loaded(world.prov, read_image(path))
    assert not v.ok
    assert v.status in ("tampered", "changed") and v.nearest["tx"] == world.anchored[1].tx
    assert sorted(v.differing_shards) == expected
    assert any(world.anchored[1].tx in r for r in v.reasons)


def test_a_square_across_four_shards_is_localised_to_those_four(world, helpers):
    img = read_image(world.files[2]).array.copy()
    img[60:70, 120:136] = 255 - img[60:70, 120:136]  # straddles rows 64 and columns 128
    v = verify_array(world.prov, img, (0.0, 255.0))
    expected = helpers.touched_shards(img != read_image(world.files[2]).array)
    assert len(expected) == 4 and sorted(v.differing_shards) == expected
    assert v.status == "tampered" and v.nearest["method"] == "shared-shards"


def test_lossless_copies_verify_and_a_lossy_jpeg_does_not(world, tmp_path):
    clean = read_image(world.files[0]).array
    write_npy(tmp_path / "copy.npy", clean.astype(np.float64))
    with Image.open(world.files[0]) as im:
        im.save(tmp_path / "copy.png", format="PNG", compress_level=1)
    Image.fromarray(clean.astype(np.uint8)).save(tmp_path / "copy.jpg", format="JPEG", quality=75)
    for name in ("copy.npy", "copy.png"):
        v = verify_loaded(world.prov, read_image(tmp_path / name))
        assert v.ok and v.status == "anchored-original" and v.record["tx"] == world.anchored[0].tx, name
    jpeg = verify_loaded(world.prov, read_image(tmp_path / "copy.jpg"))
    assert (
        not jpeg.ok and jpeg.nearest["tx"] == world.anchored[0].tx and jpeg.nearest["semantically_faithful"]
    )


# -- 3. a forged fingerprint is refused before use ------------------------------------------------


@pytest.mark.parametrize("forgery", ["other-valid-fingerprint", "flipped-byte", "missing"])
@pytest.mark.parametrize("by_record", [False, True])
def test_forged_fingerprint_is_refused_and_nothing_is_committed(
    fresh_world, generator, helpers, tmp_path, forgery, by_record
):
    w = fresh_world(2)
    victim, other = _fingerprint_file(w, 0), _fingerprint_file(w, 1)
    if forgery == "other-valid-fingerprint":
        victim.write_bytes(other.read_bytes())
    elif forgery == "flipped-byte":
        data = bytearray(victim.read_bytes())
        data[len(data) // 2] ^= 0x01
        victim.write_bytes(bytes(data))
    else:
        victim.unlink()
    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[0])
    out = tmp_path / "restored.png"
    anchor_model(w.ledger, GENERATOR)
    h = w.ledger.store.height
    prov = Provenance.open(w.ledger, consensus="direct")  # nothing cached from anchoring
    record = w.anchored[0].tx if by_record else None
    message = "not in the store" if forgery == "missing" else "forged or damaged, refused"
    with pytest.raises(FingerprintStoreError, match=message) as err:
        restore_file(prov, noisy, out, generator, record_tx=record)
    assert w.anchored[0].record.fingerprint in str(err.value)
    assert w.ledger.store.height == h and not out.exists() and not _no_leftovers(tmp_path)


def test_forged_fingerprint_of_an_original_fails_its_restorations_verification(
    fresh_world, generator, helpers, tmp_path
):
    w = fresh_world(2)
    anchor_model(w.ledger, GENERATOR)
    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[1])
    done = restore_file(w.prov, noisy, tmp_path / "restored.png", generator)
    assert verify_loaded(w.prov, read_image(done.out)).ok
    victim = _fingerprint_file(w, 1)
    victim.write_bytes(_fingerprint_file(w, 0).read_bytes())
    v = verify_loaded(Provenance.open(w.ledger, consensus="direct"), read_image(done.out))
    assert not v.ok and any("forged or damaged" in r for r in v.reasons)


# -- 4. a restoration by an unanchored model does not verify ---------------------------------------


def test_restoration_by_an_unanchored_model_fails_verification(fresh_world, generator, helpers, tmp_path):
    w = fresh_world(1)
    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[0], seed=11)
    # restore itself refuses an unanchored model; a record by one (an older ledger's) is forced here
    done = restore_file(w.prov, noisy, tmp_path / "restored.png", generator, require_anchored_model=False)
    assert not done.model_anchored
    v = verify_loaded(w.prov, read_image(done.out))
    assert not v.ok and v.status == "recorded-restoration"
    assert v.model == {"digest": generator.digest, "name": generator.name, "anchored": False, "versions": []}
    assert v.reasons == [
        f"model version {generator.digest} ({generator.name}) is not anchored on this ledger"
    ]
    assert not v.unfaithful_shards  # the only fault is the model


# -- 5. bad input: a clear error and nothing written -----------------------------------------------


def test_bad_anchor_inputs_are_refused_before_anything_is_committed(world, tmp_path):
    h = world.ledger.store.height
    (tmp_path / "notes.txt").write_text("not an image")
    data = world.files[0].read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    nan = read_image(world.files[0]).array.copy()
    nan[10, 10] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    for name, message in [
        ("notes.txt", "unsupported file type '.txt'"),
        ("cut.png", "not a readable PNG"),
        ("nan.npy", "1 NaN"),
    ]:
        with pytest.raises(ImageReadError, match=message):
            read_inputs([world.files[1], tmp_path / name])  # a good file first: still nothing read
    bad = AnchorInput(np.zeros((4, 4, 4), np.float32), (0.0, 1.0), {})
    with pytest.raises(AnchorError, match="2-D"):
        anchor_images(world.prov, [*read_inputs([world.files[1]]), bad])
    with pytest.raises(AnchorError, match="batch"):
        anchor_images(world.prov, read_inputs([world.files[1]]), batch=0)
    assert world.ledger.store.height == h


def test_bad_restore_inputs_are_refused_with_nothing_written(world, generator, brain_slices, tmp_path):
    h = world.ledger.store.height
    small = tmp_path / "small.png"
    write_png(small, brain_slices[0][::2, ::2], data_range=(0.0, 1.0))
    with pytest.raises(RestoreError, match=r"shape \(256, 256\).*\(128, 128\)"):
        restore_file(world.prov, small, tmp_path / "a.png", generator, record_tx=world.anchored[0].tx)
    with pytest.raises(RestoreError, match="no anchored image of shape"):
        restore_file(world.prov, small, tmp_path / "b.png", generator)
    with pytest.raises(RestoreError, match="no anchored image with record id"):
        restore_file(world.prov, world.files[0], tmp_path / "c.png", generator, record_tx="ab" * 32)
    exists = tmp_path / "exists.png"
    exists.write_bytes(b"keep me")
    with pytest.raises(RestoreError, match="exists; refusing to overwrite"):
        restore_file(world.prov, world.files[0], exists, generator)
    assert exists.read_bytes() == b"keep me"
    with pytest.raises(RestoreError, match="must end in one of"):
        restore_file(world.prov, world.files[0], tmp_path / "d.tiff", generator)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        restore_file(world.prov, tmp_path / "notes.txt", tmp_path / "e.png", generator)
    assert world.ledger.store.height == h
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.png", "notes.txt", "small.png"]


def test_a_failed_commit_leaves_neither_a_file_nor_a_record(world, generator, helpers, tmp_path):
    def refuse(entries):
        raise LedgerError("the committee decided nothing")

    anchor_model(world.ledger, GENERATOR)
    prov = dataclasses.replace(world.prov, commit=refuse)
    noisy = helpers.write_noisy(tmp_path / "noisy.png", world.files[0])
    h = world.ledger.store.height
    with pytest.raises(LedgerError, match="decided nothing"):
        restore_file(prov, noisy, tmp_path / "restored.png", generator)
    assert world.ledger.store.height == h
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy.png"]


def test_a_ledger_directory_that_is_not_one_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LedgerError, match="not a ledger directory"):
        from prosima.ledger.log.directory import Ledger

        Ledger.open(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# -- 8. the demo ----------------------------------------------------------------------------------


def test_demo_on_two_slices_writes_a_report_in_which_every_case_passed(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(DemoConfig(out=out, slices=2, tamper_slices=1, nodes=4), progress=False)
    for name in ("report.html", "report.json", "figures/restoration.png", "figures/tamper.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert json.loads((out / "report.json").read_text())["tamper"] == json.loads(
        json.dumps(report["tamper"], default=str)
    )
    assert len(report["anchored"]) == 2 and report["originals_verified"] == report["originals"] == 2
    rest = report["restorations"]
    assert len(rest) == 2 * 3 and all(r["verified"] and r["matched_original"] for r in rest)
    assert [c["kind"] for c in report["tamper"]] == list(SUITE)
    assert all(c["passed"] for c in report["tamper"]), report["tamper"]
    led = report["ledger"]
    assert led["chain_ok"] and led["nodes"] == 4 and led["fingerprints"] == 2
    assert led["height"] == 1 + 1 + 6 - 1  # model version, one anchor round, six restorations
    html = (out / "report.html").read_text()
    assert f"<b>{len(SUITE)}/{len(SUITE)}</b>tamper cases as expected" in html
    assert "<td>None</td>" not in html


def test_demo_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a previous demo's output"):
        run_demo(DemoConfig(out=tmp_path, slices=2, tamper_slices=1, nodes=4), progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]

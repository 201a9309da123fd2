"""What ``verify`` prints never contradicts itself and names what it matched: an exact restoration
that fails a check says "EXACT pixels ..., but NOT VERIFIED"; a one-pixel tamper is localised, never
called faithful; the matched record, the faithfulness threshold and the skipped background shards
are named; a constant image is reported as such, with how many records share its pixels."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.io import read_image, write_png
from prosima.imaging.shards import plan_shards
from prosima.ledger.log.directory import Entry
from prosima.ledger.log.transaction import TxKind
from prosima.provenance.anchor import AnchorInput, make_record
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.naming import record_name
from prosima.provenance.restore import restore_file
from prosima.provenance.semantic import FAITHFUL_COSINE
from prosima.provenance.verdict_text import verdict_lines
from prosima.provenance.verify import verify_array, verify_loaded

GENERATOR = "pretrained:prosima-full"


def _text(verdict) -> str:
    return "\n".join(verdict_lines(verdict))


def test_an_exact_restoration_that_fails_a_check_is_one_coherent_sentence(
    fresh_world, generator, helpers, tmp_path
):
    w = fresh_world(1)
    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[0], seed=11)
    done = restore_file(w.prov, noisy, tmp_path / "r.png", generator, require_anchored_model=False)
    text = _text(verify_loaded(w.prov, read_image(done.out)))
    head = text.splitlines()[0]
    assert head.startswith("EXACT pixels of a recorded restoration, but NOT VERIFIED: model version")
    assert "is not anchored" in head and "NOT VERIFIED EXACT" not in text
    anchor_model(w.ledger, GENERATOR)
    verdict = verify_loaded(w.prov, read_image(done.out))
    text = _text(verdict)
    assert verdict.ok and text.startswith("VERIFIED EXACT: the recorded output of a restoration")
    original = record_name(w.anchored[0].record)
    assert f"original {w.anchored[0].tx} ({original})" in text
    assert f"against threshold {FAITHFUL_COSINE}: faithful" in text
    f = verdict.faithfulness
    assert f["judged"] and set(f["judged"]).isdisjoint(f["background"])
    assert sorted(f["judged"] + f["background"]) == list(range(16))
    assert f"skipped as background: {f['background']}" in text and "blank shard" in text


def test_a_one_pixel_tamper_is_localised_and_never_called_faithful(world, tmp_path):
    img = read_image(world.files[0]).array.copy()
    img[130, 70] = 255 - img[130, 70]
    shard = plan_shards(img.shape, 16).locate((130, 70)).index
    verdict = verify_array(world.prov, img, (0.0, 255.0), fixed_range=True)
    lines = verdict_lines(verdict)
    text = "\n".join(lines)
    assert lines[0].startswith("NOT VERIFIED CHANGED: shares shards with a record")
    assert f"tx {world.anchored[0].tx}" in lines[0] and "the other 15 are its exact pixels" in lines[0]
    assert f"the change is localised to shards [{shard}]" in text
    assert "faithful" not in text and f"threshold {FAITHFUL_COSINE}" in text


def test_the_matched_record_is_named_in_the_text(world):
    verdict = verify_loaded(world.prov, read_image(world.files[1]))
    head = verdict_lines(verdict)[0]
    assert head == f"VERIFIED EXACT: an anchored original ({record_name(world.anchored[1].record)}, tx " + (
        f"{world.anchored[1].tx})"
    )
    assert "png" in head


def test_a_noisy_copy_that_matches_no_anchor_confidently_is_unknown(world, tmp_path):
    rng = np.random.default_rng(0)
    stranger = np.clip(rng.random((256, 256)), 0, 1)  # texture, no anatomy
    verdict = verify_array(world.prov, np.rint(stranger * 255), (0.0, 255.0), fixed_range=True)
    text = _text(verdict)
    assert verdict.status == "not-on-ledger" and not verdict.ok and verdict.shard_cosines is None
    assert text.startswith("NOT VERIFIED UNKNOWN") and "not a confident match" in text


def _commit_twice(prov, array: np.ndarray) -> list[str]:
    """Two records of the same pixels (as older ledgers hold for the empty slices of many volumes)."""
    txs = []
    for z in ("0", "1"):
        record, fp = make_record(prov, AnchorInput(array, (0.0, 255.0), {"format": "png", "slice": z}))
        prov.store.put(fp)
        block = prov.commit([Entry(record.payload(), TxKind.IMAGE_ANCHORED, bytes.fromhex(record.pixels))])
        txs.append(block.txs[0].tx_id.hex())
    return txs


def test_a_constant_image_is_reported_as_such_with_the_records_sharing_it(fresh_world, tmp_path):
    w = fresh_world(1)
    black = np.zeros((256, 256), np.float32)
    txs = _commit_twice(w.prov, black)
    verdict = verify_array(w.prov, black, (0.0, 255.0), fixed_range=True)
    assert verdict.status == "constant" and not verdict.ok and verdict.record is None
    assert [r["tx"] for r in verdict.same_pixels] == txs
    text = _text(verdict)
    assert "constant image" in text.lower() and "2 records share these pixels" in text
    grey = np.full((256, 256), 128.0, np.float32)
    assert "0 records share these pixels" in _text(verify_array(w.prov, grey, (0.0, 255.0), fixed_range=True))
    # the same through the command line: exit 1, no confident match to either record
    write_png(tmp_path / "black.png", black, data_range=(0.0, 255.0))
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "black.png"), "--ledger", str(w.ledger_dir)])
    assert res.exit_code == 1 and "NOT VERIFIED CONSTANT IMAGE" in res.stdout
    assert "2 records share these pixels" in res.stdout and "EXACT" not in res.stdout


def test_verify_prints_the_verdict_lines(world, tmp_path):
    img = read_image(world.files[2]).array.copy()
    img[40, 200] = 255 - img[40, 200]
    Image.fromarray(img.astype(np.uint8)).save(tmp_path / "t.png")
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "t.png"), "--ledger", str(world.ledger_dir)])
    assert res.exit_code == 1
    verdict = verify_loaded(world.prov, read_image(tmp_path / "t.png"))
    for line in verdict_lines(verdict):
        assert line in res.stdout

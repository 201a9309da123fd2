"""``restore`` refuses what the ledger cannot support, before any work and writing nothing: a
nearest anchor below the similarity or margin rule (the candidates named), an unanchored model
version (with the command that anchors it), a constant image, an output folder that does not
exist; ``--record`` still forces a known original; a volume with one refused slice is refused whole."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import write_nifti, write_png
from prosima.provenance.anchor import anchor_images, read_inputs
from prosima.provenance.match_rule import MatchRule
from prosima.provenance.matching import ConstantImage, NoConfidentMatch
from prosima.provenance.model_versions import anchor_model
from prosima.provenance.restore import ModelNotAnchored, RestoreError, restore_file
from prosima.provenance.restore_volume import restore_volume_file

GENERATOR = "pretrained:prosima-full"


@pytest.fixture(scope="module")
def never_anchored() -> np.ndarray:
    """A brain section far from the three the worlds anchor (0.35, 0.5, 0.65 of the embedded brain)."""
    source = embedded_default_slices()
    return np.asarray(source[round((len(source) - 1) * 0.2)].image, dtype=np.float64)


def _noisy_png(path, image: np.ndarray, sigma: float = 0.05, seed: int = 3):
    write_png(path, np.clip(gaussian_noise(image, sigma, seed=seed).image, 0.0, 1.0), data_range=(0.0, 1.0))
    return path


def _no_work(monkeypatch) -> None:
    """Fail the test if fingerprints are computed for matching or a shard is restored."""

    def boom(*args, **kwargs):
        raise AssertionError("work was done before the refusal")

    # matching fingerprints its query through the provenance (Provenance.fingerprint)
    monkeypatch.setattr("prosima.provenance.context.compute_fingerprints", boom)
    monkeypatch.setattr("prosima.provenance.restore.restore", boom)


def test_a_never_anchored_image_is_refused_naming_the_nearest_candidates(
    fresh_world, generator, never_anchored, tmp_path
):
    w = fresh_world(3)
    anchor_model(w.ledger, GENERATOR)
    noisy = _noisy_png(tmp_path / "noisy.png", never_anchored)
    h = w.ledger.store.height
    with pytest.raises(NoConfidentMatch) as err:
        restore_file(w.prov, noisy, tmp_path / "restored.png", generator)
    message = str(err.value)
    match = err.value.match
    assert not match.accepted and match.best.similarity < MatchRule().min_similarity
    assert f"tx {match.best.tx}" in message and f"similarity {match.best.similarity:.3f}" in message
    assert {c.tx for c in match.ranked} <= {a.tx for a in w.anchored}
    assert "--record ID" in message and "--min-similarity" in message
    assert w.ledger.store.height == h and sorted(p.name for p in tmp_path.iterdir()) == [
        "noisy.png",
        "world0",
    ]
    # the named original is forced with --record (it exists), and restored
    done = restore_file(w.prov, noisy, tmp_path / "forced.png", generator, record_tx=w.anchored[0].tx)
    assert done.match["method"] == "record" and done.record.original == w.anchored[0].tx
    assert w.ledger.store.height == h + 1
    with pytest.raises(RestoreError, match="no anchored image with record id"):
        restore_file(w.prov, noisy, tmp_path / "x.png", generator, record_tx="cd" * 32)


def test_the_nearest_must_lead_the_runner_up_by_the_margin(tmp_path, helpers, brain_slices, generator):
    twin = brain_slices[1].copy()
    twin[100:110, 100:110] = 1.0 - twin[100:110, 100:110]  # other pixels, nearly the same fingerprint
    w = helpers.make_world(tmp_path / "w", [brain_slices[0], brain_slices[1], twin])
    try:
        anchor_model(w.ledger, GENERATOR)
        noisy = _noisy_png(tmp_path / "noisy.png", brain_slices[1])
        h = w.ledger.store.height
        with pytest.raises(NoConfidentMatch, match="leads the runner-up by") as err:
            restore_file(w.prov, noisy, tmp_path / "restored.png", generator)
        match = err.value.match
        assert {match.best.tx, match.runner_up.tx} == {w.anchored[1].tx, w.anchored[2].tx}
        rule = MatchRule()
        assert match.margin < rule.required_margin(match.best.similarity)
        assert match.best.similarity > rule.min_similarity
        assert w.ledger.store.height == h and not (tmp_path / "restored.png").exists()
        # a rule without a margin (--min-margin 0 --margin-scale 0) accepts the nearest
        loose = MatchRule(min_margin=0.0, margin_scale=0.0)
        done = restore_file(w.prov, noisy, tmp_path / "r.png", generator, rule=loose)
        assert done.match["tx"] == match.best.tx and done.match["margin"] == pytest.approx(match.margin)
    finally:
        w.ledger.close()


def test_an_unanchored_model_is_refused_before_any_work(
    fresh_world, generator, helpers, tmp_path, monkeypatch
):
    w = fresh_world(2)
    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[0])
    _no_work(monkeypatch)
    with pytest.raises(ModelNotAnchored) as err:
        restore_file(w.prov, noisy, tmp_path / "restored.png", generator)
    assert f"prosima models anchor {GENERATOR} --ledger {w.ledger.path}" in str(err.value)
    assert w.ledger.store.height == 0 and not (tmp_path / "restored.png").exists()


def test_a_constant_image_is_refused_with_or_without_a_record(fresh_world, generator, tmp_path, monkeypatch):
    w = fresh_world(2)
    anchor_model(w.ledger, GENERATOR)
    h = w.ledger.store.height
    for value in (0.0, 0.5):
        flat = tmp_path / f"flat{value}.png"
        write_png(flat, np.full((256, 256), value), data_range=(0.0, 1.0))
        _no_work(monkeypatch)
        for record in (None, w.anchored[0].tx):
            with pytest.raises(ConstantImage, match=r"constant image.*nothing to restore"):
                restore_file(w.prov, flat, tmp_path / "out.png", generator, record_tx=record)
    assert w.ledger.store.height == h and not (tmp_path / "out.png").exists()


def test_an_output_folder_that_does_not_exist_is_refused_before_any_work(
    world, generator, helpers, tmp_path, monkeypatch
):
    noisy = helpers.write_noisy(tmp_path / "noisy.png", world.files[0])
    h = world.ledger.store.height
    _no_work(monkeypatch)
    with pytest.raises(RestoreError, match="does not exist; create it first"):
        restore_file(world.prov, noisy, tmp_path / "missing" / "restored.png", generator)
    assert world.ledger.store.height == h and not (tmp_path / "missing").exists()


def test_the_command_line_exit_codes_and_messages(fresh_world, never_anchored, helpers, tmp_path):
    w = fresh_world(3)
    ledger = w.ledger_dir
    runner = CliRunner()

    def restore(*args):
        return runner.invoke(app, ["restore", *[str(a) for a in args], "--ledger", str(ledger)])

    noisy = helpers.write_noisy(tmp_path / "noisy.png", w.files[1])
    stranger = _noisy_png(tmp_path / "stranger.png", never_anchored)
    flat = tmp_path / "flat.png"
    write_png(flat, np.zeros((256, 256)), data_range=(0.0, 1.0))
    h = helpers.height(ledger)
    res = restore(noisy, "--out", tmp_path / "r.png")
    assert res.exit_code == 2 and f"prosima models anchor {GENERATOR} --ledger {ledger}" in res.stderr
    anchor_model(w.ledger, GENERATOR)
    h = helpers.height(ledger)
    res = restore(noisy, "--out", tmp_path / "no" / "r.png")
    assert res.exit_code == 2 and "does not exist" in res.stderr and "Traceback" not in res.output
    res = restore(stranger, "--out", tmp_path / "r.png")
    assert res.exit_code == 1 and res.stderr.startswith("refused: no confident match")
    assert "similarity" in res.stderr and "tx " in res.stderr
    res = restore(flat, "--out", tmp_path / "r.png")
    assert res.exit_code == 1 and "constant image" in res.stderr
    res = restore(noisy, "--out", tmp_path / "r.png", "--min-margin", "3")
    assert res.exit_code == 2 and "--min-margin must lie in [0, 2]" in res.stderr
    assert helpers.height(ledger) == h and not (tmp_path / "r.png").exists()
    res = restore(noisy, "--out", tmp_path / "r.png")
    assert res.exit_code == 0 and f"original {w.anchored[1].tx} (nearest, similarity" in res.stdout
    assert "margin" in res.stdout and helpers.height(ledger) == h + 1


def _volume(planes: list[np.ndarray]) -> np.ndarray:
    return np.stack([p * 1000.0 for p in planes], axis=-1).astype(np.float32)


def test_a_volume_with_a_refused_slice_is_refused_whole(
    tmp_path, helpers, brain_slices, never_anchored, generator
):
    w = helpers.make_world(tmp_path / "w", [])  # only the volume's slices are anchored
    try:
        anchor_model(w.ledger, GENERATOR)
        write_nifti(tmp_path / "vol.nii.gz", _volume(brain_slices))
        anchor_images(w.prov, read_inputs([tmp_path / "vol.nii.gz"]))
        h = w.ledger.store.height
        rng = np.random.default_rng(5)
        planes = [brain_slices[0], never_anchored, brain_slices[2]]
        noisy = _volume(planes) + rng.normal(0.0, 50.0, (256, 256, 3)).astype(np.float32)
        write_nifti(tmp_path / "noisy.nii.gz", noisy)
        out = tmp_path / "restored.nii.gz"
        with pytest.raises(NoConfidentMatch, match=r"1 of 3 slices \[1\].*slice 1: the nearest anchor"):
            restore_volume_file(w.prov, tmp_path / "noisy.nii.gz", out, generator)
        flat = _volume(brain_slices)
        flat[..., 1] = 0.0
        write_nifti(tmp_path / "flat.nii.gz", flat)
        with pytest.raises(ConstantImage, match=r"slices \[1\] of the volume are constant"):
            restore_volume_file(w.prov, tmp_path / "flat.nii.gz", out, generator)
        assert w.ledger.store.height == h and not out.exists()
        assert not list(tmp_path.glob(".prosima-tmp-*"))
    finally:
        w.ledger.close()

"""``prosima bench restore-match`` on a tiny BraTS-like tree (two subjects cut from the embedded
brain) and a folder of X-ray-like images: every query is recorded with its similarity, margin and
whether the nearest anchor is the right original; the sweep scores other rules; bad options exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.bench.restore_match import SWEEP_MARGIN, SWEEP_SCALE, SWEEP_SIMILARITY, run_restore_match_bench
from prosima.cli import app
from prosima.imaging.datasets import embedded_default_volume
from prosima.imaging.io import write_nifti, write_png
from prosima.provenance.match_rule import MatchRule


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("match")
    volume, _ = embedded_default_volume()
    for subject, start in (("SUBJ-A", 70), ("SUBJ-B", 110)):
        (root / "brats" / subject).mkdir(parents=True)
        block = np.round(volume[:, :, start : start + 4 * 6 : 6] * 100.0)  # 4 sections 6 mm apart
        write_nifti(root / "brats" / subject / f"{subject}-t1n.nii.gz", block.astype(np.float32))
    rng = np.random.default_rng(0)
    (root / "xray" / "Normal").mkdir(parents=True)
    for i in range(2):
        ramp = np.linspace(0.0, 1.0, 256)[None, :] * np.linspace(0.2, 1.0, 256)[:, None]
        image = np.clip(ramp + 0.2 * rng.random((256, 256)), 0.0, 1.0) ** (1 + i)
        write_png(root / "xray" / "Normal" / f"x{i}.png", image, data_range=(0.0, 1.0))
    return root / "brats", root / "xray"


def test_every_query_is_recorded_and_the_sweep_scores_other_rules(trees, tmp_path):
    brats, xray = trees
    out = run_restore_match_bench(
        brats, xray, held_out="SUBJ-B", contrasts=["t1n"], sigmas=[0.05], noises=["gaussian"],
        max_slices=2, anchored_xrays=1, negative_xrays=1, json_path=tmp_path / "m.json",
    )  # fmt: skip
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["rule"] == MatchRule().to_json() and saved["anchored"] == {"8-bit": 5, "int16": 4}
    rows = saved["rows"]
    groups = {r["group"] for r in rows}
    assert groups == {"anchored brain", "anchored xray", "held-out brain", "never-anchored xray"}
    # positives: 2 brain + 1 X-ray (8-bit) and 2 brain x 2 int16 storages; negatives also clean
    assert sum(r["truth"] is not None for r in rows) == 3 + 4 and len(rows) == 7 + 2 * (3 + 4)
    assert not any(r["right"] for r in rows if r["truth"] is None)
    assert {r["storage"] for r in rows} == {"8-bit", "int16 clipped", "int16 unclipped"}
    for r in rows:
        assert r["accepted"] == MatchRule().accepts(r["similarity"], r["margin"])
    assert len(saved["sweep"]) == len(SWEEP_SIMILARITY) * len(SWEEP_MARGIN) * len(SWEEP_SCALE)
    for s in saved["sweep"]:
        assert 0.0 <= s["accepted_right"] <= 1.0 and s["negatives_accepted"] >= 0
    for r in out["results"]:
        assert 0.0 <= r["refused"] <= 1.0 and r["n"] >= 1
    # the copies of anchored images are found: the nearest anchor is their original
    assert all(r["right"] for r in rows if r["truth"] is not None and r["storage"] == "8-bit")


def test_the_command_prints_the_table_and_refuses_bad_options(trees, tmp_path):
    brats, xray = trees
    runner = CliRunner()
    common = ["bench", "restore-match", "--data", str(brats), "--contrasts", "t1n", "--sigmas", "0.05"]
    res = runner.invoke(
        app,
        [*common, "--noise", "gaussian", "--max-slices", "1", "--held-out", "SUBJ-B", "--xray", str(xray),
         "--anchored-xrays", "1", "--negative-xrays", "1", "--json", str(tmp_path / "m.json")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "restore's matching rule: --min-similarity" in res.stdout and (tmp_path / "m.json").is_file()
    res = runner.invoke(app, [*common, "--held-out", "NOBODY"])
    assert res.exit_code == 2 and "--held-out NOBODY is not a subject" in res.stderr
    res = runner.invoke(app, [*common, "--held-out", "SUBJ-B", "--noise", "poisson"])
    assert res.exit_code == 2 and "--noise takes gaussian and rician" in res.stderr

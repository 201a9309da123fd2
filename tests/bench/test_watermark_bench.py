"""The watermark benchmark on a tiny PneumoniaMNIST subset: its JSON has every method x scenario, p-values
in [0, 1], boolean claims, the aims, and a figure beside it."""

from __future__ import annotations

import json

import numpy as np
import torch

from prosima.bench.watermark import CASES, METHODS, run_watermark_bench
from prosima.watermark.data import load_pneumoniamnist


def test_watermark_bench_tiny(shared_data, tmp_path):
    full = load_pneumoniamnist(shared_data, splits=("test",))
    pick = np.sort(np.random.default_rng(0).permutation(len(full.ids))[:300])
    before = torch.get_num_threads()
    try:
        out = run_watermark_bench(
            full.subset(pick),
            seeds=1,
            independent_runs=1,
            reference_runs=1,
            target="pneumonia",
            epochs=1,
            generator_epochs=1,
            finetune_epochs=1,
            width=8,
            m=20,
            fraction=0.2,
            threads=1,  # two test processes share two cores
            json_path=tmp_path / "wm.json",
        )
    finally:
        torch.set_num_threads(before)
    saved = json.loads((tmp_path / "wm.json").read_text())
    assert (tmp_path / "wm.png").is_file()
    assert saved["settings"]["seeds"]["malicious"] == [100] and saved["settings"]["m"] == 20
    for method in METHODS:
        assert set(saved["summary"][method]) == set(CASES)
        for case in CASES:
            (run,) = saved["runs"][method][case]
            assert 0.0 <= run["p_value"] <= 1.0 and 0.0 <= run["label_only"]["p_value"] <= 1.0
            assert isinstance(run["claim"], bool) and isinstance(run["label_only"]["claim"], bool)
            assert 0.0 <= run["wsr"] <= 1.0
        assert all(isinstance(a["met"], bool) for a in saved["aims"][method].values())
        q = saved["quality"][method]["train"]
        assert q["n"] >= 1 and 0.0 < q["ssim"] <= 1.0
    assert out["tau"]["xmark"]["tau"] >= 0.05

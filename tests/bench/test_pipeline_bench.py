"""The pipeline benchmark on a tiny workload: its JSON has every stage, every tamper kind, and rates
that say what happened."""

from __future__ import annotations

import json

import torch

from prosima.bench.pipeline import STAGES, run_pipeline_bench
from prosima.pipelines.tamper_suite import SUITE


def test_pipeline_bench_tiny(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two test processes share two cores
    try:
        out = run_pipeline_bench(workloads=[3], nodes=4, tamper_slices=2, json_path=tmp_path / "bench.json")
    finally:
        torch.set_num_threads(before)
    saved = json.loads((tmp_path / "bench.json").read_text())
    assert (tmp_path / "bench.png").is_file()
    assert saved["settings"]["nodes"] == 4
    (w,) = out["workloads"]
    assert w["images"] == 3 and w["verification_rate"] == 1.0 and w["original_found_rate"] == 1.0
    assert set(w["latency"]) == set(STAGES)
    assert all(w["latency"][s]["median_ms"] > 0 for s in STAGES)
    assert w["restore_commit"]["critical_path"]["median_ms"] <= w["restore_commit"]["wall"]["median_ms"]
    assert w["ledger"]["chain_ok"]
    tam = out["tamper"]
    assert set(tam["kinds"]) == set(SUITE) and tam["slices"] == 2
    assert tam["detection_rate"] == 1.0 and tam["localisation_rate"] == 1.0
    assert tam["false_positive_rate"] == 0.0
    assert 0.0 <= tam["other_slice_min_cosine"]["would_pass_as_faithful"] <= 1.0

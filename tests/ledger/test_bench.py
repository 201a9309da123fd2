"""The ledger benchmark runs end to end on a small size and writes its JSON."""

from __future__ import annotations

import json

import prosima.bench.ledger as bench


def test_ledger_bench_small(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "TREE_SIZES", (1_000, 4_096))
    monkeypatch.setattr(bench, "SAMPLES", 100)
    out = bench.run_ledger_bench(transactions=300, json_path=str(tmp_path / "b.json"))
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["store"]["transactions"] == out["store"]["transactions"] == 300 + 300 + 15
    assert [p["verify_signatures"] for p in saved["append"]] == [False, True, False]
    assert all(p["tx_per_s"] > 0 for p in saved["append"])
    for row in saved["proofs"]:
        assert row["all_verified"] and row["inclusion_bytes_max"] <= row["bound_bytes"]
    assert saved["settings"]["synchronous"] == "FULL"

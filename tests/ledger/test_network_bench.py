"""``prosima bench consensus`` end to end on a tiny network: tables, JSON and the four plots."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("zfec")

from prosima.bench.consensus import PAPER, run_consensus_bench


def test_consensus_bench_small(tmp_path, capsys):
    path = tmp_path / "bench-consensus.json"
    out = run_consensus_bench(
        nodes=5, workloads=(6, 9), batch=3, unbatched=3, backends=("inproc",), json_path=path
    )
    saved = json.loads(path.read_text())
    assert saved["paper_reported"]["replication"] == PAPER["replication"]
    systems = {(r["system"], r["mode"], r["images"]) for r in saved["runs"]}
    assert {("full", "unbatched", 3), ("random", "batched", 9), ("gft", "batched", 6)} <= systems
    assert all(r["agreement"] and r["images_committed"] == r["images"] for r in saved["runs"])
    gft = next(r for r in saved["runs"] if r["system"] == "gft" and r["images"] == 9)
    full = next(r for r in saved["runs"] if r["system"] == "full" and r["images"] == 9)
    assert full["storage"]["replication"] > gft["storage"]["replication"] > gft["storage_ec"]["replication"]
    assert gft["storage_ec"]["losses_survived"] == 2
    assert any(p["scheme"] == "3 copies" and p["losses"] == 2 for p in gft["tradeoff"])
    assert len(saved["figures"]) == 4 and all(
        (tmp_path / p.split("/")[-1]).is_file() for p in saved["figures"]
    )
    assert saved["erasure_cost"]["roundtrip_ok"]
    text = capsys.readouterr().out
    assert "paper (reported)" in text and "Where the time goes" in text
    assert out["settings"]["nodes"] == 5
    with pytest.raises(ValueError):
        run_consensus_bench(nodes=5, backends=("grpc",))

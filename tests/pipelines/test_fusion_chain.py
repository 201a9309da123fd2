"""Proof-of-useful-work rounds of real fusion training on tiny synthetic pairs: every cheat is
refused with its reason, the honest node wins, the chain verifies and resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Ledger
from prosima.ledger.useful_work.chain import read_rounds
from prosima.ledger.useful_work.config import RoundConfig
from prosima.pipelines.fusion_chain import NEAR_COPY_DISTANCE, FusionWork, run_chain

CHEATS = "1:bad_reveal,2:inflated_score,3:copy,4:near_copy,5:copy_chain,6:late,7:silent"
EXPECTED = {
    1: "bad_reveal",
    2: "score_mismatch",
    3: "copy",
    4: "copy",
    5: "copy",
    6: "late",
    7: "no_reveal",
}


def smooth_pairs(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """Random smooth (n, 2, size, size) sources in [0, 1]."""
    x = gaussian_filter(np.random.default_rng(seed).random((n, 2, size, size)), sigma=(0, 0, 1.5, 1.5))
    lo, hi = x.min(axis=(2, 3), keepdims=True), x.max(axis=(2, 3), keepdims=True)
    return ((x - lo) / (hi - lo)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return smooth_pairs(16, seed=1), smooth_pairs(4, seed=2)


def test_fusion_work_is_deterministic(data):
    work = FusionWork(*data, nodes=4, steps=2)
    g = work.genesis(0)
    assert g == work.genesis(0)
    a, b = work.train(1, 0, g, b"s" * 32), work.train(1, 0, g, b"s" * 32)
    assert a == b != work.train(2, 0, g, b"s" * 32)
    assert work.score(a, b"v" * 32) == work.score(a, b"v" * 32)
    assert work.distance(a, a) == 0.0
    assert work.distance(a, g) > RoundConfig().copy_distance
    near = work.perturb(a, b"p" * 32)
    assert near != a and work.distance(a, near) == pytest.approx(NEAR_COPY_DISTANCE, rel=0.2)
    assert work.distance(a, near) < RoundConfig().copy_distance
    with pytest.raises(ValueError):
        work.score(b"not weights", b"v" * 32)
    assert sorted(np.concatenate(work.shards).tolist()) == list(range(16))


def test_fusion_chain_refuses_every_cheat(tmp_path, data):
    path = tmp_path / "chain"
    train, val = data
    summary = run_chain(path, 8, 2, CHEATS, seed=3, train_pairs=train, val_pairs=val, steps=2)
    assert summary["chain_ok"] and summary["audit"] == [] and summary["height"] == 1
    assert json.loads(json.dumps(summary)) == summary
    for r, height in zip(summary["rounds"], (0, 1), strict=True):
        assert r["height"] == height
        assert r["winner"] == 0 and r["score"] >= r["threshold"] >= r["chain_score"]
        assert {x["node"]: x["code"] for x in r["refusals"]} == EXPECTED
        assert all(x["reason"] for x in r["refusals"])
        assert r["seconds"]["total"] > 0
    with Ledger.open(path, verify="full") as ledger:
        assert ledger.verify().ok
        records = read_rounds(ledger)
        assert all(rec.proposer == next(iter(ledger.registry.members)) for rec in records)
        assert records[1].prev_weights == records[0].weights
    # resumes where it stopped; the node count must match the ledger's
    more = run_chain(path, 8, 1, None, seed=3, train_pairs=train, val_pairs=val, steps=2, validators=1)
    assert more["first_round"] == 2 and more["rounds"][0]["height"] == 2 and more["chain_ok"]
    with pytest.raises(LedgerError, match="8 registered nodes"):
        run_chain(path, 4, 1, train_pairs=train, val_pairs=val)


def test_bad_byzantine_spec_is_refused(tmp_path, data):
    with pytest.raises(ValueError, match="out of range"):
        run_chain(tmp_path / "x", 4, 1, "4:copy", train_pairs=data[0], val_pairs=data[1])
    assert not (tmp_path / "x").exists()

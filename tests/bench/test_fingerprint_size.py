"""The fingerprint-size benchmark: re-quantisation keeps the codes' signs and scale, sizes are
counted as stored, and a tiny run on the embedded brain reports every configuration."""

from __future__ import annotations

import numpy as np
import pytest

from prosima.bench.fingerprint_size import fingerprint_bytes, requantise, run_fingerprint_bench
from prosima.models.fingerprint import QMAX, Fingerprint


def _fp(seed: int = 0) -> Fingerprint:
    codes = np.random.default_rng(seed).integers(-QMAX, QMAX + 1, size=(4, 128)).astype(np.int8)
    return Fingerprint(codes, np.ones(4, dtype=np.float32), (64, 64), 4)


def test_requantise_keeps_8_bits_and_rounds_fewer_to_coarser_levels():
    fp = _fp()
    assert requantise(fp, 8) is fp
    two = requantise(fp, 2)
    assert set(np.unique(two.codes)) <= {-QMAX, 0, QMAX}
    assert np.all(
        np.sign(two.codes[np.abs(fp.codes) > QMAX // 2]) == np.sign(fp.codes[np.abs(fp.codes) > QMAX // 2])
    )
    four = requantise(fp, 4)
    assert (
        len(np.unique(four.codes)) <= 15 and np.abs(four.codes.astype(int) - fp.codes).max() <= QMAX // 14 + 1
    )
    with pytest.raises(ValueError, match="between 2 and 8"):
        requantise(fp, 1)


def test_bytes_count_packed_codes_and_one_scale_per_shard():
    assert fingerprint_bytes(16, 128, 8) == 16 * (128 + 4)
    assert fingerprint_bytes(4, 128, 2) == 4 * (32 + 4)
    assert fingerprint_bytes(1, 3, 3) == 2 + 4


def test_a_tiny_run_reports_blind_and_every_configuration(tmp_path):
    out = run_fingerprint_bench(
        None, (0.05,), ks=(4,), bits=(8, 2), max_slices=1, threads=1, json_path=tmp_path / "fp.json"
    )
    rows = {(r["k"], r["bits"]): r for r in out["results"]}
    assert set(rows) == {(0, 0), (4, 8), (4, 2)}
    assert rows[(0, 0)]["gain_db"] == 0.0 and rows[(0, 0)]["bytes_per_slice"] == 0
    assert rows[(4, 2)]["bytes_per_slice"] < rows[(4, 8)]["bytes_per_slice"]
    assert all(np.isfinite(r["psnr"]) for r in rows.values())
    assert (tmp_path / "fp.json").is_file() and (tmp_path / "fp.png").stat().st_size > 1000

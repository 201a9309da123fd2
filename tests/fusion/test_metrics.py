import math

import numpy as np
import pytest

from prosima.fusion.baselines import BASELINES
from prosima.fusion.metrics import (
    EN,
    METRIC_NAMES,
    MI,
    QABF_CONSTANTS,
    SCD,
    SD,
    SF,
    SSIM,
    VIF,
    Qabf,
    all_metrics,
)

TWO_SOURCE = {"MI": MI, "SCD": SCD, "VIF": VIF, "Qabf": Qabf, "SSIM": SSIM}


def _smooth(seed, shape=(40, 40), hi=1.0):
    """A smooth random image with some edges, in [0, hi]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    img = 0.5 + 0.3 * np.sin(6 * xx + rng.uniform(0, 6)) * np.cos(4 * yy + rng.uniform(0, 6))
    img[(yy - 0.5) ** 2 + (xx - rng.uniform(0.3, 0.7)) ** 2 < 0.04] += 0.15
    img += rng.normal(0, 0.03, shape)
    return np.clip(img, 0, 1) * hi


def _qabf_max():
    c = QABF_CONSTANTS
    q_g = c["Tg"] / (1 + math.exp(c["kg"] * (1 - c["Dg"])))  # gradient ratio 1
    q_a = c["Ta"] / (1 + math.exp(c["ka"] * (1 - c["Da"])))  # orientation agreement 1
    return q_g * q_a


# --------------------------------------------------------------------------- single-image metrics


def test_entropy_of_two_and_four_equally_used_levels():
    two = np.zeros((8, 8))
    two[:, 4:] = 1.0
    assert EN(two) == pytest.approx(1.0)
    four = np.repeat(np.array([0, 85, 170, 255]) / 255, 16).reshape(8, 8)
    assert EN(four) == pytest.approx(2.0)
    assert EN(np.full((5, 5), 0.3)) == 0.0


def test_entropy_bins_intensities_to_8_bit_levels():
    x = np.array([[10.2, 10.4, 20.0, 20.3]]) / 255  # two grey levels after rounding
    assert EN(x) == pytest.approx(1.0)


def test_sd_and_sf_of_small_known_arrays():
    assert SD(np.array([[0.0, 1.0]])) == pytest.approx(127.5)
    stripes = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert SF(stripes) == pytest.approx(255.0)  # RF = 255, CF = 0
    checker = (np.indices((3, 3)).sum(0) % 2).astype(float)
    assert SF(checker) == pytest.approx(255.0 * math.sqrt(2))


def test_sf_matches_an_explicit_loop():
    x = np.random.default_rng(1).uniform(0, 1, (5, 7))
    f = 255 * x
    rows, cols = f.shape
    rf2 = sum((f[i, j] - f[i, j - 1]) ** 2 for i in range(rows) for j in range(1, cols)) / (rows * (cols - 1))
    cf2 = sum((f[i, j] - f[i - 1, j]) ** 2 for i in range(1, rows) for j in range(cols)) / ((rows - 1) * cols)
    assert SF(x) == pytest.approx(math.sqrt(rf2 + cf2))
    assert SD(x) == pytest.approx(float(np.sqrt(np.mean((f - f.mean()) ** 2))))


# --------------------------------------------------------------------------- MI


def test_mi_of_f_equal_to_a_with_independent_b_is_the_entropy_of_a():
    rows, cols = np.indices((8, 8))
    a = (rows % 2).astype(float)  # 1 bit
    b = (cols % 2).astype(float)  # independent of a: every (a, b) pair occurs 16 times
    assert MI(a, b, a, base=2) == pytest.approx(1.0)  # MI(a, a) = H(a) = 1, MI(b, a) = 0
    assert MI(a, b, a) == pytest.approx(math.log(2))  # nats by default
    four = (rows % 4) / 3  # 2 bits, a function of the row only
    assert MI(four, four, four, base=2) == pytest.approx(4.0)


def test_mi_matches_a_plain_counting_formula():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 6, (12, 12)) / 255, rng.integers(0, 4, (12, 12)) / 255
    f = (a + b) / 2

    def mi(x, y):
        xs, ys = np.rint(255 * x).ravel(), np.rint(255 * y).ravel()
        n = xs.size
        pairs = {}
        for p in zip(xs, ys, strict=True):
            pairs[p] = pairs.get(p, 0) + 1
        total = 0.0
        for (u, v), c in pairs.items():
            total += c / n * math.log2(c * n / ((xs == u).sum() * (ys == v).sum()))
        return total

    assert MI(a, b, f, base=2) == pytest.approx(mi(a, f) + mi(b, f))


# --------------------------------------------------------------------------- SCD


def test_scd_is_two_when_f_is_the_sum_of_the_sources():
    a, b = _smooth(3, hi=0.5), _smooth(4, hi=0.5)
    assert SCD(a, b, a + b) == pytest.approx(2.0)


def test_scd_counts_a_constant_difference_as_uncorrelated():
    a, b = _smooth(3), _smooth(4)
    r = np.corrcoef((a - b).ravel(), a.ravel())[0, 1]
    assert SCD(a, b, a) == pytest.approx(r)  # corr(f - b, a) + corr(0, b) = r + 0


# --------------------------------------------------------------------------- VIF, Qabf, SSIM


def test_identical_sources_and_fusion_reach_the_maxima():
    a = _smooth(5)
    assert VIF(a, a, a) == pytest.approx(2.0, abs=1e-6)
    assert SSIM(a, a, a) == pytest.approx(2.0)
    assert Qabf(a, a, a) == pytest.approx(_qabf_max())
    assert SCD(a, a, a) == 0.0  # both differences are constant


def test_qabf_when_f_reproduces_the_only_source_with_edges():
    a = _smooth(6)
    flat = np.zeros_like(a)  # zero, as Sobel pads with zeros: no edges even at the border
    assert Qabf(a, flat, a) == pytest.approx(_qabf_max())  # about 0.975, not 1
    assert 0.974 < _qabf_max() < 0.976
    assert Qabf(flat, flat, flat) == 1.0  # nothing to preserve
    assert Qabf(a, flat, flat) < 0.01  # every edge lost


def test_vif_of_f_equal_to_a_is_one_plus_vif_of_b():
    a, b = _smooth(7, (48, 48)), _smooth(8, (48, 48))
    # VIF(a, b, a) = VIFp(a, a) + VIFp(b, a) = 1 + VIFp(b, a), and VIF(b, b, a) = 2 VIFp(b, a)
    assert VIF(a, b, a) == pytest.approx(1.0 + VIF(b, b, a) / 2, abs=1e-6)
    assert 0 < VIF(a, b, a) - 1.0 < 1.0


def test_degrading_the_fusion_lowers_the_fidelity_metrics():
    a, b = _smooth(9), _smooth(10)
    good = (a + b) / 2
    noisy = np.clip(good + np.random.default_rng(0).normal(0, 0.15, good.shape), 0, 1)
    for name in ("VIF", "Qabf", "SSIM"):
        assert TWO_SOURCE[name](a, b, noisy) < TWO_SOURCE[name](a, b, good), name


@pytest.mark.parametrize("name", list(TWO_SOURCE))
def test_two_source_metrics_are_symmetric_in_a_and_b(name):
    a, b = _smooth(11), _smooth(12)
    f = np.maximum(a, b)
    assert TWO_SOURCE[name](a, b, f) == pytest.approx(TWO_SOURCE[name](b, a, f), rel=1e-12)


def test_all_metrics_matches_the_single_functions():
    a, b = _smooth(13), _smooth(14)
    f = np.sqrt(a * b)
    got = all_metrics(a, b, f)
    assert tuple(got) == METRIC_NAMES
    single = {"EN": EN(f), "SD": SD(f), "SF": SF(f)} | {k: fn(a, b, f) for k, fn in TWO_SOURCE.items()}
    assert got == pytest.approx(single)


# --------------------------------------------------------------------------- refusals


def test_shape_mismatch_is_refused():
    a = np.zeros((10, 10))
    with pytest.raises(ValueError, match="shape mismatch"):
        all_metrics(a, a, np.zeros((10, 11)))
    with pytest.raises(ValueError, match="shape mismatch"):
        MI(a, np.zeros((9, 10)), a)


def test_nan_3d_and_out_of_range_are_refused():
    a = np.full((10, 10), 0.5)
    bad = a.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="f: contains 1 NaN"):
        SCD(a, a, bad)
    with pytest.raises(ValueError, match="b: contains 1 NaN"):
        VIF(a, bad, a)
    with pytest.raises(ValueError, match="2-D"):
        EN(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        SD(a * 3)
    with pytest.raises(ValueError, match="base"):
        MI(a, a, a, base=1.0)
    with pytest.raises(ValueError, match="7x7"):
        SSIM(np.zeros((5, 5)), np.zeros((5, 5)), np.zeros((5, 5)))


# --------------------------------------------------------------------------- real data


def _load(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float64) / 255


@pytest.mark.shared_data
def test_metrics_of_the_baselines_on_a_real_mri_ct_pair(shared_data):
    """../shared/data/fusion/harvard_aanlib (or $PROSIMA_SHARED_DATA/fusion/harvard_aanlib)."""
    root = shared_data / "fusion" / "harvard_aanlib" / "CT-MRI"
    if not root.is_dir():
        pytest.skip(f"Harvard AANLIB MRI-CT pairs not found at {root}")
    name = sorted((root / "CT").glob("*.png"))[0].stem
    mri, ct = _load(root / "MRI" / f"{name}.png"), _load(root / "CT" / f"{name}.png")
    assert mri.shape == ct.shape
    bounds = {"EN": (1, 8), "SD": (10, 128), "SF": (5, 80), "MI": (0.5, 8), "SCD": (0.5, 2)}
    bounds |= {"VIF": (0.1, 1.2), "Qabf": (0.2, 0.9), "SSIM": (0.8, 2)}
    results = {}
    for key, fuse in BASELINES.items():
        m = all_metrics(mri, ct, fuse(mri, ct))
        results[key] = m
        for metric, (lo, hi) in bounds.items():
            assert np.isfinite(m[metric]) and lo < m[metric] < hi, (key, metric, m[metric])
    # Max-absolute rules keep edges that averaging halves.
    assert results["maximum"]["Qabf"] > results["average"]["Qabf"]
    assert results["laplacian_pyramid"]["SF"] > results["average"]["SF"]

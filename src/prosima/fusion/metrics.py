"""No-reference image fusion metrics: EN, SD, SF, MI, SCD, VIF, Qabf and SSIM.

Every function takes 2-D float arrays in [0, 1] (sources ``a``, ``b`` and fused ``f``, one shape)
and follows the conventions of the evaluator most fusion papers share (the ``Evaluator`` of
CDDFuse and its descendants), which works on 0-255 images: intensities are scaled by 255 before
EN, SD, SF, MI, VIF and Qabf (SCD and SSIM do not depend on the scale), and EN and MI bin the
scaled images into the 256 integer grey levels. Two-source metrics are sums over the sources
(so VIF and SSIM are 2, and MI is 2 EN(a), when a, b and f are one image).

MI is in nats, as that evaluator reports it (``base=2`` gives bits), so that it compares with the
published figures. Deliberate departures from that evaluator: Qabf takes the gradient-strength
ratio as 1 where source and fused gradients are equal (it takes the fused gradient itself, a slip);
a correlation with a constant image counts as
0 in SCD (it gives NaN); and SSIM is the package's metric SSIM (``prosima.imaging.metrics.ssim``,
scikit-image) with scikit-image's default window, ``SKIMAGE_DEFAULTS``, and ``data_range=1``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from prosima.imaging.metrics import SKIMAGE_DEFAULTS, ssim
from prosima.imaging.validation import ImageError, check_image

METRIC_NAMES: tuple[str, ...] = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")

_RANGE_TOL = 1e-6
# Xydeas & Petrovic (2000) constants: sigmoid gains, slopes and midpoints for the gradient strength
# (g) and orientation (a) preservation, and the exponent of the edge-strength weights.
QABF_CONSTANTS = {"Tg": 0.9994, "kg": -15.0, "Dg": 0.5, "Ta": 0.9879, "ka": -22.0, "Da": 0.8, "L": 1.0}
VIF_NOISE_VAR = 2.0  # sigma_n^2 of the HVS noise, on the 0-255 scale
_VIF_EPS = 1e-10
_SOBEL_ZERO = 1e-9  # on the 0-255 scale


def _image(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as float64 on the 0-255 scale, or ImageError (a ValueError) naming the problem."""
    check_image(x, name, ndim=(2,))  # check_image's copy is float32: compute on the float64 original
    arr = np.asarray(x, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
        raise ImageError(f"{name}: values must lie in [0, 1], got [{lo:.6g}, {hi:.6g}]")
    return np.clip(arr, 0.0, 1.0) * 255.0


def _triplet(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a_, b_, f_ = _image(a, "a"), _image(b, "b"), _image(f, "f")
    if not a_.shape == b_.shape == f_.shape:
        raise ImageError(f"shape mismatch: a {a_.shape}, b {b_.shape}, f {f_.shape}")
    return a_, b_, f_


def _levels(x: np.ndarray) -> np.ndarray:
    """Grey levels 0..255 of a 0-255 image (rounded, as an 8-bit image would store it)."""
    return np.rint(x).astype(np.intp)


# ---------------------------------------------------------------------------------------------- EN SD SF


def _en(f: np.ndarray) -> float:
    p = np.bincount(_levels(f).ravel(), minlength=256) / f.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _sd(f: np.ndarray) -> float:
    return float(f.std())


def _sf(f: np.ndarray) -> float:
    rf2 = np.mean(np.diff(f, axis=1) ** 2) if f.shape[1] > 1 else 0.0
    cf2 = np.mean(np.diff(f, axis=0) ** 2) if f.shape[0] > 1 else 0.0
    return float(np.sqrt(rf2 + cf2))


def EN(f: np.ndarray) -> float:
    """Shannon entropy of the 256-level histogram, in bits: ``-sum_l p_l log2 p_l``."""
    return _en(_image(f, "f"))


def SD(f: np.ndarray) -> float:
    """Standard deviation (population, 0-255 scale): ``sqrt(mean((f - mean f)^2))``."""
    return _sd(_image(f, "f"))


def SF(f: np.ndarray) -> float:
    """Spatial frequency (0-255 scale): ``sqrt(RF^2 + CF^2)``, ``RF^2`` the mean squared difference of
    horizontal neighbours and ``CF^2`` that of vertical neighbours (each averaged over its own pairs)."""
    return _sf(_image(f, "f"))


# ---------------------------------------------------------------------------------------------- MI


def _mutual_information(x: np.ndarray, y: np.ndarray, base: float) -> float:
    joint = np.bincount((256 * _levels(x) + _levels(y)).ravel(), minlength=256 * 256)
    pxy = joint.reshape(256, 256) / x.size
    px, py = pxy.sum(axis=1), pxy.sum(axis=0)
    i, j = np.nonzero(pxy)
    p = pxy[i, j]
    return float((p * np.log(p / (px[i] * py[j]))).sum() / math.log(base))


def _mi(a: np.ndarray, b: np.ndarray, f: np.ndarray, base: float) -> float:
    return _mutual_information(a, f, base) + _mutual_information(b, f, base)


def MI(a: np.ndarray, b: np.ndarray, f: np.ndarray, *, base: float = math.e) -> float:
    """Mutual information ``MI(a, f) + MI(b, f)`` from 256x256-bin joint histograms of the grey levels,
    ``MI(x, f) = sum p(x, f) log(p(x, f) / (p(x) p(f)))``; in nats (``base=2``: bits)."""
    if not base > 1:
        raise ValueError(f"base must exceed 1, got {base}")
    return _mi(*_triplet(a, b, f), base)


# ---------------------------------------------------------------------------------------------- SCD


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0 when either image is constant."""
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float((xc * xc).sum()) * float((yc * yc).sum()))
    return float((xc * yc).sum()) / den if den > 0 else 0.0


def _scd(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return _corr(f - b, a) + _corr(f - a, b)


def SCD(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Sum of the correlations of differences (Aslantas & Bendes 2015): ``r(f - b, a) + r(f - a, b)``,
    ``r`` Pearson's correlation (taken as 0 when a difference image is constant)."""
    return _scd(*_triplet(a, b, f))


# ---------------------------------------------------------------------------------------------- VIF


def _gauss_1d(n: int) -> np.ndarray:
    """1-D factor of MATLAB's ``fspecial('gaussian', n, n / 5)`` (that 2-D window is separable)."""
    r = (n - 1) / 2
    t = np.arange(n) - r
    k = np.exp(-(t * t) / (2 * (n / 5) ** 2))
    return k / k.sum()


def _filter_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Separable filtering by the symmetric ``k`` (x) ``k``, keeping only the 'valid' part."""
    r = len(k) // 2
    if min(x.shape) < len(k):
        return np.zeros((max(x.shape[0] - 2 * r, 0), max(x.shape[1] - 2 * r, 0)))
    y = ndimage.correlate1d(x, k, axis=0, mode="constant")[r:-r]
    return ndimage.correlate1d(y, k, axis=1, mode="constant")[:, r:-r]


def _vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pixel-domain VIF of ``dist`` against ``ref`` over 4 scales (Sheikh & Bovik 2006, ``vifp_mscale``)."""
    num = den = 0.0
    eps = _VIF_EPS
    for scale in range(1, 5):
        k = _gauss_1d(2 ** (5 - scale) + 1)
        if scale > 1:
            ref, dist = _filter_valid(ref, k)[::2, ::2], _filter_valid(dist, k)[::2, ::2]
        mu1, mu2 = _filter_valid(ref, k), _filter_valid(dist, k)
        if mu1.size == 0:  # image smaller than this scale's window: the scale is skipped
            continue
        s1 = np.maximum(_filter_valid(ref * ref, k) - mu1 * mu1, 0.0)
        s2 = np.maximum(_filter_valid(dist * dist, k) - mu2 * mu2, 0.0)
        s12 = _filter_valid(ref * dist, k) - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        flat_ref = s1 < eps
        g[flat_ref], sv[flat_ref], s1[flat_ref] = 0.0, s2[flat_ref], 0.0
        flat_dist = s2 < eps
        g[flat_dist], sv[flat_dist] = 0.0, 0.0
        neg = g < 0
        sv[neg], g[neg] = s2[neg], 0.0
        sv = np.maximum(sv, eps)
        num += float(np.log10(1 + g * g * s1 / (sv + VIF_NOISE_VAR)).sum())
        den += float(np.log10(1 + s1 / VIF_NOISE_VAR).sum())
    return num / den if den > 0 else 1.0


def _vif(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return _vifp(a, f) + _vifp(b, f)


def VIF(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Visual information fidelity ``VIFp(a, f) + VIFp(b, f)``, the pixel-domain multi-scale VIF of
    Sheikh & Bovik: at 4 scales (Gaussian windows 17, 9, 5, 3, sigma = size / 5, 'valid' filtering,
    dyadic downsampling), local gain ``g = s_xf / s_x^2`` and residual ``s_v^2 = s_f^2 - g s_xf``,
    ``VIFp = sum log10(1 + g^2 s_x^2 / (s_v^2 + sn^2)) / sum log10(1 + s_x^2 / sn^2)`` with
    ``sn^2 = 2`` on the 0-255 scale; a constant reference scores 1."""
    return _vif(*_triplet(a, b, f))


# ---------------------------------------------------------------------------------------------- Qabf


def _sobel(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel edge strength and orientation ``arctan(sy / sx)`` (pi/2 where ``sx == 0``), zero padding.

    ``sx`` is left minus right, ``sy`` bottom minus top (the evaluator's signs, which matter where
    ``sx == 0``); ``|sx| < 1e-9`` counts as 0 so rounding noise cannot flip an orientation by pi."""
    sx = -ndimage.sobel(x, axis=1, mode="constant")
    sx[np.abs(sx) < _SOBEL_ZERO] = 0.0
    sy = ndimage.sobel(x, axis=0, mode="constant")
    vertical = sx == 0
    alpha = np.arctan(np.divide(sy, sx, out=np.zeros_like(sy), where=~vertical))
    alpha[vertical] = math.pi / 2
    return np.hypot(sx, sy), alpha


def _edge_preservation(gs: np.ndarray, als: np.ndarray, gf: np.ndarray, alf: np.ndarray) -> np.ndarray:
    """Per-pixel ``Q^{SF} = Q_g Q_a`` of a source's edges in the fused image."""
    c = QABF_CONSTANTS
    lo, hi = np.minimum(gs, gf), np.maximum(gs, gf)
    ratio = np.divide(lo, hi, out=np.ones_like(hi), where=hi > 0)
    orient = 1 - np.abs(als - alf) / (math.pi / 2)
    qg = c["Tg"] / (1 + np.exp(c["kg"] * (ratio - c["Dg"])))
    qa = c["Ta"] / (1 + np.exp(c["ka"] * (orient - c["Da"])))
    return qg * qa


def _qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray, f_edges: tuple[np.ndarray, np.ndarray]) -> float:
    (ga, ala), (gb, alb) = _sobel(a), _sobel(b)
    gf, alf = f_edges
    wa, wb = ga ** QABF_CONSTANTS["L"], gb ** QABF_CONSTANTS["L"]
    total = float((wa + wb).sum())
    if total == 0:  # no edges in either source: perfect unless f invents some
        return 1.0 if not gf.any() else 0.0
    qa, qb = _edge_preservation(ga, ala, gf, alf), _edge_preservation(gb, alb, gf, alf)
    return float((qa * wa + qb * wb).sum()) / total


def Qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Edge-preservation metric of Xydeas & Petrovic (2000):
    ``sum(Q^{af} w_a + Q^{bf} w_b) / sum(w_a + w_b)``, ``w = g^L`` the Sobel edge strength of the source,
    ``Q^{sf} = Tg / (1 + e^{kg (G - Dg)}) * Ta / (1 + e^{ka (A - Da)})`` with ``G`` the ratio of the weaker
    to the stronger of the source and fused strengths and ``A = 1 - |alpha_s - alpha_f| / (pi / 2)``.
    Its maximum (f reproducing every source edge) is about 0.975, not 1."""
    a_, b_, f_ = _triplet(a, b, f)
    return _qabf(a_, b_, f_, _sobel(f_))


# ---------------------------------------------------------------------------------------------- SSIM


def _ssim(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    f1 = f / 255
    return float(sum(ssim(s / 255, f1, 1.0, SKIMAGE_DEFAULTS) for s in (a, b)))


def SSIM(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Structural similarity ``SSIM(a, f) + SSIM(b, f)``: skimage's defaults (7x7 uniform window,
    sample covariance, K1 = 0.01, K2 = 0.03) with ``data_range=1``."""
    return _ssim(*_triplet(a, b, f))


# ---------------------------------------------------------------------------------------------- all


def all_metrics(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> dict[str, float]:
    """Every metric of ``METRIC_NAMES`` for one fusion, validating the images once."""
    a_, b_, f_ = _triplet(a, b, f)
    return {
        "EN": _en(f_),
        "SD": _sd(f_),
        "SF": _sf(f_),
        "MI": _mi(a_, b_, f_, math.e),
        "SCD": _scd(a_, b_, f_),
        "VIF": _vif(a_, b_, f_),
        "Qabf": _qabf(a_, b_, f_, _sobel(f_)),
        "SSIM": _ssim(a_, b_, f_),
    }

import numpy as np
import pytest

from prosima.imaging.baselines import DENOISERS, get_denoiser
from prosima.imaging.metrics import psnr
from prosima.imaging.validation import ImageError
from prosima.optional import available


def _clean():
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.zeros((96, 96), np.float32)
    img[(yy - 48) ** 2 + (xx - 48) ** 2 < 35**2] = 0.6
    img[(yy - 40) ** 2 + (xx - 55) ** 2 < 10**2] = 0.9
    return img


@pytest.mark.parametrize("name", [n for n in DENOISERS if n != "noisy"])
def test_each_denoiser_beats_the_noisy_input(name):
    if name == "bm3d" and not available("bm3d"):
        pytest.skip("bm3d extra not installed")
    clean = _clean()
    noisy = clean + np.random.default_rng(0).normal(0, 0.1, clean.shape).astype(np.float32)
    out, params = get_denoiser(name)(noisy, 0.1)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert psnr(clean, out, 1.0) > psnr(clean, noisy, 1.0) + 3.0
    assert params  # every parameter used is reported


def test_noisy_is_the_identity_and_unknown_is_refused():
    x = _clean()
    assert np.array_equal(get_denoiser("noisy")(x, 0.1)[0], x)
    with pytest.raises(ImageError, match="unknown method"):
        get_denoiser("dncnn")


def test_bm4d_denoises_a_whole_volume_better_than_bm3d_slice_by_slice():
    if not (available("bm4d") and available("bm3d")):
        pytest.skip("bm3d / bm4d extra not installed")
    from prosima.imaging.baselines import bm4d

    clean = np.stack([_clean()[::2, ::2]] * 6)
    noisy = clean + np.random.default_rng(1).normal(0, 0.1, clean.shape).astype(np.float32)
    out, params = bm4d(noisy, 0.1)
    slice_by_slice = np.stack([get_denoiser("bm3d")(plane, 0.1)[0] for plane in noisy])
    assert out.shape == clean.shape and out.dtype == np.float32 and params["sigma_psd"] == 0.1
    assert psnr(clean, out, 1.0) > psnr(clean, slice_by_slice, 1.0) > psnr(clean, noisy, 1.0)
    with pytest.raises(ImageError, match="noisy volume"):
        bm4d(noisy[0], 0.1)

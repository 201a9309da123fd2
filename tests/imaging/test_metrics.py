import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from prosima.imaging.metrics import (
    SKIMAGE_DEFAULTS,
    SSIMWindow,
    brain_mask,
    brain_psnr,
    cosine_similarity,
    masked_psnr,
    psnr,
    ssim,
)
from prosima.imaging.validation import ImageError


def _pair(shape=(96, 96), sigma=0.05):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = np.clip(0.5 + 0.3 * np.sin(xx / 5) + 0.1 * np.cos(yy / 3), 0, 1).astype(np.float32)
    return clean, (clean + rng.normal(0, sigma, shape)).astype(np.float32)


def test_psnr_of_known_noise():
    clean, noisy = _pair((256, 256), 0.05)
    assert psnr(clean, noisy, 1.0) == pytest.approx(20 * np.log10(1 / 0.05), abs=0.1)
    assert psnr(clean, clean + 0.1, 1.0) == pytest.approx(20.0, abs=1e-4)
    assert psnr(clean, clean + 0.1, 2.0) == pytest.approx(20.0 + 20 * np.log10(2), abs=1e-4)


def test_ssim_settings_are_wang_2004():
    clean, noisy = _pair()
    want = structural_similarity(
        clean.astype(float),
        noisy.astype(float),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(clean, noisy, 1.0) == pytest.approx(want, abs=1e-12)
    assert ssim(clean, clean, 1.0) == pytest.approx(1.0)


def test_ssim_windows_are_scikit_image_settings():
    clean, noisy = _pair()
    a, b = clean.astype(float), noisy.astype(float)
    # the fusion metrics' window is scikit-image's default call, exactly
    assert ssim(a, b, 1.0, SKIMAGE_DEFAULTS) == structural_similarity(a, b, data_range=1.0)
    # values are taken as given (float64), not rounded to float32 first
    assert ssim(a + 1e-9, b, 1.0) == structural_similarity(
        a + 1e-9, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    with pytest.raises(ImageError, match=r"3\.5 sigma: sigma 1\.5 gives 11x11, not 7x7"):
        ssim(a, b, 1.0, SSIMWindow(size=7))
    with pytest.raises(ImageError, match="at least 11x11"):
        ssim(a[:10], b[:10], 1.0)
    with pytest.raises(ImageError, match="odd"):
        SSIMWindow(size=8)


def test_agrees_with_scikit_image_on_a_real_slice(shared_data):
    import nibabel as nib

    vol = nib.load(shared_data / "brain_mri/TCGA-DU-7294/TCGA-DU-7294-t1n.nii.gz").get_fdata()
    clean = vol[:, :, 80] / vol.max()
    noisy = clean + np.random.default_rng(1).normal(0, 0.05, clean.shape)
    assert psnr(clean, noisy, 1.0) == pytest.approx(
        peak_signal_noise_ratio(clean, noisy, data_range=1.0), abs=1e-4
    )
    want = structural_similarity(
        clean, noisy, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(clean, noisy, 1.0) == pytest.approx(want, abs=1e-5)
    mask = brain_mask(clean)
    assert 0.1 < mask.mean() < 0.6
    # the dark background inflates whole-slice PSNR: the brain alone scores lower on a denoised-looking blur
    blurred = clean * 0.9
    assert brain_psnr(clean, blurred, 1.0) < psnr(clean, blurred, 1.0)


def test_masked_psnr_only_sees_the_mask():
    clean, _ = _pair()
    test = clean.copy()
    mask = np.zeros_like(clean, dtype=bool)
    mask[:48] = True
    test[48:] += 0.5  # error outside the mask is ignored
    test[:48] += 0.01
    assert masked_psnr(clean, test, mask, 1.0) == pytest.approx(40.0, abs=1e-3)
    assert masked_psnr(clean, clean, mask, 1.0) == float("inf")
    with pytest.raises(ImageError, match="mask is empty"):
        masked_psnr(clean, test, np.zeros_like(mask), 1.0)
    with pytest.raises(ImageError, match="mask shape"):
        masked_psnr(clean, test, mask[:10], 1.0)


def test_brain_mask_fills_holes():
    img = np.zeros((20, 20), np.float32)
    img[5:15, 5:15] = 1.0
    img[9:11, 9:11] = 0.0  # dark ventricle inside the brain
    assert brain_mask(img).sum() == 100


def test_cosine_similarity():
    assert cosine_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine_similarity([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert cosine_similarity(np.ones((2, 2)), -np.ones(4)) == pytest.approx(-1.0)
    with pytest.raises(ImageError, match="zero vector"):
        cosine_similarity([0, 0], [1, 1])
    with pytest.raises(ImageError, match="sizes differ"):
        cosine_similarity([1, 2], [1, 2, 3])


def test_refuses_mismatched_or_bad_images():
    clean, noisy = _pair()
    with pytest.raises(ImageError, match="differs"):
        psnr(clean, noisy[:10], 1.0)
    noisy[0, 0] = np.inf
    with pytest.raises(ImageError, match="infinite"):
        ssim(clean, noisy, 1.0)

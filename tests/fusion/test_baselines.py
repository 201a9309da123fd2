import numpy as np
import pytest

from prosima.fusion.baselines import BASELINES, average, laplacian_pyramid, maximum, wavelet


def _img(seed, shape):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    img = 0.5 + 0.35 * np.sin(7 * xx + rng.uniform(0, 6)) * np.cos(5 * yy)
    return np.clip(img + rng.normal(0, 0.05, shape), 0, 1)


SHAPES = [(32, 32), (33, 47), (17, 8), (5, 9), (1, 6)]


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("shape", SHAPES)
def test_shape_is_kept_and_output_is_in_unit_range(name, shape):
    out = BASELINES[name](_img(0, shape), _img(1, shape))
    assert out.shape == shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("shape", SHAPES)
def test_fusing_an_image_with_itself_gives_the_image(name, shape):
    x = _img(2, shape)
    np.testing.assert_allclose(BASELINES[name](x, x), x, atol=1e-6)


def test_average_and_maximum_pixel_rules():
    a = np.array([[0.0, 0.2], [0.9, 0.5]])
    b = np.array([[1.0, 0.1], [0.3, 0.5]])
    np.testing.assert_allclose(average(a, b), [[0.5, 0.15], [0.6, 0.5]], atol=1e-7)
    np.testing.assert_allclose(maximum(a, b), [[1.0, 0.2], [0.9, 0.5]], atol=1e-7)
    np.testing.assert_allclose(maximum(a, b), maximum(b, a))


@pytest.mark.parametrize("fuse", [laplacian_pyramid, wavelet])
def test_multiscale_rules_keep_the_detail_of_each_source(fuse):
    """A blob in one source and a different blob in the other both survive at (nearly) full contrast,
    where averaging halves them."""
    a, b = np.full((40, 40), 0.2), np.full((40, 40), 0.2)
    a[8:16, 8:16] = 0.9
    b[24:32, 24:32] = 0.9
    out = fuse(a, b)
    assert out[12, 12] > 0.75 and out[28, 28] > 0.75
    assert average(a, b)[12, 12] == pytest.approx(0.55)
    assert abs(float(out[2, 38]) - 0.2) < 0.05  # the flat background stays put


def test_levels_are_parameters():
    a, b = _img(3, (64, 64)), _img(4, (64, 64))
    assert not np.array_equal(laplacian_pyramid(a, b, levels=1), laplacian_pyramid(a, b, levels=4))
    assert not np.array_equal(wavelet(a, b, levels=1), wavelet(a, b, name="haar", levels=2))
    np.testing.assert_allclose(laplacian_pyramid(a, b, levels=0), average(a, b), atol=1e-7)
    with pytest.raises(ValueError, match="levels"):
        wavelet(a, b, levels=-1)


def test_bad_inputs_are_refused():
    a = np.zeros((8, 8))
    with pytest.raises(ValueError, match="shape mismatch"):
        average(a, np.zeros((8, 9)))
    bad = a.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="b: contains 0 NaN and 1 infinite"):
        wavelet(a, bad)
    with pytest.raises(ValueError, match="2-D"):
        laplacian_pyramid(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))

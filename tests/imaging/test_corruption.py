import json

import numpy as np
import pytest

from prosima.imaging.corruption import CORRUPTIONS, corrupt, gaussian_noise, replay_corruption
from prosima.imaging.validation import ImageError


@pytest.fixture
def image():
    yy, xx = np.mgrid[0:64, 0:80]
    return (0.5 + 0.4 * np.sin(xx / 7.0) * np.cos(yy / 9.0)).astype(np.float32)


PARAMS = {
    "gaussian": {"sigma": 0.05},
    "rician": {"sigma": 0.05},
    "salt_and_pepper": {"amount": 0.1},
    "mask": {"n_rects": 2, "size": (0.1, 0.3)},
    "jpeg": {"quality": 20},
    "blur": {"sigma": 1.5},
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_deterministic_for_a_seed_and_recorded(name, image):
    a = corrupt(image, name, seed=7, **PARAMS[name])
    b = corrupt(image, name, seed=7, **PARAMS[name])
    assert np.array_equal(a.image, b.image)
    assert a.record == b.record
    assert a.record["corruption"] == name and a.record["seed"] == 7
    assert a.image.dtype == np.float32 and a.image.shape == image.shape
    assert not np.array_equal(a.image, image)


@pytest.mark.parametrize("name", ["gaussian", "rician", "salt_and_pepper", "mask"])
def test_other_seed_other_result(name, image):
    assert not np.array_equal(
        corrupt(image, name, seed=1, **PARAMS[name]).image, corrupt(image, name, seed=2, **PARAMS[name]).image
    )


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.10])
def test_recorded_sigma_is_the_one_applied(sigma):
    clean = np.full((256, 256), 0.5, np.float32)
    out = corrupt(clean, "gaussian", seed=3, sigma=sigma)
    assert out.record["sigma"] == sigma
    assert np.std(out.image - clean) == pytest.approx(sigma, rel=0.02)
    assert np.mean(out.image - clean) == pytest.approx(0.0, abs=3 * sigma / 256)


def test_a_range_is_sampled_and_the_sample_recorded(image):
    out = corrupt(image, "gaussian", seed=11, sigma=(0.01, 0.2))
    s = out.record["sigma"]
    assert 0.01 <= s <= 0.2 and s not in (0.01, 0.2)
    assert np.std(out.image - image) == pytest.approx(s, rel=0.05)
    again = corrupt(image, "gaussian", seed=11, sigma=s)  # replaying the record gives the same noise level
    assert again.record["sigma"] == s
    assert np.array_equal(again.image, out.image)  # and the same noise: the range draw is a stream apart


RANGES = {
    "gaussian": {"sigma": (0.01, 0.1)},
    "rician": {"sigma": (0.01, 0.1)},
    "salt_and_pepper": {"amount": (0.01, 0.2)},
    "jpeg": {"quality": (10, 60)},
    "blur": {"sigma": (0.5, 2.5)},
}


@pytest.mark.parametrize("name", sorted(RANGES))
def test_a_call_with_the_recorded_values_gives_the_same_pixels(name, image):
    sampled = corrupt(image, name, seed=3, **RANGES[name])
    fixed = {key: sampled.record[key] for key in RANGES[name]}
    again = corrupt(image, name, seed=3, **fixed)
    assert np.array_equal(again.image, sampled.image) and again.record == sampled.record


def test_the_issue_example_replays_exactly(image):
    sampled = gaussian_noise(image, sigma=(0.01, 0.1), seed=3)
    assert np.array_equal(
        corrupt(image, "gaussian", seed=3, sigma=sampled.record["sigma"]).image, sampled.image
    )
    assert np.array_equal(replay_corruption(image, sampled.record).image, sampled.image)


def test_fixed_parameter_noise_is_drawn_from_the_seed_alone(image):
    """The noise of a fixed-parameter call is ``default_rng(seed)``'s: what it was before ranges were
    sampled apart, so benchmarks and training data seeded this way draw the noise they drew."""
    want = image + np.random.default_rng(5).normal(0.0, 0.05, image.shape).astype(np.float32)
    assert np.array_equal(corrupt(image, "gaussian", seed=5, sigma=0.05).image, want)


def test_records_are_json_and_replay_after_a_round_trip(image):
    for name in sorted(CORRUPTIONS):
        sampled = corrupt(image, name, seed=9, **PARAMS[name])
        stored = json.loads(json.dumps(sampled.record))
        again = replay_corruption(image, stored)
        assert np.array_equal(again.image, sampled.image), name
        assert again.record == stored, name


def test_a_stored_record_of_the_earlier_format_replays(image):
    stored = {"corruption": "rician", "seed": 4, "sigma": 0.05}
    assert np.array_equal(replay_corruption(image, stored).image, corrupt(image, "rician", seed=4).image)
    stored = {"corruption": "mask", "seed": 0, "n_rects": 1, "rects": [[2, 3, 4, 5]], "fill": 0.0}
    out = replay_corruption(image, stored).image
    assert (out[2:6, 3:8] == 0).all() and np.count_nonzero(out != image) == 20


@pytest.mark.parametrize(
    ("record", "msg"),
    [
        ({"corruption": "nope", "seed": 0}, "unknown corruption 'nope'"),
        ({"seed": 0, "sigma": 0.1}, "lacks 'corruption'"),
        ({"corruption": "gaussian", "seed": 0, "clip": False}, "lacks 'sigma'"),
        ({"corruption": "gaussian", "seed": -1, "sigma": 0.1, "clip": False}, "seed must be"),
        ({"corruption": "gaussian", "seed": 0, "sigma": "0.1", "clip": False}, "sigma must be a finite"),
        ({"corruption": "blur", "seed": 0, "sigma": -1.0}, "blur sigma must be >= 0"),
        ({"corruption": "jpeg", "seed": 0, "quality": 20.5}, "quality must be a whole number"),
        ({"corruption": "mask", "seed": 0, "n_rects": 1, "rects": [[60, 0, 8, 8]], "fill": 0.0}, "outside"),
        ({"corruption": "mask", "seed": 0, "n_rects": 1, "rects": [[0, 0, 8]], "fill": 0.0}, "four whole"),
    ],
)
def test_bad_records_are_refused(image, record, msg):
    with pytest.raises(ImageError, match=msg):
        replay_corruption(image, record)


def test_rician_is_biased_upwards_in_the_dark():
    dark = np.zeros((128, 128), np.float32)
    out = corrupt(dark, "rician", seed=0, sigma=0.1)
    # the magnitude of zero-mean complex Gaussian noise is Rayleigh: mean sigma * sqrt(pi / 2)
    assert out.image.min() >= 0.0
    assert out.image.mean() == pytest.approx(0.1 * np.sqrt(np.pi / 2), rel=0.03)


def test_salt_and_pepper_and_mask_change_what_they_say(image):
    sp = corrupt(image, "salt_and_pepper", seed=0, amount=0.2)
    changed = np.isin(sp.image, [0.0, 1.0])
    assert changed.sum() == sp.record["n_changed"]
    m = corrupt(image, "mask", seed=0, n_rects=1, size=0.25)
    y, x, h, w = m.record["rects"][0]
    assert (m.image[y : y + h, x : x + w] == 0).all() and (h, w) == (16, 20)


def test_jpeg_quality_orders_the_error(image):
    err = [np.abs(corrupt(image, "jpeg", quality=q).image - image).mean() for q in (10, 50, 90)]
    assert err[0] > err[1] > err[2]


@pytest.mark.parametrize(
    ("name", "params", "msg"),
    [
        ("gaussian", {"sigma": -0.1}, "sigma must be"),
        ("gaussian", {"sigma": (0.2, 0.1)}, "low <= high"),
        ("jpeg", {"quality": 0}, "quality"),
        ("salt_and_pepper", {"amount": 1.5}, "amount"),
        ("nope", {}, "unknown corruption"),
    ],
)
def test_bad_parameters_are_refused(image, name, params, msg):
    with pytest.raises(ImageError, match=msg):
        corrupt(image, name, **params)


def test_bad_images_are_refused(image):
    bad = image.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ImageError, match="1 NaN"):
        corrupt(bad, "gaussian")
    with pytest.raises(ImageError, match="1-D"):
        corrupt(np.zeros(10), "gaussian")
    with pytest.raises(ImageError, match="expected a 2-D array"):
        corrupt(np.stack([image, image]), "jpeg")
    with pytest.raises(ImageError, match="seed must be a non-negative integer"):
        corrupt(image, "gaussian", seed=-3)

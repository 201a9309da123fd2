"""Property: every corruption and every tamper is replayed pixel for pixel from its record (after JSON),
for fixed and sampled parameters, on images of any small shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prosima.imaging.corruption import CORRUPTIONS, corrupt
from prosima.imaging.replay import replay
from prosima.imaging.tamper import TAMPERS, tamper
from prosima.imaging.validation import ImageError

SEEDS = st.integers(0, 2**32)


def _param(draw: st.DrawFn, low: float, high: float) -> float | tuple[float, float]:
    """A fixed value or a (low, high) range to sample from."""
    a, b = sorted((draw(st.floats(low, high)), draw(st.floats(low, high))))
    return draw(st.sampled_from([a, (a, b)]))


@st.composite
def unit_images(draw: st.DrawFn, two_d: bool) -> np.ndarray:
    """A float32 image in [0, 1]: 2-D, or (unless ``two_d``) a small stack of slices."""
    shape = (draw(st.integers(1, 3)),) if not two_d and draw(st.booleans()) else ()
    shape += (draw(st.integers(2, 40)), draw(st.integers(2, 40)))
    return np.random.default_rng(draw(SEEDS)).random(shape).astype(np.float32)


@st.composite
def corruption_calls(draw: st.DrawFn) -> tuple[str, dict]:
    name = draw(st.sampled_from(sorted(CORRUPTIONS)))
    params = {
        "gaussian": lambda: {"sigma": _param(draw, 0.0, 0.3), "clip": draw(st.booleans())},
        "rician": lambda: {"sigma": _param(draw, 0.0, 0.3)},
        "salt_and_pepper": lambda: {"amount": _param(draw, 0.0, 1.0), "salt_ratio": draw(st.floats(0, 1))},
        "mask": lambda: {"n_rects": draw(st.integers(0, 4)), "size": _param(draw, 0.01, 1.0)},
        "jpeg": lambda: {"quality": _param(draw, 1.0, 95.0)},
        "blur": lambda: {"sigma": _param(draw, 0.0, 4.0)},
    }[name]()
    return name, params


@settings(derandomize=True, deadline=None, max_examples=150)
@given(call=corruption_calls(), seed=SEEDS, data=st.data())
def test_every_corruption_replays_pixel_exact(call, seed, data):
    name, params = call
    image = data.draw(unit_images(two_d=name == "jpeg"))
    sampled = corrupt(image, name, seed=seed, **params)
    stored = json.loads(json.dumps(sampled.record))
    assert np.array_equal(replay(image, stored), sampled.image)


@st.composite
def tamper_images(draw: st.DrawFn) -> np.ndarray:
    """A 2-D image with a dark background and at least three levels: 8-bit valued, or floats."""
    h, w = draw(st.integers(2, 40)), draw(st.integers(2, 40))
    rng = np.random.default_rng(draw(SEEDS))
    if draw(st.booleans()):
        img = np.where(rng.random((h, w)) < 0.3, 0.0, rng.integers(1, 256, (h, w)))
        levels = (0.0, 128.0, 255.0)
    else:
        img = rng.uniform(0.1, 0.9, (h, w))
        levels = (0.1, 0.5, 0.9)
    img.flat[:3] = levels
    return img.astype(np.float32)


@st.composite
def tamper_calls(draw: st.DrawFn) -> tuple[str, dict]:
    name = draw(st.sampled_from(sorted(TAMPERS)))
    params = {
        "one_pixel": dict,
        "copy_move": lambda: {"size": draw(st.integers(1, 48))},
        "lesion_blob": lambda: {"radius": draw(st.floats(0.3, 12.0)), "contrast": draw(st.floats(0.01, 1.0))},
        "erase": lambda: {"size": draw(st.integers(1, 48))},
        "rescale_intensity": lambda: {"factor": draw(st.floats(0.2, 0.98) | st.floats(1.02, 3.0))},
    }[name]()
    return name, params


@settings(derandomize=True, deadline=None, max_examples=150)
@given(call=tamper_calls(), image=tamper_images(), seed=SEEDS)
def test_every_tamper_replays_pixel_exact(call, image, seed):
    name, params = call
    sampled = tamper(image, name, seed, **params)
    stored = json.loads(json.dumps(sampled.record))
    assert np.array_equal(replay(image, stored), sampled.array)


def test_every_kind_is_covered():
    assert sorted(CORRUPTIONS) == ["blur", "gaussian", "jpeg", "mask", "rician", "salt_and_pepper"]
    assert sorted(TAMPERS) == ["copy_move", "erase", "lesion_blob", "one_pixel", "rescale_intensity"]


def test_what_is_not_a_record_is_refused():
    with pytest.raises(ImageError, match="neither 'corruption' nor 'name'"):
        replay(np.zeros((4, 4)), {"sigma": 0.1})
    with pytest.raises(ImageError, match="is a mapping"):
        replay(np.zeros((4, 4)), [("corruption", "gaussian")])

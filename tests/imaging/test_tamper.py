import json

import numpy as np
import pytest

from prosima.imaging.tamper import TAMPERS, changed_bbox, replay_tamper, tamper
from prosima.imaging.validation import ImageError

SEEDS = range(40)


def brain(h=256, w=256, seed=0):
    """Zero background with a bright textured ellipse, 8-bit valued."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h / 2) / (0.4 * h)) ** 2 + ((xx - w / 2) / (0.33 * w)) ** 2 <= 1.0
    noise = np.random.default_rng(seed).normal(0, 8, (h, w))
    tissue = 120 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + noise
    return np.where(inside, np.clip(np.round(tissue), 1, 255), 0).astype(np.float32)


def binary(h=97, w=131):
    """The hardest case for a brightening tamper: content already at the maximum."""
    img = np.zeros((h, w), np.float32)
    img[20:70, 30:100] = 255.0
    return img


IMAGES = {
    "brain256": brain(),
    "brain97x131": brain(97, 131, seed=1),
    "binary97x131": binary(),
    "float": (0.3 + 0.2 * np.random.default_rng(2).random((40, 50))).astype(np.float32),
    "tiny": np.array([[0, 1], [1, 0]], np.float32),
}


@pytest.mark.parametrize("image_name", sorted(IMAGES))
@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_changes_pixels_keeps_shape_range_units_and_input(name, image_name):
    image = IMAGES[image_name]
    before = image.copy()
    lo, hi = image.min(), image.max()
    whole = bool(np.all(image == np.round(image)))
    for seed in SEEDS:
        t = tamper(image, name, seed)
        diff = t.array != image
        assert diff.any(), (name, seed)
        assert t.array.shape == image.shape and t.array.dtype == np.float32
        assert t.array.min() >= lo and t.array.max() <= hi
        if whole:
            assert np.array_equal(t.array, np.round(t.array))
        rows, cols = np.nonzero(diff)
        assert t.record["bbox"] == (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
        r0, r1, c0, c1 = t.record["region"]
        b0, b1, d0, d1 = t.record["bbox"]
        assert r0 <= b0 < b1 <= r1 and c0 <= d0 < d1 <= c1
        assert t.record["n_changed"] == diff.sum()
        assert t.record["name"] == name and t.record["seed"] == seed
    assert np.array_equal(image, before)


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_deterministic_for_a_seed(name):
    a, b = tamper(IMAGES["brain256"], name, 5), tamper(IMAGES["brain256"], name, 5)
    assert np.array_equal(a.array, b.array) and a.record == b.record


@pytest.mark.parametrize("name", ["one_pixel", "copy_move", "lesion_blob", "erase"])
def test_other_seed_other_place(name):
    boxes = {tamper(IMAGES["brain256"], name, s).record["bbox"] for s in range(5)}
    assert len(boxes) > 1


def test_one_pixel_is_one_visible_content_pixel():
    image = IMAGES["brain256"]
    span = image.max() - image.min()
    for seed in SEEDS:
        t = tamper(image, "one_pixel", seed)
        (r,), (c,) = np.nonzero(t.array != image)
        assert image[r, c] > 0
        assert abs(t.array[r, c] - image[r, c]) >= np.floor(0.25 * span)
        assert t.record["params"]["pixel"] == (r, c)


def test_copy_move_copies_content():
    image = IMAGES["brain256"]
    t = tamper(image, "copy_move", 3, size=16)
    (ar, ac), (br, bc) = t.record["params"]["source"], t.record["params"]["target"]
    patch = image[ar : ar + 16, ac : ac + 16]
    assert (patch > 0).any()
    assert np.array_equal(t.array[br : br + 16, bc : bc + 16], patch)


def test_lesion_blob_brightens_inside_content():
    image = IMAGES["brain256"]
    t = tamper(image, "lesion_blob", 4, radius=5.0)
    r, c = t.record["params"]["centre"]
    assert image[r, c] > 0
    assert (t.array >= image).all() and t.array[r, c] > image[r, c]


def test_erase_sets_background():
    image = IMAGES["brain256"]
    t = tamper(image, "erase", 2, size=20)
    r0, r1, c0, c1 = t.record["region"]
    assert (t.array[r0:r1, c0:c1] == 0).all() and (image[r0:r1, c0:c1] > 0).any()


def test_rescale_rounds_and_guarantees_a_change_on_a_tiny_range():
    image = IMAGES["brain256"]
    t = tamper(image, "rescale_intensity", 0, factor=0.9)
    assert np.array_equal(t.array, np.clip(np.round(image * 0.9), 0, 255))
    assert t.record["region"] == (0, 256, 0, 256)
    assert tamper(IMAGES["tiny"], "rescale_intensity", 0, factor=0.9).array.max() == 0


def test_helper_and_refusals():
    a = np.zeros((4, 5), np.float32)
    b = a.copy()
    assert changed_bbox(a, b) is None
    b[1, 2] = b[3, 1] = 1
    assert changed_bbox(a, b) == (1, 4, 1, 3)
    with pytest.raises(ValueError, match="unknown tamper 'nope'"):
        tamper(a, "nope")
    with pytest.raises(ImageError, match="constant"):
        tamper(a, "one_pixel")
    with pytest.raises(ImageError, match="2-D"):
        tamper(np.ones((2, 3, 4)), "erase")
    with pytest.raises(ImageError, match="factor"):
        tamper(IMAGES["brain256"], "rescale_intensity", factor=1.0)
    with pytest.raises(ImageError, match="unchanged"):
        tamper(IMAGES["binary97x131"], "rescale_intensity", factor=1.2)


@pytest.mark.parametrize("image_name", sorted(IMAGES))
@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_the_record_replays_exactly_after_json(name, image_name):
    image = IMAGES[image_name]
    for seed in range(5):
        t = tamper(image, name, seed)
        stored = json.loads(json.dumps(t.record))
        again = replay_tamper(image, stored)
        assert np.array_equal(again.array, t.array), (name, seed)
        assert json.loads(json.dumps(again.record)) == stored


def test_a_stored_record_replays_and_names_what_does_not_fit():
    image = IMAGES["brain256"]
    stored = {"name": "erase", "seed": 0, "params": {"size": 4, "corner": [120, 120], "fill": 0.0}}
    out = replay_tamper(image, stored).array
    assert (out[120:124, 120:124] == 0).all() and np.array_equal(out[:120], image[:120])
    with pytest.raises(ImageError, match="does not fit"):
        replay_tamper(image, {**stored, "params": {"size": 4, "corner": [254, 0], "fill": 0.0}})
    with pytest.raises(ImageError, match="lacks 'params'"):
        replay_tamper(image, {"name": "erase", "seed": 0})
    with pytest.raises(ImageError, match="unknown tamper 'nope'"):
        replay_tamper(image, {"name": "nope", "seed": 0, "params": {}})
    t = tamper(image, "one_pixel", 3)
    with pytest.raises(ImageError, match="spanning"):  # made from another image
        replay_tamper(image * 0.5, t.record)
    moved = {**t.record, "params": {**t.record["params"], "old": t.record["params"]["old"] + 1}}
    with pytest.raises(ImageError, match="the record says"):
        replay_tamper(image, moved)
    with pytest.raises(ImageError, match="seed must be"):
        tamper(image, "erase", -1)

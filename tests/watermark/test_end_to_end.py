"""X-Mark end to end on a toy set: with tau calibrated on a clean reference model, a model trained on
the marked release is claimed and the same recipe trained on the clean data is not (paired t-test,
p < 0.01 above tau)."""

from __future__ import annotations

import numpy as np
import pytest

from prosima.watermark.classifier import TrainConfig, accuracy, probability_fn, train_classifier
from prosima.watermark.data import split_by_file
from prosima.watermark.embed import choose_queries
from prosima.watermark.marking import XMark, mark_dataset
from prosima.watermark.train import GeneratorConfig, train_generator
from prosima.watermark.verify import calibrate_tau, verify_ownership

TARGET = 0
EPS = 16 / 255  # the toy is 28 x 28: a larger budget than the 8/255 default
Q = 0.3


def _cfg(seed: int, epochs: int = 10) -> TrainConfig:
    return TrainConfig(epochs=epochs, lr=5e-3, batch=32, seed=seed)


@pytest.fixture(scope="module")
def world(toy):
    data = toy(600, 28, seed=0)
    split = split_by_file(data.ids, data.labels, (0.7, 0.0, 0.3), seed=0)
    train = data.subset(split.train)
    surrogate = train_classifier(train.images, train.labels, "cnn", _cfg(0, 8), width=8)
    cfg = GeneratorConfig(eps=EPS, mask_fraction=Q, width=8, epochs=6, seed=0)
    generator, history = train_generator(train.images, train.labels, surrogate, TARGET, cfg)
    marker = XMark(generator, surrogate, Q)
    marked = mark_dataset(train.images, train.labels, train.ids, marker, TARGET, fraction=0.5, seed=0)
    queries = choose_queries(data, split.test, TARGET, 100, seed=0)
    return data, split, train, marker, marked, queries, history


def test_marks_are_bounded_and_masked(world):
    _, _, train, marker, marked, queries, history = world
    i = marked.marked
    assert np.abs(marked.images[i] - train.images[i]).max() <= EPS + 1e-6
    _, delta, mask = marker.perturbation(queries.images)
    assert np.all(delta[~mask] == 0) and np.allclose(mask.mean(axis=(1, 2)), Q, atol=1 / 784)
    assert set(history[-1]) >= {"efficacy", "specificity", "ssim", "l2", "laplace", "surrogate_wsr"}


def test_claims_the_marked_model_and_not_the_clean_one(world):
    data, split, train, marker, marked, queries, _ = world
    test = data.subset(split.test)
    marked_queries = marker(queries.images)
    reference = train_classifier(train.images, train.labels, "cnn", _cfg(100), width=8)
    tau = calibrate_tau([probability_fn(reference)], queries.images, marked_queries, TARGET)["tau"]
    verdicts = {}
    for name, images in (("marked", marked.images), ("clean", train.images)):
        model = train_classifier(images, train.labels, "cnn", _cfg(1), width=8)
        assert accuracy(model, test.images, test.labels) > 0.9  # the marks leave the task intact
        verdicts[name] = verify_ownership(
            probability_fn(model), queries.images, marked_queries, TARGET, tau=tau
        )
    assert verdicts["marked"]["claim"] and verdicts["marked"]["p_value"] < 0.01, verdicts
    assert not verdicts["clean"]["claim"], verdicts
    assert verdicts["marked"]["wsr"] > 2 * verdicts["clean"]["wsr"]

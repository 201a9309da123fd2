"""The paired tests claim only a real effect above the margin; malformed model outputs get clear
errors."""

from __future__ import annotations

import numpy as np
import pytest

from prosima.watermark.verify import ModelOutputError, verify_ownership

M = 40
CLEAN = np.zeros((M, 4, 4), dtype=np.float32)
MARKED = np.ones((M, 4, 4), dtype=np.float32)


def _model(p_clean: float, p_marked: float, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)

    def fn(images):
        base = p_marked if images.mean() > 0.5 else p_clean
        p1 = np.clip(base + noise * rng.standard_normal(len(images)), 0, 1)
        return np.stack([1 - p1, p1], axis=1)

    return fn


def test_claims_a_real_effect_and_not_a_small_one():
    strong = verify_ownership(_model(0.1, 0.8), CLEAN, MARKED, target=1, tau=0.05)
    assert (
        strong["claim"] and strong["p_value"] < 1e-10 and strong["wsr"] == 1.0 and strong["wsr_clean"] == 0.0
    )
    assert abs(strong["delta_p"] - 0.7) < 0.05 and strong["test"] == "ttest_rel"
    small = verify_ownership(_model(0.1, 0.13), CLEAN, MARKED, target=1, tau=0.05)
    assert not small["claim"] and small["p_value"] > 0.5
    none = verify_ownership(_model(0.3, 0.3, noise=0.0), CLEAN, MARKED, target=1, tau=0.0)
    assert not none["claim"] and none["p_value"] == 1.0
    exact = verify_ownership(_model(0.0, 1.0, noise=0.0), CLEAN, MARKED, target=1)
    assert exact["claim"] and exact["p_value"] == 0.0


def test_label_only_wilcoxon():
    def labels(flip: float):
        rng = np.random.default_rng(1)
        return lambda x: (rng.random(len(x)) < (flip if x.mean() > 0.5 else 0.05)).astype(int)

    yes = verify_ownership(labels(0.9), CLEAN, MARKED, target=1, label_only=True)
    assert yes["claim"] and yes["test"] == "wilcoxon" and yes["delta_p"] is None and yes["wsr"] > 0.7
    no = verify_ownership(labels(0.05), CLEAN, MARKED, target=1, label_only=True)
    assert not no["claim"]


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lambda x: np.full((len(x), 2), 0.5)[:-1], "shape"),
        (lambda x: np.full((len(x),), 0.5), "shape"),
        (lambda x: np.full((len(x), 1), 1.0), "target class is 1"),
        (lambda x: np.full((len(x), 2), np.nan), "NaN"),
        (lambda x: np.full((len(x), 2), 0.9), "not probabilities"),
        (lambda x: np.full((len(x), 2), [-0.5, 1.5]), "not probabilities"),
        (lambda x: "cat", "not numeric"),
        (lambda x: [object()] * len(x), "not numeric"),
        (lambda x: 1 / 0, "the model failed"),
    ],
)
def test_malformed_outputs_are_refused(output, message):
    with pytest.raises(ModelOutputError, match=message):
        verify_ownership(output, CLEAN, MARKED, target=1)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lambda x: np.zeros((len(x), 2)), "shape"),
        (lambda x: np.full(len(x), 0.5), "whole numbers"),
        (lambda x: np.full(len(x), -1), "negative"),
    ],
)
def test_malformed_labels_are_refused(output, message):
    with pytest.raises(ModelOutputError, match=message):
        verify_ownership(output, CLEAN, MARKED, target=1, label_only=True)


def test_query_shapes_must_pair():
    with pytest.raises(ValueError, match="same"):
        verify_ownership(_model(0, 1), CLEAN, MARKED[:-1], target=1)

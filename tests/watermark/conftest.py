"""Shared fixtures of the watermark tests: one torch thread, and a seeded toy X-ray-like set."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from prosima.watermark.data import XrayData


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_toy(n: int = 400, size: int = 28, seed: int = 0) -> XrayData:
    """Smooth random backgrounds; class 1 ("pneumonia") also has a bright Gaussian blob somewhere in
    the middle. 8-bit values / 255, half of each class, ids ``toy/<i>``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    yy, xx = np.mgrid[:size, :size]
    images = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        bg = gaussian_filter(rng.standard_normal((size, size)), 3.0)
        img = 0.4 + 0.1 * bg / (bg.std() + 1e-9) + 0.02 * rng.standard_normal((size, size))
        if labels[i]:
            cy, cx = rng.uniform(size * 0.25, size * 0.75, 2)
            img += 0.35 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.5**2))
        images[i] = np.rint(np.clip(img, 0, 1) * 255) / 255
    ids = [f"toy/{i:04d}" for i in range(n)]
    return XrayData(
        images, labels.astype(np.int64), ids, ["normal", "pneumonia"], {"name": "toy", "size": size}
    )


@pytest.fixture(scope="session")
def toy() -> Callable[..., XrayData]:
    """The factory ``make_toy(n, size, seed)``."""
    return make_toy

"""Shared fixtures of the provenance tests: real brain slices written as PNG, ledgers with them
anchored, the shipped generator, made-up records of an anchor and its restoration for the export
tests, and small helpers (corrupt a slice, ledger height, the shards a pixel mask really touches)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import write_png
from prosima.imaging.shards import plan_shards
from prosima.ledger.log.directory import Ledger
from prosima.provenance.anchor import Anchored, anchor_images, read_inputs
from prosima.provenance.context import DEFAULT_K, Provenance
from prosima.provenance.model_versions import ModelVersion
from prosima.provenance.records import AnchorRecord, RestorationRecord
from prosima.provenance.restore import Generator


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread per test process: with ``pytest -n 2`` on two cores, torch's default of
    one thread per core oversubscribes the CPU and shard restoration becomes ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def brain_slices() -> list[np.ndarray]:
    """Three 256x256 brain sections in [0, 1], far enough apart to tell apart."""
    source = embedded_default_slices()
    picks = [round((len(source) - 1) * f) for f in (0.35, 0.5, 0.65)]
    return [np.asarray(source[i].image, dtype=np.float64) for i in picks]


@pytest.fixture(scope="session")
def generator() -> Generator:
    return Generator.load("pretrained:prosima-full")


def write_slices(folder: Path, images: Sequence[np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"slice{i}.png"
        write_png(path, image, data_range=(0.0, 1.0))
        paths.append(path)
    return paths


def write_noisy(path: Path, clean_png: Path, sigma: float = 0.05, seed: int = 7) -> Path:
    """A copy of an 8-bit PNG with seeded Gaussian noise, written as an 8-bit PNG."""
    from prosima.imaging.io import read_image

    clean = read_image(clean_png).array / 255.0
    noisy = np.clip(gaussian_noise(clean, sigma, seed=seed).image, 0.0, 1.0)
    write_png(path, noisy, data_range=(0.0, 1.0))
    return path


def height(ledger_dir: Path) -> int:
    """The ledger's height, read from a freshly opened directory."""
    with Ledger.open(ledger_dir) as led:
        return led.store.height


def touched_shards(mask: np.ndarray, k: int = DEFAULT_K) -> list[int]:
    """Indices of the GFT shards whose core box holds a True pixel of ``mask`` (from the grid's
    geometry alone, not from any digest)."""
    grid = plan_shards(mask.shape, k, 0)
    out = []
    for shard in grid.shards:
        (r0, r1), (c0, c1) = shard.core
        if mask[r0:r1, c0:c1].any():
            out.append(shard.index)
    return out


@dataclass
class World:
    """A ledger with slices anchored, open through ``prov``."""

    root: Path
    ledger: Ledger
    prov: Provenance
    files: list[Path]
    anchored: list[Anchored]

    @property
    def ledger_dir(self) -> Path:
        return Path(self.ledger.path)


def make_world(
    root: Path, images: Sequence[np.ndarray], *, consensus: str = "direct", nodes: int = 4
) -> World:
    files = write_slices(root / "images", images)
    ledger = Ledger.init(root / "ledger", nodes=nodes)
    prov = Provenance.open(ledger, consensus=consensus)
    anchored = anchor_images(prov, read_inputs(files))
    return World(root, ledger, prov, files, anchored)


@pytest.fixture(scope="module")
def world(tmp_path_factory, brain_slices) -> World:
    """Three slices anchored on a 4-node ledger (direct commits); shared by a module's tests, which
    must not change it beyond appending records."""
    w = make_world(tmp_path_factory.mktemp("world"), brain_slices)
    yield w
    w.ledger.close()


@pytest.fixture
def fresh_world(tmp_path, brain_slices) -> Callable[..., World]:
    """A factory of private ledgers (closed at teardown) for tests that damage or depend on state."""
    made: list[World] = []

    def make(n: int = 2, *, consensus: str = "direct", nodes: int = 4) -> World:
        w = make_world(tmp_path / f"world{len(made)}", brain_slices[:n], consensus=consensus, nodes=nodes)
        made.append(w)
        return w

    yield make
    for w in made:
        w.ledger.close()


@pytest.fixture(scope="session")
def helpers():
    """The module-level helpers, for test files (importlib import mode cannot import conftest)."""

    class H:
        write_slices = staticmethod(write_slices)
        write_noisy = staticmethod(write_noisy)
        height = staticmethod(height)
        touched_shards = staticmethod(touched_shards)
        make_world = staticmethod(make_world)

    return H


def tag_digest(tag: str) -> str:
    """A made-up digest: the sha256 of ``tag``, as hex."""
    return hashlib.sha256(tag.encode()).hexdigest()


@dataclass(frozen=True)
class RecordChain:
    """An anchor, its restoration by a generator version and their transactions: made-up records
    (digests of tags), for the export tests that need no ledger."""

    anchor: AnchorRecord
    anchor_tx: dict[str, Any]
    restoration: RestorationRecord
    restoration_tx: dict[str, Any]
    model: ModelVersion

    @staticmethod
    def h(tag: str) -> str:
        """A made-up digest of ``tag``, as the records' are made."""
        return tag_digest(tag)

    @property
    def records(self) -> tuple[AnchorRecord, dict[str, Any], RestorationRecord, dict[str, Any]]:
        """The anchor and the restoration with their transactions, as the exports take them."""
        return self.anchor, self.anchor_tx, self.restoration, self.restoration_tx


@pytest.fixture(scope="session")
def chain() -> RecordChain:
    h = tag_digest
    anchor = AnchorRecord(
        pixels=h("original"),
        shape=(64, 48),
        k=2,
        shard_ids=["00", "01"],
        shard_pixels=[h("s0"), h("s1")],
        shard_fingerprints=[h("f0"), h("f1")],
        fingerprint=h("fingerprint"),
        encoder=h("encoder"),
        source={"format": "png", "range": "0.0,1.0"},
        link={"key": "ab" * 8, "file": h("file-link")},
    )
    anchor_tx = {
        "tx": h("anchor-tx"),
        "height": 3,
        "time_us": 1_700_000_000_123_456,
        "signer": h("node-a")[:32],
    }
    restoration = RestorationRecord(
        input_pixels=h("degraded"),
        output_pixels=h("restored"),
        output_shard_pixels=[h("r0"), h("r1")],
        original=anchor_tx["tx"],
        model=h("generator"),
        model_name="hybrid-unet",
        encoder=h("encoder"),
        params={"corruption": "gaussian", "sigma": "0.05"},
    )
    restoration_tx = {
        "tx": h("restore-tx"),
        "height": 9,
        "time_us": 1_700_000_100_000_000,
        "signer": h("node-b")[:32],
    }
    model = ModelVersion(
        digest=h("generator"), name="g-round-2", kind="generator", round=2, parent=h("g-round-1")
    )
    return RecordChain(anchor, anchor_tx, restoration, restoration_tx, model)

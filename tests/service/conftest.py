"""Shared fixtures of the service tests: a 4-node ledger with two real brain slices anchored and the
shipped generator anchored as a model version, an API token for it, and a running service on that
ledger (FastAPI's TestClient, which runs the application's start-up and shut-down)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from prosima.app.ledger_queries import init_ledger
from prosima.app.model_versions import anchor_model_version
from prosima.app.session import Session
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import write_png
from prosima.service.app import create_app
from prosima.service.settings import ServiceSettings
from prosima.service.tokens import TokenStore

GENERATOR = "pretrained:prosima-full"
READY_SECONDS = 120.0


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread per test process: two test processes share two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Served:
    """The ledger, its files and a client of the service holding it open."""

    root: Path
    ledger: Path
    originals: list[Path]  # anchored
    unknown: Path  # a brain slice never anchored
    tampered: Path  # an anchored slice with a 16 x 16 block changed
    tokens: Path
    token: str
    client: TestClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @staticmethod
    def upload(path: Path, field: str = "file") -> dict[str, tuple[str, bytes]]:
        """A multipart upload of ``path`` under its own name."""
        return {field: (path.name, path.read_bytes())}

    def job_answer(self, href: str, seconds: float = READY_SECONDS) -> dict:
        """Poll a job until it is over; its last state."""
        deadline = time.monotonic() + seconds
        while True:
            state = self.client.get(href).json()
            if state["state"] in ("succeeded", "failed"):
                return state
            assert time.monotonic() < deadline, state
            time.sleep(0.05)


def wait_ready(client: TestClient, seconds: float = READY_SECONDS) -> None:
    """Wait until ``/readyz`` says the ledger is open and the models are loaded."""
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.1)


def make_ledger(root: Path) -> tuple[Path, list[Path], Path, Path]:
    """A 4-node ledger with two slices anchored (and the generator), a third slice never anchored
    and a tampered copy of the first."""
    source = embedded_default_slices()
    slices = [np.asarray(source[round((len(source) - 1) * f)].image) for f in (0.4, 0.6, 0.5)]
    files = []
    for i, image in enumerate(slices):
        files.append(root / f"slice{i}.png")
        write_png(files[-1], image, data_range=(0.0, 1.0))
    tampered = slices[0].copy()
    tampered[120:136, 120:136] = 1.0 - tampered[120:136, 120:136]
    write_png(root / "tampered.png", tampered, data_range=(0.0, 1.0))
    ledger = root / "ledger"
    init_ledger(ledger, nodes=4)
    with Session.open(ledger, "inproc") as session:
        report = session.anchor(files[:2])
    assert len(report.anchored) == 2
    anchor_model_version(ledger, GENERATOR)
    return ledger, files[:2], files[2], root / "tampered.png"


@pytest.fixture(scope="session")
def service_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], Path, Path]:
    return make_ledger(tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="session")
def served(service_ledger: tuple[Path, list[Path], Path, Path]) -> Iterator[Served]:
    """The service on the shared ledger, with one valid token; tests here only add to the ledger."""
    ledger, originals, unknown, tampered = service_ledger
    root = ledger.parent
    tokens = root / "tokens.json"
    store, token = TokenStore.open_or_empty(tokens).with_new_token("tests")
    store.save()
    settings = ServiceSettings(ledger, tokens=tokens, work_dir=root / "work")
    (root / "work").mkdir()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_ready(client)
        yield Served(root, ledger, originals, unknown, tampered, tokens, token, client)

"""Fixtures of the PACS tests: a private Orthanc archive (skipped only where the Orthanc binary is
absent), DICOM images (real CT slices from ../shared/data when present, else MR slices generated
from the embedded brain sections), sending them in over DICOM with dcmtk's storescu, and a ledger
with the shipped generator anchored."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from prosima.imaging.dicom_series import changed_copy, write_mr_series
from prosima.pacs.orthanc_server import MODALITY_AET, OrthancServer, find_orthanc, running_orthanc

SHARED_DATA = Path(
    os.environ.get("PROSIMA_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data")
)
CT_SERIES = SHARED_DATA / "dicom" / "ct_head_ge"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread per test process (two test processes share two cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def orthanc_binary() -> str:
    found = find_orthanc()
    if found is None:
        pytest.skip(
            "the Orthanc binary is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run does)"
        )
    return found


@pytest.fixture(scope="session")
def storescu() -> str:
    found = shutil.which("storescu")
    if found is None:
        pytest.skip("dcmtk's storescu is not installed (apt-get install dcmtk; .ci/run does)")
    return found


@pytest.fixture(scope="module")
def archive(orthanc_binary, tmp_path_factory) -> Iterator[OrthancServer]:
    """A private Orthanc on loopback ports for one test module, stopped afterwards. A store of a SOP
    Instance UID it holds replaces the instance: how a changed copy gets into the archive."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), overwrite_instances=True) as server:
        yield server


def send_over_dicom(storescu: str, server: OrthancServer, path: Path) -> None:
    """C-STORE ``path`` into ``server`` as the modality a scanner would be."""
    done = subprocess.run(
        [storescu, "-aet", MODALITY_AET, "-aec", server.aet, "127.0.0.1", str(server.dicom_port), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def send(storescu, archive) -> Callable[[Path], None]:
    """Send a DICOM file into the module's archive over DICOM."""
    return lambda path: send_over_dicom(storescu, archive, path)


def _generated_slices(folder: Path, count: int) -> list[Path]:
    """MR slices of one series made from the embedded brain sections (12-bit, seeded UIDs)."""
    from prosima.imaging.datasets import embedded_default_slices

    source = embedded_default_slices()
    picks = [source[round((len(source) - 1) * f)].image for f in np.linspace(0.35, 0.65, count)]
    return write_mr_series(folder, picks, seed=1)


@pytest.fixture(scope="module")
def dicom_slices(tmp_path_factory) -> list[Path]:
    """Three DICOM slices of one series: real CT from ../shared/data/dicom when present, else
    generated MR."""
    folder = tmp_path_factory.mktemp("dicom")
    if CT_SERIES.is_dir():
        found = sorted(CT_SERIES.glob("*.dcm"))[10:13]
        if len(found) == 3:
            return [Path(shutil.copy(p, folder / p.name)) for p in found]
    return _generated_slices(folder, 3)


@pytest.fixture(scope="session")
def helpers():
    """Module-level helpers for the test files (importlib import mode cannot import conftest)."""

    class H:
        changed_copy = staticmethod(changed_copy)

    return H

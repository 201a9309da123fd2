"""A DICOM series as its files uploaded together: anchored, verified and restored as one volume,
each as a job; the restored series comes back as a zip of derived DICOM files that verify."""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from prosima.imaging.io import read_image


def ct_series(folder: Path, planes: list[np.ndarray]) -> list[Path]:
    """A DICOM series of pydicom's bundled CT_small, one file per plane (values in stored units)."""
    import pydicom
    from pydicom.data import get_testdata_file

    source_path = get_testdata_file("CT_small.dcm", download=False)
    if source_path is None:
        pytest.skip("this pydicom lacks its bundled CT_small.dcm")
    source = pydicom.dcmread(source_path)
    folder.mkdir()
    series = pydicom.uid.generate_uid()
    files = []
    for k, plane in enumerate(planes):
        ds = copy.deepcopy(source)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + 2.5 * k]
        ds.InstanceNumber = k + 1
        ds.PixelData = np.clip(plane, 0, 4000).astype(ds.pixel_array.dtype).tobytes()
        files.append(folder / f"IM{k:03d}.dcm")
        ds.save_as(files[-1])
    return files


def uploads(files: list[Path]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (f.name, f.read_bytes())) for f in files]


def test_a_series_anchored_verified_and_restored(served, tmp_path):
    units = [read_image(p).array / 255.0 for p in served.originals]
    planes = [np.round(u[::2, ::2] * 2000.0) for u in units]
    series = ct_series(tmp_path / "series", planes)
    anchored = served.client.post("/v1/anchor/series", files=uploads(series), headers=served.auth)
    assert anchored.status_code == 202
    done = served.job_answer(anchored.json()["href"])
    assert done["state"] == "succeeded" and done["progress"] == {"done": 2, "total": 2}
    assert done["result"]["committed"] == 2
    verified = served.job_answer(
        served.client.post("/v1/verify/series", files=uploads(series)).json()["href"]
    )
    assert verified["result"]["ok"] and len(verified["result"]["slices"]) == 2
    rng = np.random.default_rng(7)
    noisy = ct_series(tmp_path / "noisy", [p + np.round(rng.normal(0.0, 120.0, p.shape)) for p in planes])
    job = served.client.post(
        "/v1/restore/series?model=pretrained:prosima-full", files=uploads(noisy), headers=served.auth
    ).json()
    restored = served.job_answer(job["href"])
    assert restored["state"] == "succeeded", restored["result"]
    result = restored["result"]
    assert [s["match"]["tx"] for s in result["slices"]] == [r["tx"] for r in done["result"]["results"]]
    assert result["out"] == "restored-series.zip"
    archive = served.client.get(result["output"]["href"], headers=served.auth)
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".dcm"))
        files = [("files", (Path(n).name, z.read(n))) for n in names]
    assert len(files) == 2
    again = served.job_answer(served.client.post("/v1/verify/series", files=files).json()["href"])
    assert again["result"]["ok"], again["result"]
    assert {s["status"] for s in again["result"]["slices"]} == {"recorded-restoration"}


def test_an_anchor_of_several_files_is_a_job(served, tmp_path):
    from prosima.imaging.io import write_png

    files = []
    for k, path in enumerate(served.originals):
        files.append(tmp_path / f"mirrored{k}.png")
        write_png(files[-1], read_image(path).array[:, ::-1] / 255.0, data_range=(0.0, 1.0))
    res = served.client.post("/v1/anchor", files=uploads(files), headers=served.auth)
    assert res.status_code == 202
    done = served.job_answer(res.json()["href"])
    assert done["progress"] == {"done": 2, "total": 2} and done["result"]["committed"] == 2

"""Long work as a job: 202 with the job's id and where to follow it; progress counts files (or
slices) done; the finished job holds the answer (or the error) the request would have had."""

from __future__ import annotations

from prosima.imaging.io import read_image, write_nifti


def test_a_batch_is_a_job_with_progress(served):
    files = [
        ("files", (p.name, p.read_bytes()))
        for p in (served.originals[0], served.tampered, served.originals[1])
    ]
    res = served.client.post("/v1/verify/batch", files=files)
    assert res.status_code == 202
    job = res.json()
    assert res.headers["Location"] == job["href"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("queued", "running") and job["progress"]["total"] == 3
    done = served.job_answer(job["href"])
    assert done["state"] == "succeeded" and done["status"] == 200
    assert done["progress"] == {"done": 3, "total": 3}
    result = done["result"]
    assert result["ok"] is False and result["verified"] == 2  # one file is tampered: exit 1 for the batch
    assert [r["file"] for r in result["results"]] == ["slice0.png", "tampered.png", "slice1.png"]
    assert [r["ok"] for r in result["results"]] == [True, False, True]


def test_a_volume_is_a_job_verifying_every_slice(served, tmp_path):
    import numpy as np

    planes = [read_image(p).array for p in (served.originals[0], served.originals[1])]
    volume = tmp_path / "volume.nii.gz"
    write_nifti(volume, np.stack(planes, axis=2))
    res = served.client.post("/v1/verify", files=served.upload(volume))
    assert res.status_code == 202
    done = served.job_answer(res.json()["href"])
    assert done["state"] == "succeeded" and done["progress"] == {"done": 2, "total": 2}
    assert len(done["result"]["slices"]) == 2


def test_a_failed_job_holds_the_error(served):
    files = [("files", ("a.png", b"junk")), ("files", ("b.png", b"junk"))]
    done = served.job_answer(served.client.post("/v1/verify/batch", files=files).json()["href"])
    assert done["state"] == "failed" and done["status"] == 422
    assert done["result"]["error"].startswith("a.png: ")


def test_an_unknown_job(served):
    res = served.client.get("/v1/jobs/nope")
    assert res.status_code == 404 and "no job 'nope'" in res.json()["error"]

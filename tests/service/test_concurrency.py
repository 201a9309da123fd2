"""Concurrent requests are serialized on the ledger thread: writes and reads sent at once all
succeed, one-image anchors waiting together share a consensus round (group commit), a refused
upload among them is refused alone, and the ledger audits whole afterwards."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from prosima.imaging.io import read_image, write_png
from prosima.ledger.log.directory import Ledger


def test_concurrent_writes_and_reads(served, tmp_path):
    base = read_image(served.unknown).array / 255.0
    images = []
    for k in range(4):
        images.append(tmp_path / f"shifted{k}.png")
        write_png(images[-1], np.roll(base, 16 * (k + 1), axis=1), data_range=(0.0, 1.0))

    def anchor(path):
        return served.client.post(
            "/v1/anchor", files=served.upload(path, "files"), headers=served.auth
        ).json()

    def verify(path):
        return served.client.post("/v1/verify", files=served.upload(path)).json()

    with ThreadPoolExecutor(8) as pool:
        writes = [pool.submit(anchor, p) for p in images]
        reads = [pool.submit(verify, p) for p in served.originals * 2]
        answers = [w.result() for w in writes]
        verdicts = [r.result() for r in reads]
    assert all(a["ok"] and a["committed"] == 1 for a in answers), answers
    heights = [a["results"][0]["height"] for a in answers]
    for a, height in zip(answers, heights, strict=True):  # a round's images all say how many shared it
        assert a["commit"]["images"] == heights.count(height)
    assert all(v["ok"] for v in verdicts)
    with Ledger.open(served.ledger) as led:
        assert led.verify().ok


def test_a_refused_upload_among_concurrent_anchors_is_refused_alone(served, tmp_path):
    base = read_image(served.unknown).array / 255.0
    good = []
    for k in range(3):
        good.append(tmp_path / f"rolled{k}.png")
        write_png(good[-1], np.roll(base, 40 * (k + 1), axis=0), data_range=(0.0, 1.0))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")

    def anchor(path):
        return served.client.post("/v1/anchor", files=served.upload(path, "files"), headers=served.auth)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(anchor, [good[0], bad, good[1], good[2]]))
    refused = answers[1]
    assert refused.status_code == 422, refused.text
    assert "broken.png: not a readable PNG image" in refused.json()["error"]
    assert all(a.status_code == 200 and a.json()["committed"] == 1 for a in answers[::2] + answers[2:3])
    with Ledger.open(served.ledger) as led:
        assert led.verify().ok

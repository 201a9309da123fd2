"""Concurrent requests are serialized on the ledger thread: writes and reads sent at once all
succeed, each write in its own round, and the ledger audits whole afterwards."""

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
    assert len({a["results"][0]["height"] for a in answers}) == 4  # one round each, never interleaved
    assert all(v["ok"] for v in verdicts)
    with Ledger.open(served.ledger) as led:
        assert led.verify().ok

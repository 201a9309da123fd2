"""Anchoring reports as it goes and resumes: each commit is reported (and printed, and in the JSON
file) as soon as it is in the store; a re-run commits only what is missing, each image already
anchored reported with its transaction; the key index is confirmed against the transaction; the
same pixels twice in one run are committed once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_png
from prosima.ledger.consensus.committee import Committee
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.transaction import TxKind
from prosima.provenance.anchor import Anchored, anchor_run, find_anchored, read_inputs
from prosima.provenance.context import Provenance
from prosima.provenance.index import RecordIndex
from prosima.provenance.pixels import pixel_digest

runner = CliRunner()


@pytest.fixture(scope="module")
def small_slices() -> list[np.ndarray]:
    """Four 64x64 brain sections in [0, 1], distinct."""
    source = embedded_default_slices()
    picks = [round((len(source) - 1) * f) for f in (0.35, 0.45, 0.55, 0.65)]
    return [np.asarray(source[i].image, dtype=np.float64)[::4, ::4] for i in picks]


def folder_of(root: Path, images: list[np.ndarray]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        paths.append(root / f"img{i}.png")
        write_png(paths[-1], image, data_range=(0.0, 1.0))
    return paths


def cli(*args: object, code: int = 0):
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, res.output
    return res


def anchor_txs(ledger_dir: Path) -> list[bytes]:
    with Ledger.open(ledger_dir) as led:
        return [
            tx.payload
            for h in range(led.store.height + 1)
            for tx in led.store.block(h).txs
            if tx.kind == TxKind.IMAGE_ANCHORED
        ]


def test_a_second_run_commits_nothing_and_names_each_anchored_image(tmp_path, small_slices):
    files = folder_of(tmp_path / "images", small_slices[:3])
    ledger = tmp_path / "ledger"
    cli("ledger", "init", ledger, "--nodes", 4)
    first = cli("anchor", *files, "--ledger", ledger, "--json", tmp_path / "first.json")
    records = json.loads((tmp_path / "first.json").read_text())
    assert [r["status"] for r in records] == ["committed"] * 3
    assert "committed 3/3 images, 0 already anchored, 0 not committed" in first.stdout
    again = cli("anchor", *files, "--ledger", ledger, "--json", tmp_path / "again.json")
    for f, r in zip(files, records, strict=True):
        assert f"already anchored {f.name} (tx {r['tx']}, height {r['height']})" in again.stdout
    assert "anchored img" not in again.stdout.replace("already anchored img", "")
    assert "committed 0/3 images, 3 already anchored, 0 not committed" in again.stdout
    second = json.loads((tmp_path / "again.json").read_text())
    assert [r["status"] for r in second] == ["already-anchored"] * 3
    assert [r["tx"] for r in second] == [r["tx"] for r in records]
    assert len(anchor_txs(ledger)) == 3


def test_an_interrupted_run_has_printed_its_commits_and_resumes_without_duplicates(
    tmp_path, small_slices, monkeypatch
):
    files = folder_of(tmp_path / "images", small_slices)
    ledger = tmp_path / "ledger"
    cli("ledger", "init", ledger, "--nodes", 4)
    real, calls = Committee.submit, []

    def second_round_fails(self, entries, **kw):
        calls.append(len(entries))
        if len(calls) == 2:
            raise LedgerError("the node lost power")
        return real(self, entries, **kw)

    monkeypatch.setattr(Committee, "submit", second_round_fails)
    out = tmp_path / "a.json"
    res = cli("anchor", *files, "--ledger", ledger, "--batch", 2, "--json", out, code=2)
    assert "the node lost power" in res.stderr
    done = [line for line in res.stdout.splitlines() if line.startswith("anchored ")]
    assert [line.split(":")[0] for line in done] == ["anchored img0.png", "anchored img1.png"]
    kept = json.loads(out.read_text())  # the file was rewritten after each commit: valid, complete
    assert [r["pixels"] for r in kept] == [pixel_digest(read_image(f).array).hex() for f in files[:2]]
    assert all(f"record {r['tx']} root {r['root']} height 0" in res.stdout for r in kept)
    monkeypatch.setattr(Committee, "submit", real)
    res = cli("anchor", *files, "--ledger", ledger, "--batch", 2, "--json", out)
    assert res.stdout.count("already anchored img") == 2 and res.stdout.count("\nanchored img") == 2
    assert [r["status"] for r in json.loads(out.read_text())] == ["already-anchored"] * 2 + ["committed"] * 2
    payloads = anchor_txs(ledger)
    assert len(payloads) == len(set(payloads)) == 4


def test_on_event_sees_each_commit_once_it_is_in_the_store(tmp_path, small_slices):
    files = folder_of(tmp_path / "images", small_slices[:3])
    with Ledger.init(tmp_path / "ledger", nodes=4) as led:
        prov = Provenance.open(led, consensus="inproc")
        seen = []

        def on_event(e):
            assert isinstance(e, Anchored) and not e.existing
            tx, height, _ = led.store.find_tx(bytes.fromhex(e.tx))  # already committed
            seen.append((e.source["file"], height, led.store.height))
            assert tx.payload == e.record.payload()

        report = anchor_run(prov, read_inputs(files), batch=1, on_event=on_event)
        assert seen == [("img0.png", 0, 0), ("img1.png", 1, 1), ("img2.png", 2, 2)]
        assert report.committed == 3 and report.existing == 0 and not report.dropped


def test_the_key_index_alone_is_not_trusted(tmp_path, small_slices):
    files = folder_of(tmp_path / "images", small_slices[:1])
    with Ledger.init(tmp_path / "ledger", nodes=4) as led:
        prov = Provenance.open(led, consensus="direct")
        (item,) = read_inputs(files)
        digest = pixel_digest(item.array)
        # transactions indexed under the image's digest that do not record it: junk, and another
        # image's genuine anchor record
        other = anchor_run(prov, read_inputs(folder_of(tmp_path / "other", small_slices[1:2]))).anchored[0]
        led.append(
            [
                Entry(b"not a record", TxKind.IMAGE_ANCHORED, digest),
                Entry(other.record.payload(), TxKind.IMAGE_ANCHORED, digest),
                Entry(other.record.payload(), TxKind.IMAGE_RESTORED, digest),
            ]
        )
        assert len(led.store.txs_by_key(digest)) == 3
        assert find_anchored(RecordIndex(led), digest.hex()) is None
        report = anchor_run(prov, [item])
        assert report.committed == 1 and report.anchored[0].record.pixels == digest.hex()
        found = find_anchored(RecordIndex(led), digest.hex(), item.source)
        assert found is not None and found.tx == report.anchored[0].tx and found.existing


def test_the_same_pixels_twice_in_one_run_are_committed_once(tmp_path, small_slices):
    files = folder_of(tmp_path / "images", [small_slices[0], small_slices[1], small_slices[0]])
    with Ledger.init(tmp_path / "ledger", nodes=4) as led:
        prov = Provenance.open(led, consensus="direct")
        events = []
        report = anchor_run(prov, read_inputs(files), on_event=events.append)
        a, b, c = report.anchored
        assert (a.existing, b.existing, c.existing) == (False, False, True)
        assert c.tx == a.tx and c.source["file"] == "img2.png" and c.record == a.record
        assert sorted(e.source["file"] for e in events) == ["img0.png", "img1.png", "img2.png"]
        assert report.committed == 2 and report.existing == 1 and led.store.log.size == 2

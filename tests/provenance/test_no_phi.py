"""No patient data on the ledger: a DICOM series and a PNG whose headers and file names carry a fake
patient's identifiers go through anchor, restore (one DICOM slice; a PNG signed with C2PA), verify
(with PROV-JSON and in-toto exports) and ``records find``; none of the identifiers, nor any UID in
clear, is in any byte written to the ledger folder, the exports or the JSON outputs (also searched
in every hex string, decoded, and in every CBOR payload, decoded). The keyed link still tells, where
the site key is, which instance a record is of."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_png
from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.encoding import decode, encode
from prosima.provenance.site_key import SITE_KEY_FILE

runner = CliRunner()
STEM = "Quillfeather_Ottoline"  # the fake patient's name, as a file name would carry it
ROOT_UID = "1.2.826.0.1.3680043.8.498.77410"
STUDY, SERIES = f"{ROOT_UID}.1", f"{ROOT_UID}.2"
SOPS = [f"{ROOT_UID}.3.{k}" for k in range(3)]
PHI = {
    "PatientName": "Quillfeather^Ottoline",
    "PatientID": "PID-QX-7741",
    "PatientBirthDate": "19610214",
    "AccessionNumber": "ACC-QX-99812",
    "InstitutionName": "Quillfeather Infirmary",
}
FORBIDDEN = [*PHI.values(), "Quillfeather", "Ottoline", STUDY, SERIES, *SOPS, ROOT_UID]


def run(*args: object, code: int | None = 0):
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    if code is not None:
        assert res.exit_code == code, res.output
    return res


def ct_series(folder: Path, planes: list[np.ndarray], uids: list[str], noise: float = 0.0) -> list[Path]:
    """pydicom's CT_small as a series of ``planes`` carrying the fake patient's identifiers."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("this pydicom lacks its bundled CT_small.dcm")
    template = pydicom.dcmread(path)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    files = []
    for k, (plane, uid) in enumerate(zip(planes, uids, strict=True)):
        ds = copy.deepcopy(template)
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, SERIES
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + 2.5 * k]
        ds.InstanceNumber = k + 1
        values = plane + (np.round(rng.normal(0.0, noise, plane.shape)) if noise else 0.0)
        ds.PixelData = np.clip(values, 0, 4000).astype(ds.pixel_array.dtype).tobytes()
        files.append(folder / f"{STEM}_{k:03d}.dcm")
        ds.save_as(files[-1])
    return files


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A 4-node ledger with a 3-slice CT series and a PNG anchored, both named after the patient."""
    root = tmp_path_factory.mktemp("site")
    source = embedded_default_slices()
    picks = [np.asarray(source[round((len(source) - 1) * f)].image) for f in (0.4, 0.5, 0.6, 0.45)]
    planes = [np.round(p[::2, ::2] * 2000.0) for p in picks[:3]]
    series = ct_series(root / f"{STEM}_CT", planes, SOPS)
    png = root / f"{STEM}_slice.png"
    write_png(png, picks[3], data_range=(0.0, 1.0))
    assert all(s.encode() in series[0].read_bytes() for s in [*PHI.values(), STUDY, SERIES, SOPS[0]])
    ledger = root / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    outputs = root / "outputs"
    res = run("anchor", series[0].parent, png, "--ledger", ledger, "--json", outputs / "anchor.json")
    assert f"anchored {STEM}_CT slice 2" in res.stdout  # named here, on this terminal only
    return root, ledger, series, png, outputs, planes


def _texts(blob: bytes) -> Iterator[bytes]:
    """The bytes, every long hex string in them decoded, and every decoded one that is CBOR, as text."""
    yield blob
    for m in re.finditer(rb"[0-9a-fA-F]{16,}", blob):
        digits = m.group()[: len(m.group()) // 2 * 2]
        raw = bytes.fromhex(digits.decode())
        yield raw
        with contextlib.suppress(Exception):  # most hex strings are digests, not CBOR
            yield repr(decode(raw, canonical=False)).encode()


def _leaks(name: str, blob: bytes) -> list[str]:
    return [f"{name}: {s!r}" for text in _texts(blob) for s in FORBIDDEN if s.encode() in text]


def test_nothing_that_identifies_the_patient_is_written_anywhere(site, tmp_path):
    _, ledger, series, png, outputs, planes = site
    noisy = ct_series(tmp_path / f"{STEM}_noisy", [planes[1]], [SOPS[1]], noise=120.0)[0]
    run("models", "anchor", "pretrained:prosima-full", "--ledger", ledger, "--json", outputs / "m.json")
    out = tmp_path / "out"
    out.mkdir()
    run("restore", noisy, "--ledger", ledger, "--out", out / "restored.dcm", "--json", outputs / "r1.json")
    noisy_png = tmp_path / f"{STEM}_noisy.png"
    clean = read_image(png).array / 255.0
    write_png(noisy_png, np.clip(clean + np.random.default_rng(3).normal(0, 0.05, clean.shape), 0, 1))
    c2pa = pytest.importorskip("c2pa", reason="the c2pa extra signs the PNG output") is not None
    extra = ["--c2pa", tmp_path / "certs"] if c2pa else []
    run("restore", noisy_png, "--ledger", ledger, "--out", out / "restored.png", *extra,
        "--json", outputs / "r2.json")  # fmt: skip
    for name, image in (("v1", out / "restored.dcm"), ("v2", out / "restored.png"), ("v3", png)):
        res = run(
            "verify", image, "--ledger", ledger, "--json", outputs / f"{name}.json",
            "--prov", outputs / f"{name}.prov.json", "--intoto", outputs / f"{name}.intoto.json",
        )  # fmt: skip
        assert "instance: " in res.stdout
        if name == "v1":  # a derived DICOM keeps the study; its SOP and series are new
            assert "the record's original" in res.stdout and "in this file's study" in res.stdout
    res = run("verify", series[0].parent, "--ledger", ledger, "--json", outputs / "v4.json")
    assert "instances: 3 of 3 slices' records are of this volume's own slices" in res.stdout
    run("records", "find", "--ledger", ledger, "--file", series[0].parent, "--json", outputs / "f.json")
    assert len(json.loads((outputs / "f.json").read_text())) == 4  # 3 anchors, 1 restoration

    written = {p: p.read_bytes() for p in [*ledger.rglob("*"), *outputs.rglob("*")] if p.is_file()}
    if c2pa:
        written[out / "restored.png"] = (out / "restored.png").read_bytes()  # the signed manifest
        from prosima.provenance.exports import read_c2pa

        written[tmp_path / "manifest"] = json.dumps(read_c2pa(out / "restored.png")).encode()
    with Ledger.open(ledger) as led:
        txs = [tx for h in range(led.store.height + 1) for tx in led.store.block(h).txs]
    assert len(txs) == 4 + 2 + 1
    for tx in txs:
        written[Path(f"tx {tx.tx_id.hex()}")] = repr(decode(tx.payload)).encode() + tx.payload
    assert ledger / "ledger.db" in written and any(p.name.endswith(".prov.json") for p in written)
    probe = encode({"name": PHI["PatientName"]}).hex() + " " + PHI["PatientID"].encode().hex()
    found = {leak.split(": ", 1)[1] for leak in _leaks("probe", probe.encode())}
    assert {repr(PHI["PatientName"]), repr(PHI["PatientID"])} <= found  # the scan reads hex and CBOR
    leaks = [leak for p, blob in written.items() for leak in _leaks(p.name, blob)]
    assert not leaks
    key = (ledger / SITE_KEY_FILE).read_text().strip()
    assert not [p for p, blob in written.items() if p.name != SITE_KEY_FILE and key.encode() in blob]


def _anchors(stdout: str) -> list[str]:
    """The slices of the anchors ``records find`` listed (restorations may follow them)."""
    return [
        line.rsplit(" ", 1)[-1] for line in stdout.splitlines() if " height " in line and " anchor" in line
    ]


def test_records_find_by_sop_series_study_uid_and_file(site):
    _, ledger, series, png, _, _ = site
    res = run("records", "find", "--ledger", ledger, "--sop-uid", SOPS[2])
    assert "records linked to SOP Instance UID" in res.stdout and _anchors(res.stdout) == ["2"]
    for option, uid in (("--series-uid", SERIES), ("--study-uid", STUDY)):
        assert _anchors(run("records", "find", "--ledger", ledger, option, uid).stdout) == ["0", "1", "2"]
    res = run("records", "find", "--ledger", ledger, "--file", series[1])  # one file of the series
    assert _anchors(res.stdout) == ["1"]
    assert _anchors(run("records", "find", "--ledger", ledger, "--file", series[0].parent).stdout) == [
        "0",
        "1",
        "2",
    ]
    res = run("records", "find", "--ledger", ledger, "--file", png, "--json", ledger.parent / "f.json")
    rows = json.loads((ledger.parent / "f.json").read_text())  # a PNG: by its name's link
    assert [r["kind"] for r in rows if r["kind"] == "anchor"] == ["anchor"] and rows[0]["slice"] is None


def test_records_find_of_an_unknown_instance_exits_1_and_bad_use_exits_2(site, tmp_path):
    _, ledger, series, _, _, _ = site
    res = run("records", "find", "--ledger", ledger, "--sop-uid", "1.2.3.4.5", code=1)
    assert "no record on this ledger is linked to SOP Instance UID 1.2.3.4.5" in res.stdout
    res = run("records", "find", "--ledger", ledger, code=2)
    assert "exactly one of --sop-uid, --series-uid, --study-uid or --file" in res.stderr
    res = run("records", "find", "--ledger", ledger, "--sop-uid", SOPS[0], "--file", series[0], code=2)
    assert "exactly one of" in res.stderr
    bare = tmp_path / "copy"
    shutil.copytree(ledger, bare)
    (bare / SITE_KEY_FILE).unlink()
    res = run("records", "find", "--ledger", bare, "--sop-uid", SOPS[0], code=2)
    assert "no site key" in res.stderr and "cannot be resolved here" in res.stderr
    assert "Traceback" not in res.output


def test_verify_names_the_instance_only_where_the_site_key_is(site, tmp_path):
    _, ledger, series, png, _, _ = site
    res = run("verify", series[0].parent, "--ledger", ledger)
    assert "instances: 3 of 3 slices' records are of this volume's own slices" in res.stdout
    res = run("verify", png, "--ledger", ledger, "--json", tmp_path / "v.json")
    assert f"instance: the record is of a file named {png.name} (as this one)" in res.stdout
    instance = json.loads((tmp_path / "v.json").read_text())["instance"]
    assert instance["resolved"] and instance["same_instance"] and instance["matches"] == ["file"]
    renamed = tmp_path / "renamed.png"
    shutil.copy(png, renamed)  # the same pixels under another name: the record is not of this file
    res = run("verify", renamed, "--ledger", ledger)
    assert "VERIFIED EXACT" in res.stdout and "is of another instance than this file" in res.stdout
    bare = tmp_path / "copy"
    shutil.copytree(ledger, bare)
    (bare / SITE_KEY_FILE).unlink()
    res = run("verify", png, "--ledger", bare, "--json", tmp_path / "v2.json")
    assert "VERIFIED EXACT" in res.stdout and "instance: not resolved here: no site key" in res.stdout
    assert json.loads((tmp_path / "v2.json").read_text())["instance"]["resolved"] is False
    assert not (bare / SITE_KEY_FILE).exists()  # verify never makes a key

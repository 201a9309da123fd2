"""``prosima anchor / restore / verify / models anchor`` through the command line: exit status 0 for
exact pixels on the ledger, 1 for a negative verdict, 2 for an error (which writes nothing); the
verdict's JSON carries a checkable inclusion proof; heatmap, PROV-JSON and in-toto files; volumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.corruption import gaussian_noise
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_nifti, write_png
from prosima.imaging.shards import plan_shards
from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.registry import Registry
from prosima.provenance.dsse import verify_statement
from prosima.provenance.exports import INTOTO_STATEMENT, PIXELS_DIGEST, VERIFICATION_PREDICATE

runner = CliRunner()
GENERATOR = "pretrained:prosima-full"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two test processes on two cores: no oversubscription
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def slices() -> list[np.ndarray]:
    source = embedded_default_slices()
    return [np.asarray(source[round((len(source) - 1) * f)].image) for f in (0.4, 0.6)]


def run(*args: object, code: int | None = 0):
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    if code is not None:
        assert res.exit_code == code, res.output
    return res


def height(ledger: Path) -> int:
    with Ledger.open(ledger) as led:
        return led.store.height


def init_and_anchor(root: Path, slices: list[np.ndarray]) -> tuple[Path, list[Path], list[dict]]:
    ledger = root / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    files = []
    for i, image in enumerate(slices):
        files.append(root / f"slice{i}.png")
        write_png(files[-1], image, data_range=(0.0, 1.0))
    res = run("anchor", *files, "--ledger", ledger, "--json", root / "anchored.json")  # default: inproc
    records = json.loads((root / "anchored.json").read_text())
    for f, r in zip(files, records, strict=True):
        assert f"anchored {f.name}: record {r['tx']}" in res.stdout
    return ledger, files, records


def noisy_copy(path: Path, clean_png: Path, seed: int = 3) -> Path:
    clean = read_image(clean_png).array / 255.0
    write_png(path, np.clip(gaussian_noise(clean, 0.05, seed=seed).image, 0, 1), data_range=(0.0, 1.0))
    return path


@pytest.fixture(scope="module")
def anchored(tmp_path_factory, slices):
    """Two slices anchored through the CLI on a 4-node ledger; tests here only append to it."""
    return init_and_anchor(tmp_path_factory.mktemp("cli"), slices)


def test_anchor_commits_one_round_of_records(anchored):
    ledger, files, records = anchored
    assert len(records) == 2 and len({r["tx"] for r in records}) == 2
    assert {r["height"] for r in records} == {0}
    assert all(r["source"] == {"format": "png"} for r in records)
    assert len({r["link"]["file"] for r in records}) == 2  # each file's name, keyed, never in clear
    assert not [f.name for f in files if f.name in json.dumps(records)]
    with Ledger.open(ledger) as led:
        assert led.verify().ok


def test_verify_an_original_exit_0_with_a_checkable_proof(anchored, tmp_path):
    ledger, files, records = anchored
    res = run(
        "verify", files[1], "--ledger", ledger, "--json", tmp_path / "v.json",
        "--heatmap", tmp_path / "h.png", "--prov", tmp_path / "prov.json", "--intoto", tmp_path / "it.json",
    )  # fmt: skip
    assert "VERIFIED EXACT: an anchored original" in res.stdout and "NOT VERIFIED" not in res.stdout
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["ok"] and verdict["status"] == "anchored-original"
    assert verdict["record"]["tx"] == records[1]["tx"] and verdict["record"]["root"] == records[1]["root"]
    doc = verdict["proof"]["document"]
    assert doc["tx_id"] == records[1]["tx"]
    registry = Registry.load(ledger / "registry.cbor")
    check = check_document(doc, registry=registry)
    assert check.ok and check.pinned, check.problems
    assert check_document(json.dumps(doc), registry=registry).ok  # as a third party reads the file
    with Ledger.init(tmp_path / "other", nodes=4) as other:  # keys of another ledger: refused
        assert not check_document(doc, registry=other.registry).ok
    assert verdict["block"]["quorum_ok"] and verdict["block"]["signatures"] >= 3
    with Image.open(tmp_path / "h.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
    statement = verify_statement((tmp_path / "it.json").read_text(), registry)  # DSSE, by a node key
    assert statement["_type"] == INTOTO_STATEMENT
    assert statement["subject"][0]["digest"][PIXELS_DIGEST] == verdict["pixels"]
    assert "entity" in json.loads((tmp_path / "prov.json").read_text())


def test_verify_a_tampered_copy_exit_1_and_names_the_shards(anchored, tmp_path):
    ledger, files, records = anchored
    img = read_image(files[0]).array.copy()
    img[130:134, 70:74] = 255 - img[130:134, 70:74]
    path = tmp_path / "tampered.png"
    Image.fromarray(img.astype(np.uint8)).save(path)
    h = height(ledger)
    res = run(
        "verify", path, "--ledger", ledger, "--json", tmp_path / "v.json", "--heatmap", tmp_path / "h.png",
        "--prov", tmp_path / "prov.json", "--intoto", tmp_path / "it.json", code=1,
    )  # fmt: skip
    assert "NOT VERIFIED CHANGED" in res.stdout
    verdict = json.loads((tmp_path / "v.json").read_text())
    shard = plan_shards((256, 256), 16).locate((130, 70)).index
    assert not verdict["ok"] and verdict["status"] == "tampered" and verdict["differing_shards"] == [shard]
    assert verdict["nearest"]["tx"] == records[0]["tx"] and verdict["proof"] is None
    assert f"differing shards: [{shard}]" in res.stdout
    assert (tmp_path / "h.png").stat().st_size > 0 and (tmp_path / "it.json").is_file()
    assert height(ledger) == h


def test_restore_then_verify_needs_the_model_anchored(tmp_path, slices):
    ledger, files, records = init_and_anchor(tmp_path, slices)
    noisy = noisy_copy(tmp_path / "noisy.png", files[1])
    assert run("verify", noisy, "--ledger", ledger, code=1).exit_code == 1

    # an unanchored model version is refused before any work, with the command that anchors it
    res = run(
        "restore", noisy, "--ledger", ledger, "--out", tmp_path / "r.png", "--json", tmp_path / "r.json",
        code=2,
    )  # fmt: skip
    assert f"prosima models anchor {GENERATOR} --ledger {ledger}" in res.stderr
    assert height(ledger) == 0 and not (tmp_path / "r.png").exists() and not (tmp_path / "r.json").exists()

    res = run("models", "anchor", GENERATOR, "--ledger", ledger)
    assert res.stdout.startswith("anchored: prosima-full")
    assert run("models", "anchor", GENERATOR, "--ledger", ledger).stdout.startswith("already anchored")

    res = run(
        "restore", noisy, "--ledger", ledger, "--out", tmp_path / "r.png", "--json", tmp_path / "r.json"
    )
    assert f"original {records[1]['tx']} (nearest" in res.stdout
    done = json.loads((tmp_path / "r.json").read_text())
    assert done["match"]["tx"] == records[1]["tx"] and done["height"] == 2 == height(ledger)

    res = run(
        "verify", tmp_path / "r.png", "--ledger", ledger, "--json", tmp_path / "v.json",
        "--prov", tmp_path / "prov.json", "--intoto", tmp_path / "it.json", "--heatmap", tmp_path / "h.png",
    )  # fmt: skip
    assert "VERIFIED EXACT: the recorded output of a restoration" in res.stdout
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["ok"] and verdict["record"]["tx"] == done["tx"] and verdict["model"]["anchored"]
    assert check_document(verdict["proof"]["document"], registry=Registry.load(ledger / "registry.cbor")).ok
    statement = verify_statement((tmp_path / "it.json").read_text(), Registry.load(ledger / "registry.cbor"))
    assert statement["predicateType"] == VERIFICATION_PREDICATE
    assert statement["predicate"]["restoration"]["output_pixels"] == verdict["pixels"]
    assert statement["predicate"]["modelVersion"]["digest"] == verdict["model"]["digest"]
    assert statement["predicate"]["anchorTx"]["tx"] == records[1]["tx"]
    assert (tmp_path / "prov.json").is_file() and (tmp_path / "h.png").is_file()

    res = run(
        "restore", noisy, "--ledger", ledger, "--record", records[1]["tx"], "--out", tmp_path / "r2.npy"
    )
    assert f"original {records[1]['tx']} (given record)" in res.stdout and "warning" not in res.stderr
    run("verify", tmp_path / "r2.npy", "--ledger", ledger)


def _bad_cases(root: Path, ledger: Path, files: list[Path], records: list[dict], slices) -> list:
    (root / "notes.txt").write_text("not an image")
    data = files[0].read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    nan = read_image(files[0]).array.copy()
    nan[5, 5] = np.nan
    np.save(root / "nan.npy", nan)
    write_png(root / "small.png", slices[0][::2, ::2], data_range=(0.0, 1.0))
    (root / "exists.png").write_bytes(b"keep")
    notledger = root / "notledger"
    notledger.mkdir()
    (notledger / "readme").write_text("x")
    out = root / "out.png"
    return [
        (["anchor", root / "notes.txt", "--ledger", ledger], "unsupported file type '.txt'"),
        (["anchor", files[1], root / "cut.png", "--ledger", ledger], "not a readable PNG"),
        (["anchor", root / "nan.npy", "--ledger", ledger], "NaN"),
        (["anchor", files[0], "--ledger", notledger], "not a ledger directory"),
        (["restore", root / "notes.txt", "--ledger", ledger, "--out", out], "unsupported file type"),
        (["restore", root / "cut.png", "--ledger", ledger, "--out", out], "not a readable PNG"),
        (["restore", root / "nan.npy", "--ledger", ledger, "--out", out], "NaN"),
        (
            ["restore", root / "small.png", "--ledger", ledger, "--record", records[0]["tx"], "--out", out],
            "shape (256, 256), the input is (128, 128)",
        ),
        (["restore", root / "small.png", "--ledger", ledger, "--out", out], "no anchored image of shape"),
        (["restore", files[0], "--ledger", ledger, "--record", "00" * 32, "--out", out], "no anchored image"),
        (["restore", files[0], "--ledger", notledger, "--out", out], "not a ledger directory"),
        (["restore", files[0], "--ledger", ledger, "--out", root / "exists.png"], "exists; refusing"),
        (["restore", files[0], "--ledger", ledger, "--out", root / "out.bmp"], "must end in one of"),
        (["verify", root / "notes.txt", "--ledger", ledger], "unsupported file type"),
        (["verify", root / "nan.npy", "--ledger", ledger], "NaN"),
        (["verify", files[0], "--ledger", notledger], "not a ledger directory"),
        (["models", "anchor", "pretrained:no-such-model", "--ledger", ledger], "no-such-model"),
    ]


def test_bad_input_exit_2_with_a_message_and_nothing_written(anchored, tmp_path, slices):
    ledger, files, records = anchored
    cases = _bad_cases(tmp_path, ledger, files, records, slices)
    h = height(ledger)
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    for args, message in cases:
        res = run(*args, code=2)
        assert res.stdout == "" and res.stderr.startswith("error: "), args
        assert message in res.stderr, (args, res.stderr)
        assert height(ledger) == h, args
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing  # no output, nothing in notledger
    assert (tmp_path / "exists.png").read_bytes() == b"keep"


@pytest.mark.parametrize("forgery", ["other-valid-fingerprint", "flipped-byte"])
def test_restore_refuses_a_forged_fingerprint(tmp_path, slices, forgery):
    ledger, files, records = init_and_anchor(tmp_path, slices)
    stored = {_fingerprint_of(ledger, r["tx"]): r["tx"] for r in records}
    victim = ledger / "fingerprints" / next(iter(stored))[:2] / f"{next(iter(stored))}.cbor"
    other = next(p for p in (ledger / "fingerprints").rglob("*.cbor") if p != victim)
    if forgery == "other-valid-fingerprint":
        victim.write_bytes(other.read_bytes())
    else:
        data = bytearray(victim.read_bytes())
        data[40] ^= 0xFF
        victim.write_bytes(bytes(data))
    noisy = noisy_copy(tmp_path / "noisy.png", files[0])
    out = tmp_path / "r.png"
    run("models", "anchor", GENERATOR, "--ledger", ledger)
    h = height(ledger)
    for extra in ([], ["--record", stored[victim.stem]]):  # nearest search, or naming its record
        res = run("restore", noisy, "--ledger", ledger, *extra, "--out", out, code=2)
        assert f"fingerprint {victim.stem}" in res.stderr and "forged or damaged, refused" in res.stderr
        assert not out.exists() and height(ledger) == h
    assert not list(tmp_path.glob(".prosima-tmp-*"))
    # only the forged fingerprint is refused: the other record still restores
    res = run("restore", noisy, "--ledger", ledger, "--record", stored[other.stem], "--out", out)
    assert out.is_file() and height(ledger) == h + 1


def _fingerprint_of(ledger: Path, tx: str) -> str:
    from prosima.provenance.index import RecordIndex

    with Ledger.open(ledger) as led:
        return RecordIndex(led).anchor(tx).record.fingerprint


def test_a_volume_is_anchored_slice_by_slice(tmp_path, slices):
    ledger = tmp_path / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    volume = np.stack([s[::4, ::4] * 1000.0 for s in (slices[0], slices[1], slices[0][::-1])], axis=-1)
    assert volume.shape == (64, 64, 3)
    write_nifti(tmp_path / "vol.nii.gz", volume.astype(np.float32))
    res = run("anchor", tmp_path / "vol.nii.gz", "--ledger", ledger, "--json", tmp_path / "a.json")
    records = json.loads((tmp_path / "a.json").read_text())
    assert (
        len(records) == 3 and len({r["tx"] for r in records}) == 3 and {r["height"] for r in records} == {0}
    )
    assert [r["source"]["slice"] for r in records] == ["0", "1", "2"]
    assert len({r["link"]["file"] for r in records}) == 1 and "vol.nii.gz" not in json.dumps(records)
    assert res.stdout.count("anchored vol.nii.gz slice") == 3 and height(ledger) == 0
    # each slice's exact values verify as that anchored original, whatever file holds them
    stored = read_image(tmp_path / "vol.nii.gz").array
    for i in range(3):
        np.save(tmp_path / f"s{i}.npy", stored[..., i])
        run("verify", tmp_path / f"s{i}.npy", "--ledger", ledger, "--json", tmp_path / f"v{i}.json")
        assert json.loads((tmp_path / f"v{i}.json").read_text())["record"]["tx"] == records[i]["tx"]
    res = run("verify", tmp_path / "vol.nii.gz", "--ledger", ledger, "--json", tmp_path / "vol.json")
    assert "VERIFIED 3 of 3 slices: 3 anchored-original" in res.stdout
    verdicts = json.loads((tmp_path / "vol.json").read_text())["slices"]
    assert [v["record"]["tx"] for v in verdicts] == [r["tx"] for r in records]
    res = run("verify", tmp_path / "vol.nii.gz", "--ledger", ledger, "--heatmap", tmp_path / "h.png", code=2)
    assert "apply to 2-D images" in res.stderr and not (tmp_path / "h.png").exists()


def _volume_generator(path: Path) -> Path:
    """A 2.5-D generator (one neighbour each side) made from the shipped 2-D prosima-full."""
    from prosima.models.checkpoint import save_checkpoint
    from prosima.models.pretrained import load_model_ref
    from prosima.models.unet import build_generator, inflate_state

    flat, _ = load_model_ref(GENERATOR, "generator")
    model = build_generator(flat.spec.to_dict() | {"context": 1})
    model.load_state_dict(inflate_state(flat.state_dict(), model.spec))
    payload = {"kind": "generator", "name": "volume-test", "spec": model.spec.to_dict()}
    return save_checkpoint(path, payload | {"model_state": model.state_dict()})


def test_a_volume_is_restored_and_verified_slice_by_slice(tmp_path, slices):
    ledger = tmp_path / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    # four distinct sections (a mirrored slice is nearly the same to the semantic encoder, so restore's
    # matching rule would rightly refuse to tell it from its original)
    planes = [slices[0], slices[1], np.roll(slices[0], 64, axis=0), np.roll(slices[1], 64, axis=1)]
    volume = np.stack([p * 1000.0 for p in planes], axis=-1).astype(np.float32)
    write_nifti(tmp_path / "vol.nii.gz", volume)
    run("anchor", tmp_path / "vol.nii.gz", "--ledger", ledger, "--json", tmp_path / "a.json")
    records = json.loads((tmp_path / "a.json").read_text())
    noisy = volume + np.random.default_rng(5).normal(0.0, 80.0, volume.shape).astype(np.float32)
    write_nifti(tmp_path / "noisy.nii.gz", noisy)
    assert run("verify", tmp_path / "noisy.nii.gz", "--ledger", ledger, code=1).stdout.startswith(
        "NOT VERIFIED 0 of 4 slices"
    )
    weights = _volume_generator(tmp_path / "volume.pt")
    out = tmp_path / "restored.nii.gz"
    run("models", "anchor", weights, "--ledger", ledger)  # restore refuses an unanchored version
    res = run(
        "restore", tmp_path / "noisy.nii.gz", "--ledger", ledger, "--model", weights, "--out", out,
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert "4 slices, one record each, block 2" in res.stdout and height(ledger) == 2
    done = json.loads((tmp_path / "r.json").read_text())
    assert [s["match"]["tx"] for s in done["slices"]] == [r["tx"] for r in records]
    params = [s["record"]["params"] for s in done["slices"]]
    assert {p["context"] for p in params} == {"1"} and {p["range_from"] for p in params} == {"original"}
    restored = read_image(out).array
    assert restored.shape == volume.shape
    assert np.abs(restored - volume).mean() < np.abs(noisy - volume).mean()
    res = run("verify", out, "--ledger", ledger, "--json", tmp_path / "v.json")
    assert "VERIFIED 4 of 4 slices" in res.stdout
    verdicts = json.loads((tmp_path / "v.json").read_text())["slices"]
    assert [v["record"]["tx"] for v in verdicts] == [s["tx"] for s in done["slices"]]
    # one changed voxel: that slice alone fails, and the command exits 1
    changed = restored.copy()
    changed[100, 100, 2] += 50.0
    write_nifti(tmp_path / "changed.nii.gz", changed)
    res = run("verify", tmp_path / "changed.nii.gz", "--ledger", ledger, code=1)
    assert "NOT VERIFIED 3 of 4 slices" in res.stdout and "slice 2: tampered" in res.stdout
    # refused: existing output, a 2-D output name, --record; nothing is committed
    for extra, message in (
        (["--out", out], "exists; refusing"),
        (["--out", tmp_path / "r.png"], "restored into a .nii or .nii.gz file"),
        (["--out", tmp_path / "r2.nii.gz", "--record", records[0]["tx"]], "apply to 2-D images"),
    ):
        res = run(
            "restore", tmp_path / "noisy.nii.gz", "--ledger", ledger, "--model", weights, *extra, code=2
        )
        assert message in res.stderr and height(ledger) == 2
    assert not (tmp_path / "r.png").exists() and not (tmp_path / "r2.nii.gz").exists()


def _ct_series(folder: Path, planes: list[np.ndarray]) -> None:
    """A DICOM series of pydicom's bundled CT_small, one file per plane (values in stored units)."""
    import copy

    import pydicom
    from pydicom.data import get_testdata_file

    source_path = get_testdata_file("CT_small.dcm", download=False)
    if source_path is None:
        pytest.skip("this pydicom lacks its bundled CT_small.dcm")
    source = pydicom.dcmread(source_path)
    folder.mkdir()
    series = pydicom.uid.generate_uid()
    for k, plane in enumerate(planes):
        ds = copy.deepcopy(source)
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + 2.5 * k]
        ds.InstanceNumber = k + 1
        ds.PixelData = np.clip(plane, 0, 4000).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(folder / f"IM{k:03d}.dcm")


def test_a_dicom_series_is_restored_into_a_derived_series(tmp_path, slices):
    ledger = tmp_path / "ledger"
    run("ledger", "init", ledger, "--nodes", 4)
    planes = [np.round(p[::2, ::2] * 2000.0) for p in (slices[0], slices[1], np.roll(slices[0], 64, axis=0))]
    _ct_series(tmp_path / "series", planes)
    run("anchor", tmp_path / "series", "--ledger", ledger, "--json", tmp_path / "a.json")
    records = json.loads((tmp_path / "a.json").read_text())
    rng = np.random.default_rng(7)
    _ct_series(tmp_path / "noisy", [p + np.round(rng.normal(0.0, 120.0, p.shape)) for p in planes])
    out = tmp_path / "restored"
    run("models", "anchor", GENERATOR, "--ledger", ledger)
    res = run(
        "restore", tmp_path / "noisy", "--ledger", ledger, "--model", GENERATOR, "--out", out,
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert "3 slices, one record each" in res.stdout
    done = json.loads((tmp_path / "r.json").read_text())
    assert [s["match"]["tx"] for s in done["slices"]] == [r["tx"] for r in records]
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 3
    import pydicom

    heads = [pydicom.dcmread(f) for f in files]
    assert len({h.SeriesInstanceUID for h in heads}) == 1
    assert all("DERIVED" in h.ImageType for h in heads)
    assert "VERIFIED 3 of 3 slices" in run("verify", out, "--ledger", ledger).stdout
    res = run(
        "restore", tmp_path / "noisy", "--ledger", ledger, "--model", GENERATOR, "--out", tmp_path / "x.dcm",
        code=2,
    )  # fmt: skip
    assert "new folder of derived slices" in res.stderr

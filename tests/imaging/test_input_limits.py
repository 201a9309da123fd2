"""The one image size limit: every reader refuses, from the header and before reading any data, a file
that claims more values than the limit (``PROSIMA_MAX_IMAGE_PIXELS``, ``prosima --max-pixels``), and
names the file, the claimed size, the limit and how to raise it. The bomb files are a header and
almost nothing else: tiny on disk, tens of GiB if believed."""

from __future__ import annotations

import copy
import json
import struct
import zipfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from numpy.lib import format as npy
from PIL import Image
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from prosima.cli import app
from prosima.fusion.data import FusionDataError, read_gray
from prosima.imaging.describe import describe_path
from prosima.imaging.io import read_dicom_series, read_image, write_npy, write_png
from prosima.imaging.limits import (
    DEFAULT_MAX_PIXELS,
    ENV_VAR,
    ImageTooLargeError,
    max_pixels,
    pixel_limit,
)
from prosima.imaging.validation import ImageError, ImageReadError

NPY_SHAPE = (4096, 4096, 1200)  # 75 GiB of float32
NIFTI_SHAPE = (3000, 3000, 3000)
PNG_SIDE = 60000


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def npy_bomb(path: Path, shape: tuple[int, ...] = NPY_SHAPE) -> Path:
    """An .npy header claiming ``shape`` float32, and no data."""
    with path.open("wb") as fh:
        npy.write_array_header_2_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return path


def nifti_bomb(path: Path, shape: tuple[int, ...] = NIFTI_SHAPE) -> Path:
    """A NIfTI-1 header claiming ``shape`` float32, the extension flag, and no voxels."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    path.write_bytes(header.binaryblock + b"\0" * 4)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, side: int = PNG_SIDE) -> Path:
    """A PNG whose IHDR claims ``side`` x ``side`` 8-bit grayscale, with one row of data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def jpeg_bomb(path: Path, side: int = PNG_SIDE) -> Path:
    """A real 8x8 JPEG whose SOF0 marker is patched to claim ``side`` x ``side``."""
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))
    return path


def ct_small() -> pydicom.Dataset:
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom test file CT_small.dcm not bundled")
    return pydicom.dcmread(path)


def dicom_bomb(path: Path) -> Path:
    """CT_small (128 x 128) claiming 100,000 frames: 1.6 Gi values, its one frame of pixel data."""
    ds = ct_small()
    ds.NumberOfFrames = 100_000
    ds.save_as(path)
    return path


BOMBS = {
    "npy": (lambda d: npy_bomb(d / "bomb.npy"), "4096 x 4096 x 1200"),
    "nifti": (lambda d: nifti_bomb(d / "bomb.nii"), "3000 x 3000 x 3000"),
    "nifti-gz": (lambda d: _gzip(nifti_bomb(d / "inner.nii"), d / "bomb.nii.gz"), "3000 x 3000 x 3000"),
    "png": (lambda d: png_bomb(d / "bomb.png"), "60000 x 60000"),
    "jpeg": (lambda d: jpeg_bomb(d / "bomb.jpg"), "60000 x 60000"),
    "dicom": (lambda d: dicom_bomb(d / "bomb.dcm"), "100000 x 128 x 128"),
}


def _gzip(src: Path, dst: Path) -> Path:
    import gzip

    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


def assert_too_large(exc: BaseException, path: Path, claimed: str, limit: int = DEFAULT_MAX_PIXELS) -> None:
    message = str(exc)
    assert isinstance(exc, ImageTooLargeError) and isinstance(exc, ImageReadError), repr(exc)
    assert str(path) in message and claimed in message, message
    assert f"{limit:,} values" in message and ENV_VAR in message and "--max-pixels" in message, message


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_every_reader_refuses_a_header_bomb_before_reading(tmp_path, kind):
    make, claimed = BOMBS[kind]
    path = make(tmp_path)
    assert path.stat().st_size < 2**16  # the claim is (nearly) all there is
    with pytest.raises(ImageTooLargeError) as info:
        read_image(path)
    assert_too_large(info.value, path, claimed)


def test_a_dicom_series_is_refused_by_its_total(tmp_path, monkeypatch):
    folder = tmp_path / "series"
    folder.mkdir()
    source = ct_small()
    uid = pydicom.uid.generate_uid()
    for k in range(3):
        ds = copy.deepcopy(source)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
        ds.save_as(folder / f"IM{k}.dcm")
    assert read_dicom_series(folder).array.shape == (3, 128, 128)
    monkeypatch.setenv(ENV_VAR, str(3 * 128 * 128 - 1))  # every slice fits, the series does not
    read_image(folder / "IM0.dcm")
    with pytest.raises(ImageTooLargeError) as info:
        read_dicom_series(folder)
    assert_too_large(info.value, folder, "3 x 128 x 128 x 1", 3 * 128 * 128 - 1)


def test_an_npz_member_bomb_is_refused_by_data_info(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.write(npy_bomb(tmp_path / "x.npy"), "x.npy")
    with pytest.raises(ImageTooLargeError) as info:
        describe_path(path)
    assert_too_large(info.value, path, "4096 x 4096 x 1200")
    assert "x.npy" in str(info.value)


def test_fusion_reader_refuses_with_its_own_error_type(tmp_path):
    path = png_bomb(tmp_path / "mri.png")
    with pytest.raises(FusionDataError) as info:
        read_gray(path)
    assert "60000 x 60000" in str(info.value) and ENV_VAR in str(info.value)


def test_the_limit_is_raised_by_the_environment_and_by_pixel_limit(tmp_path, monkeypatch):
    image = tmp_path / "a.npy"
    write_npy(image, np.ones((20, 20), np.float32))
    assert max_pixels() == DEFAULT_MAX_PIXELS == 512 * 2**20
    monkeypatch.setenv(ENV_VAR, "399")
    assert max_pixels() == 399
    with pytest.raises(ImageTooLargeError) as info:
        read_image(image)
    assert_too_large(info.value, image, "20 x 20", 399)
    monkeypatch.setenv(ENV_VAR, "400")
    assert read_image(image).array.shape == (20, 20)
    with pixel_limit(10):  # the option wins over the environment, for the block only
        assert max_pixels() == 10
        with pytest.raises(ImageTooLargeError):
            read_image(image)
        with pixel_limit(None):
            assert max_pixels() == 10
    assert max_pixels() == 400


def test_a_raised_limit_lets_the_header_through_to_the_next_check(tmp_path, monkeypatch):
    path = npy_bomb(tmp_path / "bomb.npy")
    monkeypatch.setenv(ENV_VAR, str(10**12))
    with pytest.raises(ImageReadError, match="truncated: the header claims 80,530,636,800 bytes") as info:
        read_image(path)
    assert not isinstance(info.value, ImageTooLargeError)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_a_bad_environment_value_is_named(tmp_path, monkeypatch, value):
    write_npy(tmp_path / "a.npy", np.ones((2, 2), np.float32))
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(ImageError, match=rf"{ENV_VAR} must be a positive whole number.*{value!r}"):
        read_image(tmp_path / "a.npy")


def test_pillow_own_limit_is_replaced_by_this_one(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_png(path, np.zeros((20, 20), np.float32))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would call 400 pixels a bomb
    assert read_image(path).array.shape == (20, 20)
    assert Image.MAX_IMAGE_PIXELS == 10  # and its setting is left as it was
    monkeypatch.setenv(ENV_VAR, "399")
    with pytest.raises(ImageTooLargeError, match="PNG image of 20 x 20 x 1"):
        read_image(path)


# ---------------------------------------------------------------- through the command line

runner = CliRunner()
BOMB_SUFFIX = {"npy": ".npy", "nifti": ".nii", "png": ".png", "dicom": ".dcm"}
COMMANDS = {
    "data info": lambda f, led, out: ["data", "info", f, "--json", out / "info.json"],
    "verify": lambda f, led, out: ["verify", f, "--ledger", led, "--json", out / "v.json"],
    "anchor": lambda f, led, out: ["anchor", f, "--ledger", led, "--json", out / "a.json"],
    "restore": lambda f, led, out: ["restore", f, "--ledger", led, "--out", out / f"r{f.suffix}"],
}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "ledger"
    assert runner.invoke(app, ["ledger", "init", str(path), "--nodes", "4"]).exit_code == 0
    return path


def blocks(ledger: Path) -> int:
    res = runner.invoke(app, ["ledger", "stats", "-d", str(ledger), "--json", "-"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)["blocks"]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused_cleanly(res, *words: str) -> None:
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and "MemoryError" not in res.output
    assert "DecompressionBomb" not in res.output
    assert res.output.startswith("error: "), res.output
    for word in words:
        assert word in res.output, res.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", sorted(BOMB_SUFFIX))
def test_commands_refuse_a_header_bomb_cleanly_writing_nothing(tmp_path, ledger, kind, command):
    path = BOMBS[kind][0](tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    res = invoke(*COMMANDS[command](path, ledger, out))
    assert_refused_cleanly(res, str(path), BOMBS[kind][1], f"{DEFAULT_MAX_PIXELS:,} values", ENV_VAR)
    assert list(out.iterdir()) == [] and blocks(ledger) == 0


@pytest.mark.parametrize("bomb_is_mri", [True, False])
def test_fuse_refuses_a_png_bomb_cleanly_writing_nothing(tmp_path, bomb_is_mri):
    bomb = png_bomb(tmp_path / "bomb.png")
    small = tmp_path / "small.png"
    write_png(small, np.zeros((8, 8), np.float32))
    pair = (bomb, small) if bomb_is_mri else (small, bomb)
    res = invoke("fuse", *pair, "--out", tmp_path / "out" / "f.png")
    assert_refused_cleanly(res, str(bomb), "60000 x 60000", ENV_VAR)
    assert not (tmp_path / "out").exists()


def test_max_pixels_option_raises_and_lowers_the_limit(tmp_path, monkeypatch):
    bomb = npy_bomb(tmp_path / "bomb.npy")
    res = invoke("--max-pixels", 10**12, "data", "info", bomb)  # past the limit, to the next check
    assert_refused_cleanly(res, "truncated")
    assert ENV_VAR not in res.output
    image = tmp_path / "a.npy"
    write_npy(image, np.ones((20, 20), np.float32))
    assert invoke("data", "info", image).exit_code == 0
    assert_refused_cleanly(invoke("--max-pixels", 399, "data", "info", image), "20 x 20", "399 values")
    monkeypatch.setenv(ENV_VAR, "399")
    assert_refused_cleanly(invoke("data", "info", image), "399 values")
    assert invoke("--max-pixels", 400, "data", "info", image).exit_code == 0
    monkeypatch.setenv(ENV_VAR, "lots")
    assert_refused_cleanly(invoke("data", "info", image), f"{ENV_VAR} must be a positive whole number")

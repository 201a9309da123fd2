"""Reading and writing medical images: round trips, real shared data, pydicom samples, bad input."""

from __future__ import annotations

import copy
import gzip
import math
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian

from prosima.imaging.io import (
    ImageMeta,
    ImageReadError,
    LoadedImage,
    read_dicom_series,
    read_image,
    write_derived_dicom,
    write_nifti,
    write_npy,
    write_png,
)
from prosima.imaging.validation import ImageError

RNG = np.random.default_rng(0)


def pydicom_file(name: str) -> str:
    """A test file bundled with pydicom (never downloaded); skips if this pydicom lacks it."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} not bundled")
    return str(path)


def refused(path: str | Path, *words: str, call=None) -> ImageReadError:
    """Assert that reading ``path`` raises ImageReadError naming the file and each of ``words``."""
    with pytest.raises(ImageReadError) as info:
        (call or read_image)(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word.lower() in message.lower(), message
    assert isinstance(info.value, ImageError) and isinstance(info.value, ValueError)
    return info.value


# ---------------------------------------------------------------- round trips


def test_png_8bit_round_trip(tmp_path):
    arr = RNG.random((40, 30)).astype(np.float32)
    write_png(tmp_path / "a.png", arr)
    loaded = read_image(tmp_path / "a.png")
    assert isinstance(loaded, LoadedImage) and isinstance(loaded.meta, ImageMeta)
    assert loaded.array.dtype == np.float32 and loaded.array.shape == (40, 30)
    assert np.abs(loaded.array - arr * 255).max() <= 0.5
    meta = loaded.meta
    assert (meta.format, meta.original_dtype, meta.shape, meta.modality) == ("png", "uint8", (40, 30), None)
    assert meta.spacing is None and meta.affine is None and meta.extra["bits"] == 8
    assert meta.intensity_range == (float(loaded.array.min()), float(loaded.array.max()))
    assert meta.path == str(tmp_path / "a.png")


def test_png_16bit_round_trip_uses_min_max(tmp_path):
    arr = RNG.uniform(-100, 300, (32, 33)).astype(np.float32)
    write_png(tmp_path / "b.png", arr, bits=16)
    with Image.open(tmp_path / "b.png") as img:
        assert img.mode in ("I;16", "I")
    loaded = read_image(tmp_path / "b.png")
    lo, hi = float(arr.min()), float(arr.max())
    assert loaded.meta.original_dtype == "uint16" and loaded.meta.extra["bits"] == 16
    assert np.abs(loaded.array - (arr.astype(np.float64) - lo) / (hi - lo) * 65535).max() <= 0.5 + 1e-6
    assert loaded.meta.intensity_range == (0.0, 65535.0)


def test_png_explicit_range_clips_and_constant_image(tmp_path):
    arr = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]], dtype=np.float32)
    write_png(tmp_path / "c.png", arr, data_range=(0.0, 1.0))
    assert read_image(tmp_path / "c.png").array.tolist() == [[0, 0, 128, 255, 255]]
    write_png(tmp_path / "d.png", np.full((4, 4), 7.0))
    assert read_image(tmp_path / "d.png").meta.intensity_range == (0.0, 0.0)


def test_png_rgb_and_as_gray(tmp_path):
    rgb = RNG.integers(0, 256, (20, 21, 3)).astype(np.float32)
    write_png(tmp_path / "rgb.png", rgb, data_range=(0, 255))
    colour = read_image(tmp_path / "rgb.png")
    assert colour.meta.shape == (20, 21, 3) and colour.meta.extra["channels"] == 3
    np.testing.assert_array_equal(colour.array, rgb)
    gray = read_image(tmp_path / "rgb.png", as_gray=True)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert gray.meta.shape == (20, 21) and np.allclose(gray.array, expected, atol=1e-3)


def test_jpeg_read(tmp_path):
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (16, 1))).save(tmp_path / "x.jpg")
    loaded = read_image(tmp_path / "x.jpg")
    assert loaded.meta.format == "jpeg" and loaded.meta.shape == (16, 64)
    assert loaded.meta.original_dtype == "uint8"


def test_png_refusals(tmp_path):
    with pytest.raises(ValueError, match="bits"):
        write_png(tmp_path / "x.png", np.zeros((4, 4)), bits=12)
    with pytest.raises(ImageError, match="grayscale only"):
        write_png(tmp_path / "x.png", np.zeros((4, 4, 3)), bits=16)
    with pytest.raises(ImageError, match="NaN"):
        write_png(tmp_path / "x.png", np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="data_range"):
        write_png(tmp_path / "x.png", np.zeros((4, 4)), data_range=(1.0, 1.0))


def test_writers_refuse_a_misleading_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        write_png(tmp_path / "x.jpg", np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\.npy"):
        write_npy(tmp_path / "x.npz", np.zeros((4, 4)))


def test_npy_round_trip(tmp_path):
    arr = RNG.normal(size=(5, 6, 7))
    write_npy(tmp_path / "v.npy", arr)
    loaded = read_image(tmp_path / "v.npy")
    assert loaded.meta.format == "npy" and loaded.meta.original_dtype == "float32"
    np.testing.assert_array_equal(loaded.array, arr.astype(np.float32))
    np.save(tmp_path / "u.npy", np.arange(12, dtype=np.uint16).reshape(3, 4))
    assert read_image(tmp_path / "u.npy").meta.original_dtype == "uint16"


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_nifti_round_trip_keeps_affine(tmp_path, name):
    arr = RNG.normal(size=(6, 7, 8)).astype(np.float32)
    affine = np.array([[-0.5, 0, 0, 90], [0, 0.75, 0, -126], [0, 0, 2.5, -72], [0, 0, 0, 1]])
    write_nifti(tmp_path / name, arr, affine)
    loaded = read_image(tmp_path / name)
    np.testing.assert_array_equal(loaded.array, arr)
    np.testing.assert_array_equal(loaded.meta.affine, affine)
    assert loaded.meta.spacing == (0.5, 0.75, 2.5) and loaded.meta.format == "nifti"
    assert loaded.meta.original_dtype == "float32" and loaded.meta.extra["nifti_version"] == 1


def test_nifti_affine_beyond_float32_kept_exactly(tmp_path):
    tilt = math.radians(18.5)
    affine = np.array(
        [
            [-0.4882812, 0, 0, 125.0],
            [0, 0.4882812 * math.cos(tilt), 1.3, -123.5404569],
            [0, 0, 4.2, 5.8360586],
            [0, 0, 0, 1],
        ]
    )
    write_nifti(tmp_path / "t.nii.gz", np.zeros((3, 4, 5)), affine)
    loaded = read_image(tmp_path / "t.nii.gz")
    np.testing.assert_array_equal(loaded.meta.affine, affine)
    write_nifti(tmp_path / "eye.nii", np.ones((3, 4)))
    np.testing.assert_array_equal(read_image(tmp_path / "eye.nii").meta.affine, np.eye(4))
    with pytest.raises(ImageError, match="4x4"):
        write_nifti(tmp_path / "bad.nii", np.ones((3, 4)), np.eye(3))
    with pytest.raises(ValueError, match=r"\.nii"):
        write_nifti(tmp_path / "bad.img", np.ones((3, 4)))


# ---------------------------------------------------------------- derived DICOM


def test_derived_dicom_tags_and_round_trip(tmp_path):
    source_path = pydicom_file("CT_small.dcm")
    source = pydicom.dcmread(source_path)
    before = copy.deepcopy(source)
    hu = read_image(source_path).array
    denoised = (hu * 0.9 + 3.3).astype(np.float32)
    ds = write_derived_dicom(
        tmp_path / "d.dcm",
        denoised,
        source,
        derivation_description="Gaussian denoising, sigma 1.5",
        series_description="CT denoised",
    )
    assert source == before  # the caller's dataset is untouched
    back = pydicom.dcmread(tmp_path / "d.dcm")
    assert back.preamble is not None and back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.file_meta.MediaStorageSOPInstanceUID == back.SOPInstanceUID
    assert back.file_meta.MediaStorageSOPClassUID == source.SOPClassUID == back.SOPClassUID
    assert list(back.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert back.DerivationDescription == "Gaussian denoising, sigma 1.5"
    assert back.SeriesDescription == "CT denoised"
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID", "Modality"):
        assert back[keyword].value == source[keyword].value
    assert back.SOPInstanceUID != source.SOPInstanceUID
    assert back.SeriesInstanceUID != source.SeriesInstanceUID
    ref = back.SourceImageSequence[0]
    assert ref.ReferencedSOPClassUID == source.SOPClassUID
    assert ref.ReferencedSOPInstanceUID == source.SOPInstanceUID
    equipment = back.ContributingEquipmentSequence[-1]
    assert equipment.Manufacturer == "PROSIMA" and equipment.SoftwareVersions
    assert equipment.ContributionDateTime
    code = equipment.PurposeOfReferenceCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "109102",
        "DCM",
        "Processing Equipment",
    )
    assert back.BitsAllocated == 16 and back.PixelRepresentation == 1 and back.pixel_array.dtype == np.int16
    assert "LargestImagePixelValue" not in back and not any(e.tag.is_private for e in back)

    loaded = read_image(tmp_path / "d.dcm")
    step = float(ds.RescaleSlope)
    assert loaded.meta.shape == denoised.shape
    assert np.abs(loaded.array - denoised).max() <= step / 2 + 1e-6 * np.abs(denoised).max()
    assert loaded.meta.identifiers["SOPInstanceUID"] == ds.SOPInstanceUID


def test_derived_dicom_exact_for_integers_and_deterministic_uids(tmp_path):
    source = pydicom_file("MR_small.dcm")
    arr = read_image(source).array + 5
    kw = {"derivation_description": "shifted", "uid_entropy": ["prosima-test", "run-1"]}
    first = write_derived_dicom(tmp_path / "a.dcm", arr, source, **kw)
    second = write_derived_dicom(tmp_path / "b.dcm", arr, source, **kw)
    other = write_derived_dicom(tmp_path / "c.dcm", arr, source, derivation_description="shifted")
    assert first.SOPInstanceUID == second.SOPInstanceUID != other.SOPInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID != first.SOPInstanceUID
    assert (float(first.RescaleSlope), float(first.RescaleIntercept)) == (1.0, 0.0)
    np.testing.assert_array_equal(read_image(tmp_path / "a.dcm").array, arr)


def test_derived_dicom_unit_range_and_big_endian_source(tmp_path):
    source = pydicom_file("MR_small_bigendian.dcm")
    arr = RNG.random((64, 64)).astype(np.float32)
    ds = write_derived_dicom(tmp_path / "u.dcm", arr, source, derivation_description="random")
    loaded = read_image(tmp_path / "u.dcm")
    assert np.abs(loaded.array - arr).max() <= float(ds.RescaleSlope) / 2 + 1e-7


def test_derived_dicom_refusals(tmp_path):
    source = pydicom_file("CT_small.dcm")
    with pytest.raises(ImageError, match="2-D"):
        write_derived_dicom(tmp_path / "x.dcm", np.zeros((2, 128, 128)), source, derivation_description="x")
    with pytest.raises(ImageError, match="does not match the source"):
        write_derived_dicom(tmp_path / "x.dcm", np.zeros((64, 64)), source, derivation_description="x")
    with pytest.raises(ValueError, match="derivation_description"):
        write_derived_dicom(tmp_path / "x.dcm", np.zeros((128, 128)), source, derivation_description=" ")
    refused(
        tmp_path / "missing.dcm",
        "not found",
        call=lambda p: write_derived_dicom(
            tmp_path / "x.dcm", np.zeros((128, 128)), p, derivation_description="x"
        ),
    )


# ---------------------------------------------------------------- pydicom samples (no shared data)


def test_pydicom_ct_small_in_hu():
    loaded = read_image(pydicom_file("CT_small.dcm"))
    meta = loaded.meta
    assert meta.format == "dicom" and meta.modality == "CT" and meta.shape == (128, 128)
    assert meta.original_dtype == "int16" and meta.spacing == (0.661468, 0.661468)
    assert meta.extra["rescale_intercept"] == -1024.0 and meta.intensity_range == (-896.0, 1167.0)
    for key in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "PatientID",
        "Modality",
    ):
        assert meta.identifiers[key]


def test_pydicom_multiframe_rtdose():
    loaded = read_image(pydicom_file("rtdose.dcm"))
    meta = loaded.meta
    assert meta.shape == (15, 10, 10) and meta.extra["n_frames"] == 15
    assert meta.spacing == (5.0, 10.0, 10.0) and meta.original_dtype == "uint32"
    assert meta.extra["dose_grid_scaling"] == pytest.approx(1e-6)
    assert 0.5 < meta.intensity_range[0] < meta.intensity_range[1] < 2.0  # Gy, not raw counts


def test_pydicom_multiframe_colour_needs_as_gray():
    path = pydicom_file("SC_rgb_rle_2frame.dcm")
    refused(path, "4-D", "as_gray")
    gray = read_image(path, as_gray=True)
    assert gray.meta.shape == (2, 100, 100) and gray.meta.extra["channels"] == 3


def make_mosaic(tmp_path: Path, n_tiles: int | None) -> tuple[Path, np.ndarray]:
    """CT_small (128x128) turned into a Siemens-style 2x2 mosaic of 64x64 tiles."""
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    if n_tiles is not None:
        ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", n_tiles)
    path = tmp_path / f"mosaic_{n_tiles}.dcm"
    ds.save_as(path)
    return path, ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_synthetic_mosaic_unpacks_and_refuses_without_count(tmp_path):
    path, frame = make_mosaic(tmp_path, 3)
    loaded = read_image(path)
    assert loaded.meta.shape == (3, 64, 64)
    assert loaded.meta.extra["mosaic"]["grid"] == [2, 2]
    np.testing.assert_array_equal(loaded.array[1], frame[:64, 64:])
    np.testing.assert_array_equal(loaded.array[2], frame[64:, :64])
    bad, _ = make_mosaic(tmp_path, None)
    refused(bad, "MOSAIC", "NumberOfImagesInMosaic")


def write_series(folder: Path, n: int, *, step: float = 2.5, changes: dict | None = None) -> list[Path]:
    """``n`` CT_small copies stacked along z, written in shuffled file-name order."""
    folder.mkdir(exist_ok=True)
    source = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    series_uid = pydicom.uid.generate_uid()
    paths = []
    for k, name_index in enumerate(RNG.permutation(n)):
        ds = copy.deepcopy(source)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + k * step]
        ds.InstanceNumber = k + 1
        ds.PixelData = (ds.pixel_array + k).astype(ds.pixel_array.dtype).tobytes()
        for key, value in (changes or {}).get(k, {}).items():
            setattr(ds, key, value)
        path = folder / f"IM{name_index:03d}.dcm"
        ds.save_as(path)
        paths.append(path)
    (folder / "notes.txt").write_text("not an image")
    return paths


def test_series_sorted_by_position_with_affine(tmp_path):
    write_series(tmp_path / "s", 5)
    loaded = read_dicom_series(tmp_path / "s")
    meta = loaded.meta
    assert meta.shape == (5, 128, 128) and meta.modality == "CT" and meta.format == "dicom"
    assert meta.extra["sort_key"] == "position along slice normal" and meta.extra["skipped_files"] == [
        "notes.txt"
    ]
    base = loaded.array[0]
    for k in range(5):
        np.testing.assert_array_equal(loaded.array[k], base + k)
    assert meta.spacing == pytest.approx((2.5, 0.661468, 0.661468))
    expected = np.array(
        [[0, 0, -0.661468, 158.1], [0, -0.661468, 0, 179.0], [2.5, 0, 0, -75.7], [0, 0, 0, 1]]
    )
    np.testing.assert_allclose(meta.affine, expected, atol=1e-9)
    assert meta.extra["slice_shear_deg"] == 0 and "SOPInstanceUID" not in meta.identifiers


def test_series_without_positions_falls_back_to_instance_number(tmp_path):
    paths = write_series(tmp_path / "s", 4)
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path)
    loaded = read_dicom_series(tmp_path / "s")
    assert loaded.meta.extra["sort_key"] == "InstanceNumber" and loaded.meta.affine is None
    for k in range(4):
        np.testing.assert_array_equal(loaded.array[k], loaded.array[0] + k)


def test_series_refusals(tmp_path):
    write_series(tmp_path / "mixed", 3, changes={1: {"SeriesInstanceUID": "1.2.3.4"}})
    refused(tmp_path / "mixed", "mixed series", "1.2.3.4", call=read_dicom_series)
    write_series(tmp_path / "dup", 3, step=0.0)
    refused(tmp_path / "dup", "share a position", call=read_dicom_series)
    shapes = write_series(tmp_path / "shapes", 3)
    small = pydicom.dcmread(shapes[0])
    small.Rows = small.Columns = 64
    small.PixelData = np.zeros((64, 64), np.int16).tobytes()
    small.save_as(shapes[0])
    refused(tmp_path / "shapes", "inconsistent slice shapes", shapes[0].name, call=read_dicom_series)
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "no DICOM images", call=read_dicom_series)
    refused(tmp_path / "nowhere", "not found", call=read_dicom_series)
    refused(shapes[1], "not a folder", call=read_dicom_series)


# ---------------------------------------------------------------- shared data (real images)


@pytest.mark.shared_data
def test_brats_nifti(shared_data):
    path = shared_data / "brain_mri" / "BraTS-GLI-00001-000" / "BraTS-GLI-00001-000-t1n.nii.gz"
    meta = read_image(path).meta
    assert meta.shape == (240, 240, 155) and meta.spacing == (1.0, 1.0, 1.0)
    assert meta.original_dtype == "int16" and meta.format == "nifti" and meta.affine.shape == (4, 4)
    assert meta.intensity_range[0] == 0.0 and meta.intensity_range[1] > 100


@pytest.mark.shared_data
def test_ge_ct_series_and_single_file(shared_data):
    folder = shared_data / "dicom" / "ct_head_ge"
    series = read_dicom_series(folder)
    meta = series.meta
    assert meta.shape == (28, 512, 512) and meta.modality == "CT" and meta.original_dtype == "int16"
    lo, hi = meta.intensity_range
    assert -1600 <= lo <= -1400 and 1500 <= hi <= 2200  # HU after rescale
    assert meta.spacing[1:] == pytest.approx((0.4882812, 0.4882812))
    assert meta.extra["gantry_tilt"] == 18.5 and meta.extra["slice_shear_deg"] == pytest.approx(
        18.5, abs=0.05
    )
    positions = meta.extra["slice_positions"]
    assert positions == sorted(positions) and meta.extra["files"][0] == "01.dcm"
    assert meta.extra["slice_spacing_uniform"] is False and meta.affine is None  # 4 mm then 7 mm slices
    one = read_image(folder / "05.dcm")
    assert one.meta.shape == (512, 512) and one.meta.original_dtype == "int16"
    index = meta.extra["sop_instance_uids"].index(one.meta.identifiers["SOPInstanceUID"])
    np.testing.assert_array_equal(series.array[index], one.array)


@pytest.mark.shared_data
def test_derived_dicom_from_real_ct_slice(shared_data, tmp_path):
    source = shared_data / "dicom" / "ct_head_ge" / "05.dcm"
    original = read_image(source)
    clipped = np.clip(original.array, -1000, None)
    ds = write_derived_dicom(tmp_path / "05_derived.dcm", clipped, source, derivation_description="clip air")
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]  # CT needs value 3 (PS3.3 C.8.2.1.1.1)
    back = read_image(tmp_path / "05_derived.dcm")
    padding = pydicom.dcmread(source).pixel_array == ds.PixelPaddingValue  # written back as padding
    assert padding.mean() > 0.1
    np.testing.assert_array_equal(back.array, np.where(padding, original.array, clipped))
    assert back.meta.extra["gantry_tilt"] == 18.5 and back.meta.spacing == original.meta.spacing


@pytest.mark.shared_data
def test_siemens_mosaic_tiles_reassemble(shared_data):
    path = sorted((shared_data / "dicom" / "mr_siemens_mosaic" / "axasc35").glob("*.dcm"))[0]
    loaded = read_image(path)
    mosaic = loaded.meta.extra["mosaic"]
    assert loaded.meta.shape == (35, 64, 64) and loaded.meta.modality == "MR"
    assert mosaic["grid"] == [6, 6] and mosaic["tile_shape"] == [64, 64] and mosaic["n_slices"] == 35
    assert loaded.meta.spacing == pytest.approx((3.6, 3.25, 3.25))
    frame = pydicom.dcmread(path).pixel_array.astype(np.float32)
    tiles = np.zeros((36, 64, 64), np.float32)
    tiles[:35] = loaded.array
    rebuilt = tiles.reshape(6, 6, 64, 64).transpose(0, 2, 1, 3).reshape(384, 384)
    np.testing.assert_array_equal(rebuilt, frame)


@pytest.mark.shared_data
def test_chest_xray_png(shared_data):
    path = sorted((shared_data / "chest_xray" / "covid19_xray_256" / "No_findings").glob("*.png"))[0]
    meta = read_image(path).meta
    assert meta.shape == (256, 256) and meta.original_dtype == "uint8" and meta.extra["channels"] == 1


@pytest.mark.shared_data
def test_fusion_pair_rgb_and_gray(shared_data):
    root = shared_data / "fusion" / "harvard_aanlib" / "PET-MRI"
    name = sorted(p.name for p in (root / "PET").glob("*.png"))[0]
    pet, mri = read_image(root / "PET" / name), read_image(root / "MRI" / name)
    assert pet.meta.shape == (256, 256, 3) and mri.meta.shape == (256, 256)
    pet_gray = read_image(root / "PET" / name, as_gray=True)
    assert pet_gray.meta.shape == (256, 256)
    np.testing.assert_allclose(pet_gray.array, pet.array @ np.array([0.299, 0.587, 0.114]), atol=1e-3)


# ---------------------------------------------------------------- bad input


def test_import_pulls_in_neither_torch_nor_ledger():
    code = (
        "import sys, prosima.imaging.io, prosima.imaging.dicom; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('prosima.ledger')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_file_and_folder(tmp_path):
    refused(tmp_path / "nope.png", "not found")
    refused(tmp_path, "folder")


def test_unsupported_extension(tmp_path):
    (tmp_path / "scan.bmp").write_bytes(b"BM" + bytes(100))
    refused(tmp_path / "scan.bmp", "unsupported file type", ".bmp")


@pytest.mark.parametrize("name", ["e.png", "e.npy", "e.dcm", "e.nii.gz", "e.jpg"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).touch()
    refused(tmp_path / name, "empty")


def test_truncated_nifti_gz(tmp_path):
    write_nifti(tmp_path / "full.nii.gz", RNG.random((40, 40, 40)))
    data = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "half.nii.gz").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "half.nii.gz", "NIfTI", "truncated")
    (tmp_path / "head.nii.gz").write_bytes(data[:60])
    refused(tmp_path / "head.nii.gz", "NIfTI")
    (tmp_path / "text.nii.gz").write_bytes(gzip.compress(b"not nifti at all" * 30))
    refused(tmp_path / "text.nii.gz", "NIfTI")


def test_text_renamed_dcm(tmp_path):
    (tmp_path / "report.dcm").write_text("Patient report\n" * 20)
    refused(tmp_path / "report.dcm", "not a DICOM file", "DICM")


def test_dicom_without_preamble_is_refused():
    refused(pydicom_file("no_meta.dcm"), "not a DICOM file")


def test_dicom_without_pixel_data(tmp_path):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    refused(tmp_path / "nopix.dcm", "no pixel data")
    refused(pydicom_file("rtplan.dcm"), "no pixel data", "RT Plan")


def test_dicom_truncated_pixel_data():
    refused(pydicom_file("MR_truncated.dcm"), "could not decode", "pixel data")


def test_dicom_preamble_without_extension(tmp_path):
    target = tmp_path / "IM0001"
    target.write_bytes(Path(pydicom_file("CT_small.dcm")).read_bytes())
    assert read_image(target).meta.format == "dicom"


def test_nan_refused(tmp_path):
    arr = np.ones((8, 8), np.float32)
    arr[2, 3] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    refused(tmp_path / "nan.npy", "NaN")
    nib.save(nib.Nifti1Image(arr[..., None].repeat(2, axis=2), np.eye(4)), tmp_path / "nan.nii.gz")
    refused(tmp_path / "nan.nii.gz", "NaN")
    with pytest.raises(ImageError, match="NaN"):
        write_npy(tmp_path / "w.npy", arr)


def test_npy_shape_and_content_refusals(tmp_path):
    np.save(tmp_path / "line.npy", np.arange(10.0))
    refused(tmp_path / "line.npy", "1-D")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused(tmp_path / "objects.npy", "Python objects")
    np.savez(tmp_path / "archive.npz", a=np.zeros((3, 3)))
    (tmp_path / "archive.npz").rename(tmp_path / "archive.npy")
    refused(tmp_path / "archive.npy", ".npz")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    refused(tmp_path / "junk.npy", ".npy")


def test_corrupt_png(tmp_path):
    write_png(tmp_path / "ok.png", RNG.random((64, 64)))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "cut.png", "PNG")
    (tmp_path / "fake.png").write_text("hello")
    refused(tmp_path / "fake.png", "not a readable PNG")

"""A derived NIfTI keeps its source's header geometry (qform and sform with their codes), and a single
X x Y x 1 NIfTI slice is one 2-D image that is written back X x Y x 1."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from prosima.imaging.io import ImageReadError, is_volume, read_image_2d, read_input, write_nifti
from prosima.imaging.validation import ImageError

QFORM = np.array([[-0.9, 0, 0, 10], [0, 0.8, 0, -20], [0, 0, 3, 5], [0, 0, 0, 1]])
SFORM = np.array([[-0.9, 0, 0, 11.5], [0, 0.8, 0, -19], [0, 0, 3, 5], [0, 0, 0, 1]])


def scanner_nifti(path, shape=(20, 24, 1), *, version: int = 1):
    """A NIfTI as a converter writes it: qform_code 2 (aligned), sform_code 1 (scanner), two transforms."""
    data = (np.random.default_rng(0).random(shape) * 1000).astype(np.int16)
    img = (nib.Nifti1Image if version == 1 else nib.Nifti2Image)(data, None)
    img.header.set_qform(QFORM, code=2)
    img.header.set_sform(SFORM, code=1)
    img.header.set_slope_inter(2.0, -5.0)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
    return path


GEOMETRY = ("qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y")
GEOMETRY += ("qoffset_z", "pixdim", "srow_x", "srow_y", "srow_z", "xyzt_units", "dim")


@pytest.mark.parametrize("version", [1, 2])
def test_derived_nifti_keeps_the_source_header_geometry(tmp_path, version):
    source = scanner_nifti(tmp_path / "src.nii.gz", (20, 24, 6), version=version)
    values = np.random.default_rng(1).random((20, 24, 6)).astype(np.float32)
    write_nifti(tmp_path / "out.nii", values, like=source)
    src, out = nib.load(source), nib.load(tmp_path / "out.nii")
    assert type(out) is type(src)
    for key in GEOMETRY:
        np.testing.assert_array_equal(out.header[key], src.header[key], err_msg=key)
    assert (int(out.header["qform_code"]), int(out.header["sform_code"])) == (2, 1)
    np.testing.assert_array_equal(out.get_fdata(dtype=np.float32), values)  # no scaling applied


def test_derived_nifti_refuses_another_shape_or_affine(tmp_path):
    source = scanner_nifti(tmp_path / "src.nii.gz", (20, 24, 6))
    with pytest.raises(ImageError, match="does not fit"):
        write_nifti(tmp_path / "out.nii", np.zeros((20, 24, 5)), like=source)
    with pytest.raises(ImageError, match="affine"):
        write_nifti(tmp_path / "out.nii", np.zeros((20, 24, 6)), np.eye(4), like=source)
    (tmp_path / "bad.nii").write_bytes(b"not nifti")
    with pytest.raises(ImageReadError, match=r"bad\.nii"):
        write_nifti(tmp_path / "out.nii", np.zeros((20, 24, 6)), like=tmp_path / "bad.nii")


def test_single_slice_nifti_is_one_2d_image_written_back_single_slice(tmp_path):
    source = scanner_nifti(tmp_path / "slice.nii.gz")
    assert not is_volume(source)
    loaded = read_image_2d(source)
    assert loaded.array.shape == (20, 24) and loaded.meta.extra["single_slice"]
    assert loaded.meta.spacing == pytest.approx((0.9, 0.8))
    assert read_input(source)[1] is None and read_input(source)[0].array.shape == (20, 24)
    write_nifti(tmp_path / "out.nii.gz", loaded.array * 0.5, like=source)
    out = nib.load(tmp_path / "out.nii.gz")
    assert out.shape == (20, 24, 1)
    for key in GEOMETRY:
        np.testing.assert_array_equal(out.header[key], nib.load(source).header[key], err_msg=key)
    np.testing.assert_array_equal(read_image_2d(tmp_path / "out.nii.gz").array, loaded.array * 0.5)

"""Read medical images (PNG, JPEG, NumPy, NIfTI, DICOM) into float32 arrays with metadata, and write them.

Every reader returns a :class:`LoadedImage`; every unusable input raises :class:`ImageReadError` whose
message names the file and the problem. Every reader checks the size its file's header claims against
the one limit of :mod:`prosima.imaging.limits` before reading any data. DICOM specifics live in
:mod:`prosima.imaging.dicom`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

import prosima
from prosima.imaging.limits import check_size, open_pillow
from prosima.imaging.loaded import (
    ImageMeta,
    LoadedImage,
    describe,
    detect_format,
    loaded_image,
    read_error,
    rgb_to_gray,
    suffix,
)
from prosima.imaging.validation import ImageError, ImageReadError, check_image

if TYPE_CHECKING:
    import pydicom

__all__ = [
    "ImageMeta",
    "ImageReadError",
    "LoadedImage",
    "is_volume",
    "read_dicom_series",
    "read_image",
    "read_image_2d",
    "read_input",
    "read_npy_header",
    "read_volume",
    "write_derived_dicom",
    "write_nifti",
    "write_npy",
    "write_png",
]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def read_image(path: str | Path, *, as_gray: bool = False) -> LoadedImage:
    """Read a PNG, JPEG, ``.npy``, NIfTI or DICOM file into a float32 array with metadata.

    Values keep the file's units (0..255 for 8-bit PNG, HU for CT after rescale). ``as_gray`` turns
    colour images into ITU-R 601 luma; grayscale data and volumes are returned unchanged.
    """
    fmt = detect_format(path)
    if fmt == "dicom":
        from prosima.imaging.dicom import read_dicom_file

        return read_dicom_file(path, as_gray=as_gray)
    if fmt in ("png", "jpeg"):
        return _read_pillow(path, fmt, as_gray=as_gray)
    if fmt == "npy":
        return _read_npy(path)
    return _read_nifti(path)


def _png_bit_depth(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG IHDR chunk, or None if not a PNG."""
    with path.open("rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_pillow(path: str | Path, fmt: str, *, as_gray: bool) -> LoadedImage:
    from PIL import Image

    p = Path(path)
    ihdr = _png_bit_depth(p)
    if ihdr is not None and ihdr[0] == 16 and ihdr[1] in (2, 6):
        raise read_error(path, "16-bit colour PNG is not supported (Pillow would cut it to 8 bits)")
    try:
        with open_pillow(p) as img:
            img.load()
            mode = img.mode
            extra: dict[str, Any] = {"mode": mode, "container": img.format}
            if mode in ("LA", "RGBA", "PA") or (mode == "P" and "transparency" in img.info):
                extra["alpha_dropped"] = True
            if mode in ("1", "LA"):
                img = img.convert("L")
            elif mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGB")
            raw = np.asarray(img)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise read_error(path, f"not a readable {fmt.upper()} image ({describe(exc)})") from exc
    if raw.dtype.byteorder == ">":
        raw = raw.astype(raw.dtype.newbyteorder("="))
    is_16bit = mode.startswith("I;16") or (mode == "I" and ihdr is not None)
    original = "uint16" if is_16bit else str(raw.dtype)
    if mode in ("P", "PA") and raw.ndim == 3 and np.all(raw[..., :1] == raw):
        raw = raw[..., 0]
        extra["gray_palette"] = True
    extra["channels"] = 1 if raw.ndim == 2 else raw.shape[-1]
    extra["bits"] = 16 if original == "uint16" else 8
    array = raw
    if as_gray and raw.ndim == 3:
        array = rgb_to_gray(raw)
        extra["as_gray"] = "ITU-R 601 luma"
    return loaded_image(path, fmt, array, original_dtype=original, extra=extra)


def read_npy_header(fh: BinaryIO, path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` stream's header claims, refused by :func:`check_size` when
    too large; ``fh`` is left at the start of the data."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(fh)
        else:
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise read_error(path, f"not a readable .npy file ({describe(exc)})") from exc
    check_size(path, shape, "NumPy array")
    return tuple(int(n) for n in shape), dtype


def _read_npy(path: str | Path) -> LoadedImage:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            if fh.read(4) in _ZIP_MAGIC:
                raise read_error(path, "is an .npz archive, not a single .npy array")
            fh.seek(0)
            shape, dtype = read_npy_header(fh, path)
            claimed, held = math.prod(shape) * dtype.itemsize, p.stat().st_size - fh.tell()
            if not dtype.hasobject and held < claimed:
                raise read_error(
                    path, f"truncated: the header claims {claimed:,} bytes of data, the file holds {held:,}"
                )
            fh.seek(0)
            data = _npy_array(fh, path)
    except OSError as exc:
        raise read_error(path, f"not a readable .npy file ({describe(exc)})") from exc
    return loaded_image(path, "npy", data, original_dtype=str(data.dtype))


def _npy_array(fh: BinaryIO, path: str | Path) -> np.ndarray:
    try:
        return np.lib.format.read_array(fh, allow_pickle=False)
    except ValueError as exc:
        raise read_error(
            path, "not a plain numeric .npy array (it holds Python objects, which are never loaded)"
        ) from exc
    except (OSError, EOFError) as exc:
        raise read_error(path, f"not a readable .npy file ({describe(exc)})") from exc


def _read_nifti(path: str | Path) -> LoadedImage:
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        img = nib.load(Path(path))
        check_size(path, img.shape, "NIfTI volume")
        data = img.get_fdata(dtype=np.float32)
    except ImageReadError:
        raise
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise read_error(path, f"not a readable NIfTI file, possibly truncated ({describe(exc)})") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    header = img.header
    slope, inter = header.get_slope_inter()
    affine = np.asarray(img.affine, dtype=np.float64)
    extra: dict[str, Any] = {
        "nifti_version": 2 if isinstance(img, nib.Nifti2Image) else 1,
        "scl_slope": None if slope is None else float(slope),
        "scl_inter": None if inter is None else float(inter),
        "sform_code": int(header["sform_code"]),
        "qform_code": int(header["qform_code"]),
        "spatial_units": header.get_xyzt_units()[0],
        "orientation": "".join(nib.aff2axcodes(affine)),
    }
    zooms = tuple(float(z) for z in header.get_zooms()[: data.ndim])
    return loaded_image(
        path,
        "nifti",
        data,
        original_dtype=str(img.get_data_dtype()),
        spacing=zooms if len(zooms) == data.ndim else None,
        affine=affine,
        extra=extra,
    )


def read_dicom_series(folder: str | Path) -> LoadedImage:
    """Read one DICOM series folder into a (slices, rows, cols) volume; see :mod:`prosima.imaging.dicom`."""
    from prosima.imaging.dicom import read_dicom_series as _read_series

    return _read_series(folder)


def _nifti_shape(path: Path) -> tuple[int, ...] | None:
    """The shape a NIfTI header claims, trailing length-1 axes beyond the third dropped as the reader
    drops them; None when the header cannot be read."""
    import nibabel as nib

    try:
        shape = tuple(int(n) for n in nib.load(path).shape)
    except Exception:  # unreadable: reading the file reports the problem
        return None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def is_volume(path: str | Path) -> bool:
    """The one rule for what a volume is: a DICOM series folder, or a NIfTI file whose header claims
    three axes with more than one slice along the last. Reads the header only."""
    p = Path(path)
    if p.is_dir():
        return True
    if suffix(p) not in (".nii", ".nii.gz") or not p.is_file():
        return False
    shape = _nifti_shape(p)
    return shape is not None and len(shape) == 3 and shape[2] > 1


def read_image_2d(path: str | Path) -> LoadedImage:
    """A file that is not a volume (see :func:`is_volume`) as one 2-D grayscale image, or refused; an
    X x Y x 1 NIfTI file is its one X x Y slice (``extra["single_slice"]``; the affine is the file's)."""
    loaded = read_image(path)
    shape = loaded.array.shape
    if len(shape) == 2:
        return loaded
    if loaded.meta.format == "nifti" and len(shape) == 3 and shape[2] == 1:
        return _only_slice(loaded)
    if loaded.meta.format in ("png", "jpeg"):
        raise read_error(path, f"is a colour image (shape {shape}); convert it to grayscale first")
    raise read_error(
        path,
        f"holds a {len(shape)}-D array of shape {shape}, which is neither one 2-D image nor a volume; "
        "a volume is a NIfTI file with slices along its last axis, or a DICOM series folder",
    )


def _only_slice(loaded: LoadedImage) -> LoadedImage:
    """The one slice of an X x Y x 1 NIfTI image, with the file's metadata."""
    meta = loaded.meta
    return loaded_image(
        meta.path,
        meta.format,
        loaded.array[:, :, 0],
        original_dtype=meta.original_dtype,
        modality=meta.modality,
        spacing=None if meta.spacing is None else meta.spacing[:2],
        affine=meta.affine,
        identifiers=meta.identifiers,
        extra=meta.extra | {"single_slice": True},
    )


def read_input(path: str | Path) -> tuple[LoadedImage, int | None]:
    """What the provenance commands take: a volume and its slice axis when :func:`is_volume` says so,
    else one 2-D image and None."""
    if is_volume(path):
        return read_volume(path)
    return read_image_2d(path), None


def read_volume(path: str | Path) -> tuple[LoadedImage, int]:
    """A 3-D NIfTI file or a DICOM series folder, and its slice axis (2 for NIfTI, 0 for DICOM)."""
    p = Path(path)
    loaded = read_dicom_series(p) if p.is_dir() else read_image(p)
    if loaded.meta.format not in ("nifti", "dicom"):
        raise read_error(p, f"a volume is a NIfTI file or a DICOM series folder, not {loaded.meta.format}")
    if loaded.array.ndim != 3:
        raise read_error(p, f"a volume has three axes, got shape {loaded.array.shape}")
    return loaded, 0 if loaded.meta.format == "dicom" else 2


def write_derived_dicom(
    path: str | Path,
    array: np.ndarray,
    source: pydicom.Dataset | str | Path,
    *,
    derivation_description: str,
    series_description: str | None = None,
    manufacturer: str = "PROSIMA",
    software_version: str = prosima.__version__,
    uid_entropy: list[str] | None = None,
    original: Mapping[str, str] | None = None,
    series_number: int | None = None,
) -> pydicom.Dataset:
    """Write ``array`` as a DERIVED/SECONDARY DICOM of ``source``; see :mod:`prosima.imaging.dicom`."""
    from prosima.imaging.dicom import write_derived_dicom as _write_derived

    return _write_derived(
        path,
        array,
        source,
        derivation_description=derivation_description,
        series_description=series_description,
        manufacturer=manufacturer,
        software_version=software_version,
        uid_entropy=uid_entropy,
        original=original,
        series_number=series_number,
    )


def _png_range(arr: np.ndarray, data_range: tuple[float, float] | None) -> tuple[float, float]:
    if data_range is not None:
        lo, hi = (float(v) for v in data_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"data_range must be finite with low < high, got {data_range}")
        return lo, hi
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi


def write_png(
    path: str | Path,
    array: np.ndarray,
    *,
    data_range: tuple[float, float] | None = None,
    bits: int = 8,
) -> None:
    """Write a 2-D or (H, W, 3) array as PNG, mapping ``data_range`` linearly onto 0..2**bits-1.

    ``data_range`` defaults to [0, 1] when the array lies within it, else to its min/max; values
    outside are clipped. 16 bits is grayscale only.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    if suffix(Path(path)) != ".png":
        raise ValueError(f"write_png {path}: file name must end in .png")
    arr = check_image(array, f"write_png {path}")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] != 3:
        raise ImageError(f"write_png {path}: expected (H, W) or (H, W, 3), got shape {arr.shape}")
    if arr.ndim == 3 and bits == 16:
        raise ImageError(f"write_png {path}: 16-bit PNG is grayscale only, got shape {arr.shape}")
    lo, hi = _png_range(arr, data_range)
    top = 2**bits - 1
    unit = np.clip((arr.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros(arr.shape)
    quantised = np.rint(unit * top).astype(np.uint8 if bits == 8 else np.uint16)

    from PIL import Image

    Image.fromarray(quantised).save(Path(path), format="PNG")


def write_npy(path: str | Path, array: np.ndarray) -> None:
    """Write a finite 2-D or 3-D array as float32 ``.npy`` at exactly ``path``."""
    if suffix(Path(path)) != ".npy":
        raise ValueError(f"write_npy {path}: file name must end in .npy")
    arr = check_image(array, f"write_npy {path}")
    with Path(path).open("wb") as fh:
        np.save(fh, arr, allow_pickle=False)


def write_nifti(
    path: str | Path,
    array: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    like: str | Path | None = None,
) -> None:
    """Write a float32 NIfTI (``.nii`` or ``.nii.gz``) with ``affine`` (identity if None) kept exactly.

    NIfTI-1 stores the affine in float32; an affine that float32 cannot hold exactly is written as
    NIfTI-2 (float64), which nibabel and the usual tools read transparently.

    With ``like`` (the NIfTI file the array was derived from) the output keeps that file's header
    geometry instead: its qform and sform with their codes, voxel sizes, units and NIfTI version; the
    array has that file's shape, or drops its trailing length-1 axes (an X x Y image of an X x Y x 1
    file is written X x Y x 1); ``affine``, when also given, must be that file's.
    """
    import nibabel as nib

    if suffix(Path(path)) not in (".nii", ".nii.gz"):
        raise ValueError(f"write_nifti {path}: file name must end in .nii or .nii.gz")
    arr = check_image(array, f"write_nifti {path}")
    if like is not None:
        img = _like_nifti(path, arr, affine, like)
    else:
        aff = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
        if aff.shape != (4, 4) or not np.all(np.isfinite(aff)) or not np.array_equal(aff[3], [0, 0, 0, 1]):
            raise ImageError(f"write_nifti {path}: affine must be a finite 4x4 with last row 0 0 0 1")
        exact32 = np.array_equal(aff.astype(np.float32).astype(np.float64), aff)
        cls = nib.Nifti1Image if exact32 else nib.Nifti2Image
        img = cls(arr, aff)
        img.header.set_xyzt_units("mm")
        img.header.set_data_dtype(np.float32)
    nib.save(img, Path(path))


def _like_nifti(path: str | Path, arr: np.ndarray, affine: np.ndarray | None, like: str | Path) -> Any:
    """A float32 image of ``arr`` with the header geometry of the NIfTI file ``like``."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    try:
        source = nib.load(Path(like))
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise read_error(
            like, f"not a readable NIfTI file to take the header from ({describe(exc)})"
        ) from exc
    if not isinstance(source, nib.Nifti1Image):  # Nifti2Image is one too
        raise read_error(like, f"is a {type(source).__name__}, not a NIfTI-1 or NIfTI-2 file")
    shape = tuple(int(n) for n in source.shape)
    if arr.shape != shape:
        if arr.shape != shape[: arr.ndim] or any(n != 1 for n in shape[arr.ndim :]):
            raise ImageError(
                f"write_nifti {path}: array of shape {arr.shape} does not fit {Path(like).name}, "
                f"of shape {shape}"
            )
        arr = arr.reshape(shape)
    if affine is not None and not np.array_equal(np.asarray(affine, dtype=np.float64), source.affine):
        raise ImageError(f"write_nifti {path}: the affine given is not that of {Path(like).name}")
    header = source.header.copy()
    header.set_data_dtype(np.float32)
    header.set_slope_inter(None, None)  # the float32 values are stored as they are
    header["cal_min"] = header["cal_max"] = 0  # display range of the source's values, not these
    return type(source)(arr, None, header=header)

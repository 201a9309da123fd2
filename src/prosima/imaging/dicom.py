"""DICOM reading (single files, Siemens mosaics, multi-frame, series folders) and derived-image writing.

Pixel values are returned after the modality transform (Rescale Slope/Intercept, Modality LUT, RT Dose
grid scaling), so CT comes back in HU. Geometry follows PS3.3 C.7.6.2: a series affine maps
(slice, row, column) indices to RAS millimetres, the NIfTI convention (DICOM LPS with x and y negated).
"""

from __future__ import annotations

import copy
import math
import re
import struct
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

import prosima
from prosima.imaging.limits import check_size
from prosima.imaging.loaded import (
    LoadedImage,
    describe,
    detect_format,
    has_dicm_preamble,
    loaded_image,
    read_error,
    rgb_to_gray,
)
from prosima.imaging.validation import ImageError, ImageReadError, check_image

__all__ = ["read_dicom_file", "read_dicom_series", "write_derived_dicom"]

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_ID_KEYWORDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "PatientID",
    "Modality",
    "FrameOfReferenceUID",
    "AccessionNumber",
)
_PARSE_ERRORS = (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, struct.error)
_DECODE_ERRORS = (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, TypeError)
_MOSAIC_TAG = 0x0019100A


def _open(path: Path, name: str) -> Dataset:
    """dcmread without force: files lacking the preamble/file meta are refused, not guessed at."""
    try:
        return pydicom.dcmread(path, force=False)
    except InvalidDicomError as exc:
        raise read_error(
            name, "not a DICOM file: no 'DICM' preamble or file meta header (not read by force)"
        ) from exc
    except _PARSE_ERRORS as exc:
        raise read_error(name, f"could not parse DICOM ({describe(exc)})") from exc


def _float(value: Any, default: float | None = None) -> float | None:
    """A DS/IS/numeric value as float; ``default`` for missing or empty values."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _floats(value: Any) -> list[float] | None:
    """A multi-valued DS as a list of floats, or None when missing or not numeric."""
    if value is None or value == "":
        return None
    try:
        return [float(v) for v in (value if isinstance(value, list | tuple | MultiValue) else [value])]
    except (TypeError, ValueError):
        return None


def _group_item(ds: Dataset, sequence: str, index: int | None = None) -> Dataset | None:
    """Item 0 of ``sequence`` inside the shared (or per-frame ``index``) functional groups."""
    if index is None:
        groups = ds.get("SharedFunctionalGroupsSequence")
        group = groups[0] if groups else None
    else:
        groups = ds.get("PerFrameFunctionalGroupsSequence")
        group = groups[index] if groups and index < len(groups) else None
    seq = group.get(sequence) if group is not None else None
    return seq[0] if seq else None


def _rescale_pairs(ds: Dataset, n_frames: int) -> list[tuple[float, float]]:
    """(slope, intercept) per frame, from the top level or the functional groups."""
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        pair = (_float(ds.get("RescaleSlope"), 1.0), _float(ds.get("RescaleIntercept"), 0.0))
        return [pair] * n_frames
    shared = _group_item(ds, "PixelValueTransformationSequence")
    pairs = []
    for i in range(n_frames):
        item = _group_item(ds, "PixelValueTransformationSequence", i) or shared
        if item is None:
            pairs.append((1.0, 0.0))
        else:
            pairs.append((_float(item.get("RescaleSlope"), 1.0), _float(item.get("RescaleIntercept"), 0.0)))
    return pairs


def _modality_transform(arr: np.ndarray, ds: Dataset, extra: dict[str, Any]) -> np.ndarray:
    """Apply Modality LUT or Rescale Slope/Intercept (and RT Dose scaling); record what was applied."""
    if ds.get("ModalityLUTSequence"):
        from pydicom.pixels import apply_modality_lut

        extra["modality_lut"] = True
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    n_frames = arr.shape[0] if arr.ndim == 3 else 1
    pairs = _rescale_pairs(ds, n_frames)
    scaling = _float(ds.get("DoseGridScaling"))
    if scaling is not None:
        pairs = [(s * scaling, b * scaling) for s, b in pairs]
        extra["dose_grid_scaling"] = scaling
        extra["dose_units"] = str(ds.get("DoseUnits", ""))
    slopes = np.array([p[0] for p in pairs])
    inters = np.array([p[1] for p in pairs])
    uniform = bool(np.all(slopes == slopes[0]) and np.all(inters == inters[0]))
    extra["rescale_slope"] = float(slopes[0]) if uniform else slopes.tolist()
    extra["rescale_intercept"] = float(inters[0]) if uniform else inters.tolist()
    if ds.get("RescaleType"):
        extra["rescale_type"] = str(ds.RescaleType)
    if uniform and slopes[0] == 1.0 and inters[0] == 0.0:
        return arr
    if arr.ndim == 3:
        return arr * slopes[:, None, None] + inters[:, None, None]
    return arr * slopes[0] + inters[0]


def _mosaic_count(ds: Dataset, name: str) -> int:
    """NumberOfImagesInMosaic from the Siemens private header, or a clear refusal."""
    try:
        elem = ds.get_private_item(0x0019, 0x0A, "SIEMENS MR HEADER")
    except KeyError:
        elem = ds.get(_MOSAIC_TAG)
    value = None if elem is None else elem.value
    if isinstance(value, bytes) and len(value) == 2:
        value = int.from_bytes(value, "little")
    if value is None or isinstance(value, bytes) or int(value) < 1:
        raise read_error(
            name,
            "Siemens MOSAIC image without a usable NumberOfImagesInMosaic (0019,100A); "
            "cannot tell how many slices are tiled in the frame",
        )
    return int(value)


def _unpack_mosaic(arr: np.ndarray, ds: Dataset, name: str, extra: dict[str, Any]) -> np.ndarray:
    """Cut a (rows, cols) mosaic into (n_slices, tile_rows, tile_cols), tiles read row by row."""
    n = _mosaic_count(ds, name)
    grid = math.ceil(math.sqrt(n))
    rows, cols = arr.shape
    if rows % grid or cols % grid:
        raise read_error(
            name,
            f"MOSAIC of {n} slices needs a {grid}x{grid} grid, which does not divide the {rows}x{cols} frame",
        )
    th, tw = rows // grid, cols // grid
    tiles = arr.reshape(grid, th, grid, tw).transpose(0, 2, 1, 3).reshape(grid * grid, th, tw)
    extra["mosaic"] = {
        "n_slices": n,
        "grid": [grid, grid],
        "tile_shape": [th, tw],
        "frame_shape": [rows, cols],
    }
    return tiles[:n]


def _pixel_spacing(ds: Dataset) -> list[float] | None:
    """In-plane (row, column) spacing in mm: PixelSpacing, functional groups, else ImagerPixelSpacing."""
    item = _group_item(ds, "PixelMeasuresSequence")
    for source in (ds, item):
        if source is not None and (ps := _floats(source.get("PixelSpacing"))) and len(ps) == 2:
            return ps
    ps = _floats(ds.get("ImagerPixelSpacing"))
    return ps if ps and len(ps) == 2 else None


def _slice_spacing(ds: Dataset) -> float | None:
    """Distance between frames in mm, from SpacingBetweenSlices, functional groups or RT Dose offsets."""
    item = _group_item(ds, "PixelMeasuresSequence")
    for source in (ds, item):
        if source is not None and (s := _float(source.get("SpacingBetweenSlices"))):
            return abs(s)
    offsets = _floats(ds.get("GridFrameOffsetVector"))
    if offsets and len(offsets) > 1:
        steps = np.diff(offsets)
        if np.allclose(steps, steps[0], rtol=1e-3):
            return abs(float(steps[0]))
    return None


def _identifiers(ds: Dataset) -> dict[str, str]:
    return {k: str(ds.get(k)) for k in _ID_KEYWORDS if ds.get(k) not in (None, "")}


def _header_extra(ds: Dataset) -> dict[str, Any]:
    """Acquisition details worth keeping next to the array (JSON-friendly values only)."""
    ts = ds.file_meta.get("TransferSyntaxUID")
    extra: dict[str, Any] = {
        "transfer_syntax": str(ts),
        "transfer_syntax_name": getattr(ts, "name", str(ts)),
        "photometric_interpretation": str(ds.get("PhotometricInterpretation", "")),
        "bits_allocated": ds.get("BitsAllocated"),
        "bits_stored": ds.get("BitsStored"),
        "pixel_representation": ds.get("PixelRepresentation"),
        "n_frames": int(_float(ds.get("NumberOfFrames"), 1) or 1),
        "image_type": [str(v) for v in ds.get("ImageType", [])],
    }
    for key, keyword in (
        ("gantry_tilt", "GantryDetectorTilt"),
        ("slice_thickness", "SliceThickness"),
        ("spacing_between_slices", "SpacingBetweenSlices"),
        ("slice_location", "SliceLocation"),
        ("instance_number", "InstanceNumber"),
    ):
        if (value := _float(ds.get(keyword))) is not None:
            extra[key] = value
    for key, keyword in (
        ("image_position", "ImagePositionPatient"),
        ("image_orientation", "ImageOrientationPatient"),
    ):
        if (values := _floats(ds.get(keyword))) is not None:
            extra[key] = values
    for key, keyword in (("manufacturer", "Manufacturer"), ("series_description", "SeriesDescription")):
        if ds.get(keyword):
            extra[key] = str(ds.get(keyword))
    if (ps := _pixel_spacing(ds)) is not None:
        extra["pixel_spacing"] = ps
    return extra


def _claimed_shape(ds: Dataset) -> tuple[int, int, int, int]:
    """(frames, rows, columns, samples) as the header claims them; palette colour decodes to 3."""
    if str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR":
        samples = 3
    else:
        samples = int(_float(ds.get("SamplesPerPixel"), 1) or 1)
    frames = int(_float(ds.get("NumberOfFrames"), 1) or 1)
    return frames, int(_float(ds.get("Rows"), 0) or 0), int(_float(ds.get("Columns"), 0) or 0), samples


def _decode(ds: Dataset, name: str) -> np.ndarray:
    """Raw stored pixel values, refusing missing pixel data, a header claiming more values than the
    size limit, and syntaxes without a decoder."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        sop = ds.get("SOPClassUID")
        kind = getattr(sop, "name", None) or str(ds.get("Modality", "unknown"))
        raise read_error(name, f"DICOM has no pixel data (it is a {kind} object)")
    check_size(name, _claimed_shape(ds), "DICOM image (frames x rows x columns x samples)")
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None:
        raise read_error(name, "DICOM file meta has no Transfer Syntax UID")
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise read_error(name, f"transfer syntax {ts} ({ts.name}) is not supported") from exc
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies)
        raise read_error(
            name,
            f"compressed transfer syntax '{ts.name}' ({ts}) cannot be decoded: no decoder plugin is "
            f"installed (needs one of: {needs})",
        )
    try:
        return np.asarray(ds.pixel_array)
    except _DECODE_ERRORS as exc:
        raise read_error(name, f"could not decode {ts.name} pixel data ({describe(exc)})") from exc


def _pixels(ds: Dataset, name: str, extra: dict[str, Any], *, as_gray: bool) -> tuple[np.ndarray, str]:
    """Decoded, colour-resolved, modality-transformed pixels and the stored dtype."""
    raw = _decode(ds, name)
    original = str(raw.dtype)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        raw = apply_color_lut(raw, ds)
        original = str(raw.dtype)  # values are the palette's, not the stored indices
        extra["palette_applied"] = True
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples > 1 or photometric == "PALETTE COLOR":
        extra["channels"] = 3
        if as_gray:
            extra["as_gray"] = "ITU-R 601 luma"
            return rgb_to_gray(raw), original
        if raw.ndim == 4:
            raise read_error(
                name, f"multi-frame colour DICOM gives a 4-D array {raw.shape}; read it with as_gray=True"
            )
        return raw, original
    return _modality_transform(raw, ds, extra), original


def read_dicom_file(path: str | Path, *, as_gray: bool = False) -> LoadedImage:
    """Read one DICOM file: 2-D image, multi-frame (frames, rows, cols) or Siemens mosaic (slices, h, w)."""
    name = str(path)
    detect_format(path)
    ds = _open(Path(path), name)
    extra = _header_extra(ds)
    arr, original = _pixels(ds, name, extra, as_gray=as_gray)
    image_type = [v.upper() for v in extra["image_type"]]
    ps = extra.get("pixel_spacing")
    spacing: tuple[float, ...] | None = None
    if "MOSAIC" in image_type and arr.ndim == 2:
        arr = _unpack_mosaic(arr, ds, name, extra)
        extra["mosaic"]["note"] = "ImagePositionPatient refers to the mosaic frame, not slice 0"
        step = _float(ds.get("SpacingBetweenSlices")) or _float(ds.get("SliceThickness"))
        if ps and step:
            spacing = (step, *ps)
    elif ps and arr.ndim == 2:
        spacing = tuple(ps)
    elif ps and arr.ndim == 3 and extra["n_frames"] > 1 and (step := _slice_spacing(ds)):
        spacing = (step, *ps)
    modality = str(ds.Modality) if ds.get("Modality") else None
    return loaded_image(
        path,
        "dicom",
        arr,
        original_dtype=original,
        modality=modality,
        spacing=spacing,
        identifiers=_identifiers(ds),
        extra=extra,
    )


def _series_files(folder: Path, name: str) -> tuple[list[tuple[Path, Dataset]], list[str]]:
    """The image datasets in ``folder`` (not recursive) and the names of files skipped."""
    if not folder.exists():
        raise read_error(name, "folder not found")
    if not folder.is_dir():
        raise read_error(name, "is a file, not a folder (use read_image for a single file)")
    found, skipped = [], []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.name.startswith("."):
            continue
        if f.suffix.lower() not in (".dcm", ".dicom") and not has_dicm_preamble(f):
            skipped.append(f.name)
            continue
        if f.stat().st_size == 0:
            raise read_error(f, "file is empty (0 bytes)")
        ds = _open(f, str(f))
        if not any(k in ds for k in _PIXEL_KEYWORDS):
            skipped.append(f.name)
            continue
        found.append((f, ds))
    if not found:
        raise read_error(name, f"no DICOM images in folder ({len(skipped)} other files skipped)")
    return found, skipped


def _tally(labels: list[str], files: list[Path]) -> str:
    """'a (27 files), b (1 file: x.dcm)' for refusing inconsistent series."""
    parts = []
    for label, n in Counter(labels).most_common():
        names = [f.name for f, lab in zip(files, labels, strict=True) if lab == label]
        parts.append(f"{label} ({n} file{'s' * (n > 1)}" + (f": {', '.join(names[:3])})" if n <= 3 else ")"))
    return ", ".join(parts)


def _check_consistent(items: list[tuple[Path, Dataset]], name: str) -> None:
    files = [f for f, _ in items]
    series = [str(ds.get("SeriesInstanceUID", "(none)")) for _, ds in items]
    if len(set(series)) > 1:
        raise read_error(
            name,
            f"mixed series, {len(set(series))} Series Instance UIDs: {_tally(series, files)}; "
            "put one series per folder",
        )
    for f, ds in items:
        frames = int(_float(ds.get("NumberOfFrames"), 1) or 1)
        if frames > 1 or "MOSAIC" in [str(v).upper() for v in ds.get("ImageType", [])]:
            raise read_error(f, "multi-frame or mosaic file inside a series folder; read it with read_image")
    shapes = [f"{ds.get('Rows')}x{ds.get('Columns')}x{ds.get('SamplesPerPixel', 1)}" for _, ds in items]
    if len(set(shapes)) > 1:
        raise read_error(name, f"inconsistent slice shapes (rows x cols x samples): {_tally(shapes, files)}")
    spacings = [str(_pixel_spacing(ds)) for _, ds in items]
    if len(set(spacings)) > 1:
        raise read_error(name, f"inconsistent PixelSpacing: {_tally(spacings, files)}")


def _order(
    items: list[tuple[Path, Dataset]], name: str, extra: dict[str, Any]
) -> tuple[list[int], np.ndarray | None]:
    """Slice order along the normal (fallback InstanceNumber), and positions along the normal in mm."""
    iops = [_floats(ds.get("ImageOrientationPatient")) for _, ds in items]
    ipps = [_floats(ds.get("ImagePositionPatient")) for _, ds in items]
    if all(o and len(o) == 6 for o in iops) and all(p and len(p) == 3 for p in ipps):
        orient = np.array(iops)
        if np.abs(orient - orient[0]).max() > 1e-4:
            raise read_error(name, "slices have different ImageOrientationPatient; not one volume")
        normal = np.cross(orient[0, :3], orient[0, 3:])
        positions = np.array(ipps) @ normal
        order = [int(i) for i in np.argsort(positions, kind="stable")]
        gaps = np.diff(positions[order])
        if len(gaps) and gaps.min() < 1e-3:
            raise read_error(
                name,
                f"{int((gaps < 1e-3).sum()) + 1} slices share a position; the folder holds "
                "several volumes (echoes, time points)",
            )
        extra["sort_key"] = "position along slice normal"
        return order, positions[order]
    numbers = [_float(ds.get("InstanceNumber")) for _, ds in items]
    if any(n is None for n in numbers):
        raise read_error(
            name,
            "cannot order slices: no ImagePositionPatient/ImageOrientationPatient "
            "and no InstanceNumber on every file",
        )
    if len(set(numbers)) < len(numbers):
        raise read_error(name, "slices share an InstanceNumber and carry no position; cannot order them")
    extra["sort_key"] = "InstanceNumber"
    return [int(i) for i in np.argsort(numbers, kind="stable")], None


def _series_geometry(
    first: Dataset, last: Dataset, positions: np.ndarray | None, n: int, extra: dict[str, Any]
) -> tuple[tuple[float, ...] | None, np.ndarray | None]:
    """Spacing per axis and the RAS affine (None when slice spacing is not uniform)."""
    ps = _pixel_spacing(first)
    if positions is None or n < 2:
        step = _float(first.get("SpacingBetweenSlices")) or _float(first.get("SliceThickness"))
        return ((step, *ps) if ps and step else None), None
    gaps = np.diff(positions)
    step = float(np.median(gaps))
    uniform = bool(np.allclose(gaps, step, rtol=0.01, atol=0.01))
    extra["slice_positions"] = [round(float(p), 4) for p in positions]
    extra["slice_spacing_uniform"] = uniform
    iop = np.array(_floats(first.ImageOrientationPatient))
    normal = np.cross(iop[:3], iop[3:])
    ipp0, ipp1 = np.array(_floats(first.ImagePositionPatient)), np.array(_floats(last.ImagePositionPatient))
    step_vec = (ipp1 - ipp0) / (n - 1)
    cos = abs(float(step_vec @ normal)) / float(np.linalg.norm(step_vec))
    extra["slice_shear_deg"] = round(math.degrees(math.acos(min(1.0, cos))), 4)
    spacing = (step, *ps) if ps else None
    if not uniform:
        extra["affine_unavailable"] = f"slice spacing not uniform ({gaps.min():.3f}..{gaps.max():.3f} mm)"
        return spacing, None
    if not ps:
        return spacing, None
    lps = np.eye(4)
    lps[:3, 0] = step_vec
    lps[:3, 1] = iop[3:] * ps[0]
    lps[:3, 2] = iop[:3] * ps[1]
    lps[:3, 3] = ipp0
    return spacing, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def read_dicom_series(folder: str | Path) -> LoadedImage:
    """Read a folder holding one DICOM series into (slices, rows, cols), ordered along the slice normal.

    Refuses mixed series, inconsistent shapes/orientations/spacings and duplicate positions. Non-DICOM
    files and DICOM objects without pixels are skipped (listed in ``extra["skipped_files"]``).
    """
    name = str(folder)
    items, skipped = _series_files(Path(folder), name)
    _check_consistent(items, name)
    check_size(
        name,
        (len(items), *_claimed_shape(items[0][1])[1:]),
        "DICOM series (slices x rows x columns x samples)",
    )
    extra: dict[str, Any] = {}
    order, positions = _order(items, name, extra)
    items = [items[i] for i in order]
    slices, dtypes, rescale = [], set(), set()
    for f, ds in items:
        slice_extra: dict[str, Any] = {}
        arr, original = _pixels(ds, str(f), slice_extra, as_gray=False)
        if arr.ndim != 2:
            raise read_error(f, f"expected one 2-D grayscale slice, got shape {arr.shape}")
        slices.append(np.asarray(arr, dtype=np.float32))
        dtypes.add(original)
        rescale.add((slice_extra.get("rescale_slope"), slice_extra.get("rescale_intercept")))
    first, last = items[0][1], items[-1][1]
    spacing, affine = _series_geometry(first, last, positions, len(items), extra)
    head = _header_extra(first)
    for key in ("image_position", "instance_number", "slice_location", "spacing_between_slices"):
        head.pop(key, None)
    head.update(extra)
    thickness = [_float(ds.get("SliceThickness")) for _, ds in items]
    if len(set(thickness)) > 1:
        head["slice_thickness"] = thickness
    head["n_slices"] = len(items)
    head["files"] = [f.name for f, _ in items]
    head["sop_instance_uids"] = [str(ds.get("SOPInstanceUID", "")) for _, ds in items]
    head["skipped_files"] = skipped
    if len(rescale) == 1:
        head["rescale_slope"], head["rescale_intercept"] = next(iter(rescale))
    else:
        head["rescale_per_slice"] = True
    if affine is not None:
        head["affine_space"] = "RAS"
    ids = _identifiers(first)
    ids.pop("SOPInstanceUID", None)
    modality = str(first.Modality) if first.get("Modality") else None
    return loaded_image(
        folder,
        "dicom",
        np.stack(slices),
        original_dtype="/".join(sorted(dtypes)),
        modality=modality,
        spacing=spacing,
        affine=affine,
        identifiers=ids,
        extra=head,
    )


def _quantise(arr: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Integers and (slope, intercept) as written in DS, so stored * slope + intercept ~= arr.

    Integer-valued data that fits int16 or uint16 is stored exactly (slope 1, intercept 0); otherwise
    the range is spread over int16 and the error is at most half a step (slope / 2).
    """
    lo, hi = float(arr.min()), float(arr.max())
    if np.all(arr == np.round(arr)):
        if lo >= -32768 and hi <= 32767:
            return arr.astype(np.int16), 1.0, 0.0
        if lo >= 0 and hi <= 65535:
            return arr.astype(np.uint16), 1.0, 0.0
    slope = float(format_number_as_ds((hi - lo) / 65000.0)) if hi > lo else 1.0
    slope = slope or 1.0
    intercept = float(format_number_as_ds((hi + lo) / 2.0))
    stored = np.rint((arr.astype(np.float64) - intercept) / slope)
    return np.clip(stored, -32768, 32767).astype(np.int16), slope, intercept


_DROP = (
    "FloatPixelData",
    "DoubleFloatPixelData",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "NumberOfFrames",
    "FrameIncrementPointer",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "ModalityLUTSequence",
    "IconImageSequence",
    "DigitalSignaturesSequence",
    "MACParametersSequence",
    "EncryptedAttributesSequence",
    "DataSetTrailingPadding",
    "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
    "PaletteColorLookupTableUID",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
    "SourceImageSequence",
    "InstanceCreatorUID",
)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


# Purpose of Reference of each Source Image Sequence item, from PS3.16 CID 7202 (Source Image Purpose
# of Reference). A restoration is an image processing operation on the referenced pixels: the input's
# pixels are processed, and the anchored original's fingerprints condition the processing. So both are
# DCM 121322 "Source image for image processing operation". Not 121320 "Uncompressed predecessor",
# which says the new image is a lossy-compressed copy of the referenced one, nor 121358 "For Processing
# predecessor", which says a For Presentation image was made from For Processing data.
_SOURCE_PURPOSE = ("121322", "Source image for image processing operation")
# PS3.16 CID 7005 (Contributing Equipment Purpose of Reference): equipment that made new pixel data
# from existing images is 109102 "Processing Equipment" (109103 "Modifying Equipment" changes
# attributes of an existing instance, not its pixels).
_EQUIPMENT_PURPOSE = ("109102", "Processing Equipment")
SERIES_NUMBER_OFFSET = 1000  # a derived series is numbered its source series' number plus this

# Type 2 attributes (present, possibly empty) of the modules every derived image keeps from its source:
# Patient (PS3.3 C.7.1.1), General Study (C.7.2.1), General Equipment (C.7.5.1), General Image (C.7.6.1).
_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "Manufacturer",
    "InstanceNumber",
)
# Type 2 attributes of modules that are there when the attribute keying them is: Frame of Reference
# (C.7.4.1) and Image Plane (C.7.6.2).
_TYPE2_IF_PRESENT = {
    "FrameOfReferenceUID": ("PositionReferenceIndicator",),
    "ImagePositionPatient": ("SliceThickness",),
}
# Type 2 attributes of the IOD-specific image modules: CT Image (C.8.2.1), MR Image (C.8.3.1).
_TYPE2_BY_CLASS = {
    CTImageStorage: ("KVP", "AcquisitionNumber"),
    MRImageStorage: ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength"),
}


# Body Part Examined values (PS3.16 CID 4031) of paired structures, whose Laterality is Type 2C
_PAIRED = frozenset(
    {
        "BREAST", "EYE", "EAR", "KIDNEY", "LUNG", "SHOULDER", "ARM", "ELBOW", "WRIST", "HAND", "HIP",
        "THIGH", "LEG", "KNEE", "ANKLE", "FOOT", "CLAVICLE", "FEMUR", "HUMERUS", "TIBIA", "FIBULA",
    }
)  # fmt: skip


def _fill_type2(ds: Dataset) -> list[str]:
    """Add the Type 2 (and the applicable Type 2C) attributes the source lacks, empty, so the derived
    instance conforms to its IOD; returns their keywords. Values are never invented."""
    sop_class = str(ds.get("SOPClassUID", ""))
    wanted = list(_TYPE2)
    for key, keywords in _TYPE2_IF_PRESENT.items():
        if key in ds:
            wanted += keywords
    wanted += _TYPE2_BY_CLASS.get(sop_class, ())
    if "ImageOrientationPatient" not in ds:  # General Image: 2C when there is no image plane
        wanted.append("PatientOrientation")
    body_part = str(ds.get("BodyPartExamined", "")).upper()
    if "ImageLaterality" not in ds and (not body_part or body_part in _PAIRED):
        wanted.append("Laterality")  # General Series: 2C for a paired (or unnamed) body part
    if sop_class in _TYPE2_BY_CLASS and "PatientOrientationCodeSequence" not in ds:
        wanted.append("PatientPosition")  # General Series: 2C for CT and MR
    if sop_class == MRImageStorage:
        sequence = [str(v) for v in ds.get("ScanningSequence", [])]
        variant = [str(v) for v in ds.get("SequenceVariant", [])]
        if not ("EP" in sequence and "SK" in variant):
            wanted.append("RepetitionTime")
        if "IR" in sequence:
            wanted.append("InversionTime")
    added = [k for k in wanted if k not in ds]
    for keyword in added:
        setattr(ds, keyword, None)
    if (
        str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
        and not ds.get("DeidentificationMethod")
        and not ds.get("DeidentificationMethodCodeSequence")
    ):
        # Type 1C once identity is removed; the source says it was removed but not how, and so do we
        ds.DeidentificationMethod = "Not stated in the source instance"
        added.append("DeidentificationMethod")
    return added


def _padding(src: Dataset, shape: tuple[int, ...]) -> tuple[np.ndarray, float] | None:
    """Where the source's pixels are padding (PS3.3 C.7.5.1.1.2: Pixel Padding Value, up to Pixel
    Padding Range Limit when given) and the padding's value after the modality transform; None when
    the source declares no padding."""
    pad = src.get("PixelPaddingValue")
    if (
        pad is None
        or isinstance(pad, bytes | MultiValue)
        or not str(src.get("PhotometricInterpretation", "")).startswith("MONOCHROME")
    ):
        return None
    bits = int(src.get("BitsAllocated", 16) or 16)
    signed = int(src.get("PixelRepresentation", 0) or 0) == 1

    def stored(value: Any) -> int:  # US read for signed data: back to its signed value
        value = int(value)
        return value - (1 << bits) if signed and value >= 1 << (bits - 1) else value

    limit = src.get("PixelPaddingRangeLimit")
    lo, hi = sorted((stored(pad), stored(limit if isinstance(limit, int) else pad)))
    raw = (
        _decode(src, "source of write_derived_dicom") if getattr(src, "file_meta", None) else src.pixel_array
    )
    if raw.shape != shape:
        return None
    mask = (raw >= lo) & (raw <= hi)
    value = float(_modality_transform(np.array([[stored(pad)]], dtype=np.float64), src, {})[0, 0])
    return mask, value


def _pad(stored: np.ndarray, mask: np.ndarray) -> int:
    """The stored padding value (that of the padded pixels); other pixels that quantised onto it
    move one step towards the image's values, so only padding reads back as padding."""
    value = int(stored[mask][0])
    clash = ~mask & (stored == value)
    if clash.any():
        info = np.iinfo(stored.dtype)
        step = 1 if value <= np.median(stored[~mask]) else -1
        if not info.min <= value + step <= info.max:
            step = -step
        stored[clash] = value + step
    return value


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = sop_class
    ref.ReferencedSOPInstanceUID = sop_instance
    ref.PurposeOfReferenceCodeSequence = [_code(*_SOURCE_PURPOSE)]
    return ref


def _source_images(src: Dataset, original: Mapping[str, str] | None) -> list[Dataset]:
    """The anchored original (when its UIDs are known), then the input when it is another instance."""
    refs = []
    if original and original.get("SOPInstanceUID"):
        sop_class = original.get("SOPClassUID") or src.SOPClassUID
        refs.append(_reference(str(sop_class), str(original["SOPInstanceUID"])))
    if not refs or refs[0].ReferencedSOPInstanceUID != src.SOPInstanceUID:
        refs.append(_reference(src.SOPClassUID, src.SOPInstanceUID))
    return refs


def _series_number(src: Dataset) -> int:
    """A new Series Number: the source's plus ``SERIES_NUMBER_OFFSET`` (IS holds up to 2**31 - 1)."""
    number = _float(src.get("SeriesNumber"))
    ok = number is not None and number.is_integer() and 0 <= number < 2**31 - 1 - SERIES_NUMBER_OFFSET
    return (int(number) if ok else 0) + SERIES_NUMBER_OFFSET  # type: ignore[arg-type]


def _now(ds: Dataset) -> datetime:
    """Current time in the dataset's TimezoneOffsetFromUTC (which governs all its dates), else local."""
    match = re.fullmatch(r"([+-])(\d\d)(\d\d)", str(ds.get("TimezoneOffsetFromUTC", "") or "").strip())
    tz = None
    if match:
        sign = -1 if match.group(1) == "-" else 1
        tz = timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return datetime.now(UTC).astimezone(tz)


def _load_source(source: Dataset | str | Path) -> Dataset:
    if isinstance(source, Dataset):
        return source
    detect_format(source)
    return _open(Path(source), str(source))


def write_derived_dicom(
    path: str | Path,
    array: np.ndarray,
    source: Dataset | str | Path,
    *,
    derivation_description: str,
    series_description: str | None = None,
    manufacturer: str = "PROSIMA",
    software_version: str = prosima.__version__,
    uid_entropy: list[str] | None = None,
    original: Mapping[str, str] | None = None,
    series_number: int | None = None,
) -> Dataset:
    """Write a 2-D ``array`` as a DERIVED\\SECONDARY image of ``source`` (PS3.3 C.7.6.1, C.12.1).

    Patient, study and frame of reference are kept; SOP Instance and Series Instance UIDs are new
    (deterministic from ``uid_entropy`` plus the source UIDs and descriptions, so slices of one
    source series derived with the same entropy share one series), and so is the Series Number
    (``series_number``, default the source's plus ``SERIES_NUMBER_OFFSET``). Pixels are int16/uint16
    with Rescale Slope/Intercept; Explicit VR Little Endian with file meta.

    Pixels that are padding in the source (Pixel Padding Value) are written as padding, whatever
    ``array`` holds there, and Pixel Padding Value is kept. The Source Image Sequence names
    ``original`` (the anchored original's ``SOPClassUID`` and ``SOPInstanceUID``, when known) and the
    source when it is another instance; a Contributing Equipment item names this software as
    Processing Equipment. Type 2 attributes the source lacks are written empty. Returns the dataset.
    """
    src = _load_source(source)
    arr = check_image(array, f"write_derived_dicom {path}")
    if arr.ndim != 2:
        raise ImageError(
            f"write_derived_dicom {path}: writes one 2-D image, got shape {arr.shape}; "
            "write one file per slice"
        )
    if not derivation_description.strip():
        raise ValueError("derivation_description must say how the image was derived")
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"):
        if not src.get(keyword):
            where = "source dataset" if isinstance(source, Dataset) else str(source)
            raise ImageReadError(f"{where}: source for write_derived_dicom has no {keyword}")
    frames = int(_float(src.get("NumberOfFrames"), 1) or 1)
    if frames > 1 or (src.get("Rows"), src.get("Columns")) != arr.shape:
        raise ImageError(
            f"write_derived_dicom {path}: array shape {arr.shape} does not match the source "
            f"frame {src.get('Rows')}x{src.get('Columns')} ({frames} frame(s)); "
            "resample to the source grid first"
        )
    padding = _padding(src, arr.shape)
    if padding is not None:
        arr = arr.copy()
        arr[padding[0]] = padding[1]
    stored, slope, intercept = _quantise(arr)
    pad_value = _pad(stored, padding[0]) if padding is not None and padding[0].any() else None

    ds = copy.deepcopy(src)
    for _ in ds.iterall():  # decode every raw element before the encoding changes
        pass
    ds.remove_private_tags()
    for tag in [e.tag for e in ds if e.tag.group & 0xFF00 in (0x5000, 0x6000)]:
        del ds[tag]
    for keyword in _DROP:
        if keyword in ds:
            delattr(ds, keyword)

    extra_entropy = [derivation_description, series_description or ""]
    if uid_entropy is None:
        series_uid, sop_uid = generate_uid(), generate_uid()
    else:
        series_uid = generate_uid(
            entropy_srcs=[*uid_entropy, *extra_entropy, "series", str(src.get("SeriesInstanceUID", ""))]
        )
        sop_uid = generate_uid(
            entropy_srcs=[*uid_entropy, *extra_entropy, "instance", str(src.SOPInstanceUID)]
        )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = src.SOPClassUID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PROSIMA_{prosima.__version__}"[:16]
    ds.file_meta = meta
    photometric = str(src.get("PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        photometric = "MONOCHROME2"
    ds.set_pixel_data(stored, photometric, 16, generate_instance_uid=False)
    ds.RescaleSlope = format_number_as_ds(slope)
    ds.RescaleIntercept = format_number_as_ds(intercept)
    if pad_value is not None:
        ds.add_new(0x00280120, "SS" if stored.dtype == np.int16 else "US", pad_value)  # PixelPaddingValue

    now = _now(src)
    ds.SOPInstanceUID = sop_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = _series_number(src) if series_number is None else int(series_number)
    value3 = [str(v) for v in src.get("ImageType", [])][2:3]
    ds.ImageType = ["DERIVED", "SECONDARY", *[v for v in value3 if v and v.upper() != "MOSAIC"]]
    ds.DerivationDescription = derivation_description
    default_desc = f"{src.get('SeriesDescription', '')} derived".strip()
    ds.SeriesDescription = (series_description or default_desc)[:64]
    ds.InstanceCreationDate = ds.ContentDate = ds.SeriesDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.ContentTime = ds.SeriesTime = now.strftime("%H%M%S.%f")

    ds.SourceImageSequence = _source_images(src, original)

    equipment = Dataset()
    equipment.Manufacturer = manufacturer
    equipment.SoftwareVersions = software_version
    equipment.ContributionDateTime = now.strftime("%Y%m%d%H%M%S.%f%z")
    equipment.ContributionDescription = derivation_description
    equipment.PurposeOfReferenceCodeSequence = [_code(*_EQUIPMENT_PURPOSE)]
    ds.ContributingEquipmentSequence = [*ds.get("ContributingEquipmentSequence", []), equipment]
    _fill_type2(ds)

    if any(not s.isascii() for s in (derivation_description, ds.SeriesDescription, manufacturer)):
        ds.SpecificCharacterSet = "ISO_IR 192"
    try:
        pydicom.dcmwrite(Path(path), ds, enforce_file_format=True)
    except (ValueError, TypeError, struct.error) as exc:
        raise ImageError(
            f"write_derived_dicom {path}: could not encode the dataset ({describe(exc)})"
        ) from exc
    return ds

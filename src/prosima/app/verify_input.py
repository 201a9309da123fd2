"""A file to verify, read and checked before any ledger work: a 2-D image, or a volume (a 3-D
NIfTI file or a DICOM series folder) with the axis its slices are taken along."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prosima.errors import InputError
from prosima.imaging.io import LoadedImage, is_volume, read_image_2d, read_volume


@dataclass(frozen=True)
class VerifyInput:
    """The file as read; ``axis``: the slice axis of a volume (``None``: a 2-D image)."""

    path: Path
    loaded: LoadedImage
    axis: int | None

    @property
    def is_volume(self) -> bool:
        return self.axis is not None

    @property
    def slices(self) -> int:
        return 1 if self.axis is None else int(self.loaded.array.shape[self.axis])


def read_verify_input(
    image: Path, *, heatmap: bool = False, prov_export: bool = False, intoto_export: bool = False
) -> VerifyInput:
    """Read ``image`` for verification; the heatmap and the exports are refused for a volume."""
    if is_volume(image):
        if heatmap or prov_export or intoto_export:
            raise InputError(
                "--heatmap, --prov and --intoto apply to 2-D images; verify a volume's slice for them"
            )
        loaded, axis = read_volume(image)
        return VerifyInput(image, loaded, axis)
    return VerifyInput(image, read_image_2d(image), None)

"""The one size limit on images read from files, checked from the header before any data is read.

The limit counts values: pixels or voxels times channels (and frames). The default, 512 Mi values,
is 2 GiB once decoded to float32, which every reader returns. Raise it for one process with the
environment variable ``PROSIMA_MAX_IMAGE_PIXELS`` (read only by :func:`max_pixels`), or for one
command with its ``--max-pixels`` option (applied through :func:`pixel_limit`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

from prosima.imaging.validation import ImageError, ImageReadError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ENV_VAR",
    "ImageTooLargeError",
    "check_size",
    "max_pixels",
    "open_pillow",
    "pixel_limit",
]

ENV_VAR = "PROSIMA_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 512 * 2**20
_FLOAT32_BYTES = 4
_override: ContextVar[int | None] = ContextVar("prosima_max_pixels", default=None)
_pillow_lock = threading.Lock()


class ImageTooLargeError(ImageReadError):
    """A file whose header claims more values than the limit; nothing of its data was read."""


def _positive(value: object, what: str) -> int:
    try:
        limit = int(str(value).strip().replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise ImageError(f"{what} must be a positive whole number of values (pixels), got {value!r}")
    return limit


def max_pixels() -> int:
    """The limit in force: a :func:`pixel_limit` block's, else ``$PROSIMA_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`."""
    override = _override.get()
    if override is not None:
        return override
    text = os.environ.get(ENV_VAR, "")
    return _positive(text, ENV_VAR) if text.strip() else DEFAULT_MAX_PIXELS


@contextmanager
def pixel_limit(limit: int | None) -> Iterator[None]:
    """Within the block, images may hold up to ``limit`` values; None keeps the limit in force."""
    if limit is None:
        yield
        return
    token = _override.set(_positive(limit, "--max-pixels"))
    try:
        yield
    finally:
        _override.reset(token)


def _gib(values: int) -> str:
    return f"{values * _FLOAT32_BYTES / 2**30:.1f} GiB"


def check_size(path: str | Path, shape: Sequence[int], what: str = "image") -> None:
    """Refuse ``path`` when the ``shape`` its header claims holds more values than the limit."""
    dims = [int(n) for n in shape]
    values = math.prod(dims)
    limit = max_pixels()
    if values <= limit:
        return
    claimed = " x ".join(str(n) for n in dims)
    raise ImageTooLargeError(
        f"{path}: the header claims a {what} of {claimed} = {values:,} values ({_gib(values)} as "
        f"float32), over the limit of {limit:,} values ({_gib(limit)}); nothing was read. If the "
        f"file is genuine, raise the limit with {ENV_VAR}=<values> or 'prosima --max-pixels <values> ...'"
    )


def open_pillow(path: str | Path) -> Image.Image:
    """Open ``path`` with Pillow, header only, and refuse it by :func:`check_size` before any
    pixel is decoded. Pillow's own decompression-bomb limit is replaced by this one (for the
    duration of the open, under a lock), so that one limit, and one message, holds for every
    format. Raises ``OSError``/``SyntaxError``/``ValueError`` for files Pillow cannot parse."""
    from PIL import Image

    with _pillow_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            img = Image.open(Path(path))
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    width, height = img.size
    try:
        check_size(path, (height, width, len(img.getbands())), f"{img.format or 'Pillow'} image")
    except ImageTooLargeError:
        img.close()
        raise
    return img

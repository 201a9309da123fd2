"""Reading the fields of a corruption or tamper record (plain JSON), with errors naming the field.

A record may come back from a JSON file, so a pair may be a list and a number an int; these readers
accept both and refuse anything else with an ImageError naming the record and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from prosima.imaging.validation import ImageError


def is_whole(value: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_seed(seed: Any) -> int:
    """``seed`` as an int, or ImageError when it is not a non-negative integer."""
    if not is_whole(seed) or seed < 0:
        raise ImageError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def entry(record: Mapping[str, Any], key: str, what: str) -> Any:
    """``record[key]``, or ImageError saying that ``what`` (e.g. "gaussian record") lacks it."""
    if not isinstance(record, Mapping):
        raise ImageError(f"{what} must be a mapping, got {type(record).__name__}")
    try:
        return record[key]
    except KeyError:
        raise ImageError(f"{what} lacks {key!r}") from None


def _finite(value: Any) -> bool:
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    return real and bool(np.isfinite(value))


def number(record: Mapping[str, Any], key: str, what: str) -> float:
    """A finite real number field as a float."""
    value = entry(record, key, what)
    if not _finite(value):
        raise ImageError(f"{what}: {key} must be a finite number, got {value!r}")
    return float(value)


def whole(record: Mapping[str, Any], key: str, what: str) -> int:
    """A whole-number field as an int."""
    value = entry(record, key, what)
    if not is_whole(value):
        raise ImageError(f"{what}: {key} must be a whole number, got {value!r}")
    return int(value)


def whole_pair(record: Mapping[str, Any], key: str, what: str) -> tuple[int, int]:
    """A field of two whole numbers (a tuple, or a list after JSON) as a tuple of ints."""
    value = entry(record, key, what)
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(is_whole(v) for v in value):
        raise ImageError(f"{what}: {key} must be two whole numbers, got {value!r}")
    return int(value[0]), int(value[1])


def number_pair(record: Mapping[str, Any], key: str, what: str) -> tuple[float, float]:
    """A field of two finite numbers (a tuple, or a list after JSON) as a tuple of floats."""
    value = entry(record, key, what)
    if not isinstance(value, list | tuple) or len(value) != 2 or not all(_finite(v) for v in value):
        raise ImageError(f"{what}: {key} must be two finite numbers, got {value!r}")
    return float(value[0]), float(value[1])

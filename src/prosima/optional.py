"""Lazy imports of optional extras, with an install hint when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from prosima.errors import InputError


class MissingExtraError(InputError, ImportError):
    """An optional dependency is not installed."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise a clear error naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"'{module}' is not installed; it comes with the optional extra '{extra}': "
            f"pip install 'prosima[{extra}]'"
        ) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True

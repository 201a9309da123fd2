"""Option values given as comma-separated lists."""

from __future__ import annotations

from prosima.errors import InputError


def csv_list(text: str) -> list[str]:
    """The non-empty comma-separated items of ``text``, stripped."""
    return [t.strip() for t in text.split(",") if t.strip()]


def number_list(text: str, option: str) -> list[float]:
    """Comma-separated numbers, refused naming ``option`` otherwise."""
    try:
        return [float(s) for s in csv_list(text)]
    except ValueError:
        raise InputError(f"{option} must be comma-separated numbers, got {text!r}") from None


def integer_list(text: str, option: str) -> list[int]:
    """Comma-separated integers, refused naming ``option`` otherwise."""
    try:
        return [int(s) for s in csv_list(text)]
    except ValueError:
        raise InputError(f"{option} must be comma-separated integers, got {text!r}") from None

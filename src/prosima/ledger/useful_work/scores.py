"""Scores on the wire and in records: the canonical encoding has no floats, so a score travels
as the shortest text that reads back to the same float."""

from __future__ import annotations

import math


def score_text(x: float | None) -> str | None:
    """A float as its shortest round-trip text (``None`` stays ``None``)."""
    return None if x is None else repr(float(x))


def score_value(s: str | None) -> float | None:
    """The float a ``score_text`` wrote."""
    return None if s is None else float(s)


def claimed_score(text: str) -> float | None:
    """A node's claimed score, ``None`` when it is not a finite number."""
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def finite_or_none(x: float | None) -> float | None:
    """``x`` for JSON: ``None`` for no value or an infinite one (no minimum)."""
    return x if x is not None and math.isfinite(x) else None

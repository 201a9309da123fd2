"""The root of every error prosima raises on purpose, and the two kinds a caller acts on.

``InputError``: the input was refused (a bad file, option or ledger); nothing was done. The command
line exits 2. ``NegativeVerdict``: the check ran and its answer is no (a tampered store, a claim the
ledger does not support). The command line exits 1. An error of both kinds is a negative verdict.

This module imports nothing from prosima, so every layer (the imaging half, the ledger half and the
layers above) may raise these.
"""

from __future__ import annotations

from typing import Any


class ProsimaError(Exception):
    """Base class of every error prosima raises on purpose; its message names the problem."""

    def details(self) -> dict[str, Any]:
        """Machine-readable facts beside the message (empty unless a subclass has some)."""
        return {}


class InputError(ProsimaError):
    """Refused input: a file, option or ledger that cannot be used as given; nothing was done."""


class NotFound(InputError):
    """What was named (a record, a block, a job, a file) does not exist here; a 404 in the service."""


class NegativeVerdict(ProsimaError):
    """The check ran and said no: what was asked about does not hold."""


class Refused(NegativeVerdict):
    """The evidence does not support what was asked for, so it was not done; nothing was written."""

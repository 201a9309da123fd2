"""How a benchmark's measurement reports its progress without printing: steps of a task and notes."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What ``measure`` tells whoever watches it; the renderer decides how (or whether) to show it."""

    def advance(self, task: str, total: int) -> None:
        """One more unit of ``task`` done, out of ``total``."""

    def note(self, message: str) -> None:
        """A line about how the run is going (rich markup allowed)."""


class Silent:
    """Progress that nobody watches."""

    def advance(self, task: str, total: int) -> None:
        """Ignore the step."""

    def note(self, message: str) -> None:
        """Ignore the note."""


SILENT = Silent()

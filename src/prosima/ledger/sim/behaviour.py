"""What a faulty node does: the named behaviours, and one node's fault (behaviour and start).

- ``silent``: sends nothing (a crash, as MPI allows it to be modelled).
- ``garbage``: signs garbage: transactions and commit votes with invalid signatures, malformed
  proposals, blocks and prepares, and false claims that valid transactions are invalid.
- ``double-sign``: signs two different headers at one height and sends each to half the nodes.
- ``equivocate``: as leader, proposes conflicting blocks to different nodes and broadcasts a
  forged block; otherwise double-signs.
- ``crash-leader``: honest until it is first leader, then silent for good (the next leader takes
  over after the timeout).
- ``random``: one of the above (or honest) per message, drawn from the seed.

A faulty node keeps the honest node's state and only lies in what it sends (``adversary``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Behaviour(StrEnum):
    """The named faulty behaviours."""

    SILENT = "silent"
    GARBAGE = "garbage"
    DOUBLE_SIGN = "double-sign"
    EQUIVOCATE = "equivocate"
    CRASH_LEADER = "crash-leader"
    RANDOM = "random"


@dataclass(frozen=True)
class Fault:
    """Node ``node`` behaves as ``behaviour`` from height ``start`` on."""

    node: int
    behaviour: Behaviour
    start: int = 0

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {"node": self.node, "behaviour": str(self.behaviour), "from_height": self.start}

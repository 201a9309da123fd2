"""The ``--byzantine`` grammar: which nodes misbehave, how, and from when. One grammar and one
parser serve the consensus simulator and proof of useful work; each maps an entry's behaviour name
to its own behaviours and resolves its target its own way::

    SPEC   = ITEM ["," ITEM ...]                                (blank items are skipped)
    ITEM   = [COUNT "x"] BEHAVIOUR ["@" TARGET] [":" FROM]      e.g. 2xsilent@hub:3
           | NODE ":" BEHAVIOUR                                 e.g. 5:copy (the same as copy@5)
    TARGET = NODE | "hub" | "any"                               (default: any)

``NODE`` is a node index, ``hub`` the highest-degree node not taken yet, ``any`` a seeded random
node not taken yet; ``FROM`` is the first height the behaviour applies at (default 0). Behaviour
names are read case-insensitively, with ``-`` and ``_`` alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

B = TypeVar("B", bound=StrEnum)
Target = int | Literal["hub", "any"]

_NODE_FIRST = re.compile(r"(?P<node>\d+)\s*:\s*(?P<name>[A-Za-z_-]+)")
_NAME_FIRST = re.compile(
    r"(?:(?P<count>\d+)x)?(?P<name>[A-Za-z_-]+)(?:\s*@\s*(?P<target>hub|any|\d+))?(?:\s*:\s*(?P<start>\d+))?"
)
FORMS = "NODE:BEHAVIOUR or [COUNTx]BEHAVIOUR[@NODE|hub|any][:FROM]"


@dataclass(frozen=True)
class SpecEntry:
    """One item of a spec: ``count`` nodes chosen by ``target`` behave as ``name`` from ``start`` on."""

    item: str  # the item as written
    name: str  # the behaviour as written
    count: int = 1
    target: Target = "any"
    start: int = 0

    def behaviour(self, choices: type[B]) -> B:
        """The member of ``choices`` this entry names; ``ValueError`` listing them otherwise."""
        wanted = _fold(self.name)
        for member in choices:
            if _fold(member.value) == wanted:
                return member
        names = ", ".join(m.value for m in choices)
        where = f" for node {self.target}" if isinstance(self.target, int) else ""
        raise ValueError(f"unknown behaviour {self.name!r}{where}; choose from {names}")


def _fold(name: str) -> str:
    return name.lower().replace("_", "-")


def parse_spec(spec: str, *, example: str) -> Iterator[SpecEntry]:
    """The entries of ``spec``, in order, read one at a time (so that a caller's check of an entry
    comes before a later item's syntax error); ``ValueError`` naming an unreadable item, with
    ``example`` (the caller's typical spec) as a hint."""
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        m = _NODE_FIRST.fullmatch(item)
        if m is not None:
            yield SpecEntry(item, m["name"], target=int(m["node"]))
            continue
        m = _NAME_FIRST.fullmatch(item)
        if m is None:
            raise ValueError(f"cannot read {item!r} in --byzantine; expected {FORMS}, e.g. {example}")
        target: Target = m["target"] or "any"  # type: ignore[assignment]
        if target not in ("hub", "any"):
            target = int(target)
        yield SpecEntry(item, m["name"], int(m["count"] or 1), target, int(m["start"] or 0))

"""Rollback and fork detection the transparency-log way: clients keep certified tree heads and
check that the log they see now only appended to the last head they saw.

``since(ledger, kept)`` is the one-off check (``prosima verify --since HEAD``). A ``Witness`` keeps
a file of the heads it has seen of one log, pins the registry it first saw (or the one it is
given), and refuses a log that shrank, forked or changed its node keys; it records a head only
after it checked it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prosima.ledger.errors import LedgerError, ProofError
from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.hexjson import get_hex, loads, require_fields
from prosima.ledger.log.input_files import read_bounded
from prosima.ledger.log.proof import consistency_problems
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.tree_head import SignedTreeHead

WITNESS = "prosima.ledger.log.witness"
MAX_STATE = 64 << 20


def since(ledger: Ledger, kept: SignedTreeHead, registry: Registry | None = None) -> list[str]:
    """What is wrong with ``ledger`` now, given a tree head a client kept (certified by
    ``registry``, default the ledger's): nothing when the log only appended to it."""
    head, path = ledger.extension_of(kept)
    return consistency_problems(kept, head, path, registry or ledger.registry)


def read_head(path: Path) -> SignedTreeHead:
    """A tree head kept in a JSON file (as ``prosima ledger head`` writes it)."""
    data = read_bounded(path, 1 << 20, "tree head file")
    try:
        return SignedTreeHead.from_json(loads(data))
    except ProofError as exc:
        raise LedgerError(f"{path.name}: {exc}") from None


@dataclass
class Witness:
    """The heads seen of one log (oldest first) and the registry digest pinned at first sight."""

    path: Path
    registry: bytes | None = None
    heads: list[SignedTreeHead] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> Witness:
        """The witness state in ``path``; a new, empty witness when the file does not exist."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            d = require_fields(loads(read_bounded(path, MAX_STATE, "witness file")), _FIELDS, "witness")
            if d["type"] != WITNESS or d["version"] != 1 or not isinstance(d["heads"], list):
                raise ProofError("not a version 1 witness file")
            heads = [SignedTreeHead.from_json(h) for h in d["heads"]]
            return cls(path, get_hex(d, "registry", "witness", 32), heads)
        except ProofError as exc:
            raise LedgerError(f"witness file {path.name}: {exc}") from None

    @property
    def last(self) -> SignedTreeHead | None:
        """The newest head seen."""
        return self.heads[-1] if self.heads else None

    def observe(self, ledger: Ledger, registry: Registry | None = None) -> list[str]:
        """Check ``ledger``'s current head against the last one seen (under the pinned registry:
        ``registry`` if given, else the one first seen); record it when nothing is wrong and
        return the problems otherwise (nothing is recorded then)."""
        trusted = registry or ledger.registry
        if self.registry is not None and trusted.digest != self.registry:
            return ["the registry is not the one this witness pinned (node keys were replaced)"]
        if ledger.registry.digest != trusted.digest:
            return ["the ledger's node registry is not the trusted one"]
        head = ledger.tree_head()
        problem = head.check(trusted)
        if problem is not None:
            return [f"tree head certificate: {problem}"]
        if self.last is not None:
            problems = since(ledger, self.last, trusted)
            if problems:
                return problems
        self.registry = trusted.digest
        if self.last is None or head.tree_size > self.last.tree_size:
            self.heads.append(head)
        self._save()
        return []

    def _save(self) -> None:
        """Write the state atomically (a temporary file renamed over the old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_json(), fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def to_json(self) -> dict[str, Any]:
        """The state file's content."""
        return {
            "type": WITNESS,
            "version": 1,
            "registry": "" if self.registry is None else self.registry.hex(),
            "heads": [h.to_json() for h in self.heads],
        }


_FIELDS = ("type", "version", "registry", "heads")

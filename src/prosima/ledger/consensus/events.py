"""The faults a consensus node observes: what kind, where, and the node it blames."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class FaultEvent(StrEnum):
    """What a node saw go wrong in a round (the value is the text reports show)."""

    SILENT = "silent"
    MALFORMED_MESSAGE = "malformed message"
    INVALID_TRANSACTION = "invalid transaction"
    INVALID_TRANSACTION_SIGNATURE = "invalid transaction signature"
    FALSE_REJECTION = "false rejection"
    DOUBLE_SIGNING = "double signing (two headers signed at one height)"
    LEADER_TIMEOUT = "leader timeout (no proposal)"
    INVALID_PROPOSAL = "invalid proposal"
    CONFLICTING_PROPOSALS = "conflicting proposals"
    INVALID_COMMIT_SIGNATURE = "invalid commit signature"
    UNKNOWN_HEADER_COMMIT = "commit for an unknown header"
    LEADER_BLOCK_MISSING = "leader block missing (timeout)"
    LEADER_BLOCK_INVALID = "leader block invalid"
    INVALID_CERTIFICATE_OFFERED = "invalid certificate offered"
    VIEW_CHANGE = "view change"


class Event(NamedTuple):
    """A fault a node observed: where, what, and the node it blames (-1: unknown)."""

    height: int
    view: int
    kind: FaultEvent
    culprit: int

"""Exceptions raised by the ledger; every one carries a message that names the problem."""

from __future__ import annotations

from typing import Any

from prosima.errors import InputError, NegativeVerdict


class LedgerError(InputError):
    """Base class of every error the ledger raises on purpose."""


class EncodingError(LedgerError):
    """Bytes that are not the one canonical encoding of a well-formed value."""


class NodeKeyFileError(LedgerError):
    """A key file that is missing, malformed or readable by others."""


class StoreError(LedgerError):
    """A store that cannot be opened, created or written."""


class TamperedStoreError(StoreError, NegativeVerdict):
    """A store whose contents fail verification; ``fault`` says where and what."""

    def __init__(self, fault: object) -> None:
        super().__init__(f"store refused: {fault}")
        self.fault = fault

    def details(self) -> dict[str, Any]:
        """The fault as JSON (where and what), when it has that form."""
        return {"fault": getattr(self.fault, "to_json", lambda: None)()}


class ProofError(LedgerError):
    """A proof document that is malformed, or that does not verify."""

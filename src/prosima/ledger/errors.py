"""Exceptions raised by the ledger; every one carries a message that names the problem."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error the ledger raises on purpose."""


class EncodingError(LedgerError):
    """Bytes that are not the one canonical encoding of a well-formed value."""


class KeyFileError(LedgerError):
    """A key file that is missing, malformed or readable by others."""


class StoreError(LedgerError):
    """A store that cannot be opened, created or written."""


class TamperedStoreError(StoreError):
    """A store whose contents fail verification; ``fault`` says where and what."""

    def __init__(self, fault: object) -> None:
        super().__init__(f"store refused: {fault}")
        self.fault = fault


class ProofError(LedgerError):
    """A proof document that is malformed, or that does not verify."""

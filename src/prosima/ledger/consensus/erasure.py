"""Erasure coding of stored payloads with ``zfec`` (Reed-Solomon over GF(2^8), Tahoe-LAFS's library).

``k`` data and ``m`` parity fragments, each ``ceil(size / k)`` bytes, go to ``k + m`` distinct nodes:
any ``k`` of them rebuild the payload, so any ``m`` node losses lose nothing, at a storage overhead
of ``(k + m) / k`` instead of ``r`` for ``r`` full copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zfec import easyfec

from prosima.ledger.errors import LedgerError

MAX_FRAGMENTS = 256


class ErasureError(LedgerError):
    """Too few (or malformed) fragments to rebuild a payload."""


@dataclass(frozen=True)
class ErasureCode:
    """A ``(k, m)`` code: ``k`` fragments needed, ``m`` losses tolerated."""

    k: int
    m: int

    def __post_init__(self) -> None:
        if self.k < 1 or self.m < 0 or self.k + self.m > MAX_FRAGMENTS:
            raise ValueError(f"need k >= 1, m >= 0 and k + m <= {MAX_FRAGMENTS}, got k={self.k}, m={self.m}")

    @classmethod
    def parse(cls, text: str) -> ErasureCode:
        """``"k,m"``, e.g. ``"8,2"``."""
        try:
            k, m = (int(p) for p in text.split(","))
        except ValueError:
            raise ValueError(f"erasure code must be 'k,m' (e.g. 8,2), got {text!r}") from None
        return cls(k, m)

    @property
    def n(self) -> int:
        """Fragments made per payload."""
        return self.k + self.m

    @property
    def overhead(self) -> float:
        """Stored bytes per payload byte (ignoring the padding of the last fragment)."""
        return self.n / self.k

    def fragment_size(self, size: int) -> int:
        """Bytes in each fragment of a ``size``-byte payload."""
        return max(1, -(-size // self.k))

    def encode(self, data: bytes) -> list[bytes]:
        """``k + m`` equal-sized fragments; fragment ``i`` is the one stored on the ``i``-th node."""
        if not data:
            data = b"\x00"  # zfec needs one byte; ``decode`` trims to the recorded size
        return list(easyfec.Encoder(self.k, self.n).encode(bytes(data)))

    def decode(self, fragments: Mapping[int, bytes], size: int) -> bytes:
        """Rebuild a ``size``-byte payload from any ``k`` fragments (index -> bytes)."""
        usable = {i: f for i, f in fragments.items() if 0 <= i < self.n}
        if len(usable) < self.k:
            raise ErasureError(
                f"cannot rebuild: {len(usable)} of the {self.n} fragments survive, {self.k} are needed"
            )
        want = self.fragment_size(max(size, 1))
        chosen = sorted(usable.items())[: self.k]
        if any(len(f) != want for _, f in chosen):
            raise ErasureError(f"fragments must be {want} bytes each for a {size}-byte payload")
        padlen = want * self.k - max(size, 1)
        data = easyfec.Decoder(self.k, self.n).decode([f for _, f in chosen], [i for i, _ in chosen], padlen)
        return bytes(data[:size])

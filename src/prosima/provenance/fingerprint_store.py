"""A content-addressed store of latent fingerprints: each one is a file named by the SHA-256 of
its canonical bytes, and is checked against that name (and so against the ledger, which records
it) every time it is read. A forged or damaged fingerprint is refused before any use."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.encoding import decode, encode
from prosima.models.fingerprint import FINGERPRINT_VERSION, Fingerprint

STORE_DIR = "fingerprints"
SHARD_TAG = b"prosima.shard-fingerprint.v1"


class FingerprintStoreError(LedgerError):
    """A fingerprint that is missing, malformed, or does not match its hash."""


def fingerprint_bytes(fp: Fingerprint) -> bytes:
    """Canonical CBOR of a fingerprint: version, shape, k, dim, int8 codes, float32 LE scales."""
    return encode(
        {
            "format": FINGERPRINT_VERSION,
            "shape": list(fp.shape),
            "k": fp.k,
            "dim": fp.dim,
            "codes": np.ascontiguousarray(fp.codes).tobytes(),
            "scales": np.asarray(fp.scales, dtype="<f4").tobytes(),
        }
    )


def fingerprint_from_bytes(data: bytes) -> Fingerprint:
    """Parse canonical fingerprint bytes; ``FingerprintStoreError`` names what is wrong."""
    try:
        body = decode(data)
        if not isinstance(body, dict) or body.get("format") != FINGERPRINT_VERSION:
            raise FingerprintStoreError(f"not a {FINGERPRINT_VERSION} record")
        k, dim = int(body["k"]), int(body["dim"])
        codes = np.frombuffer(body["codes"], dtype=np.int8).reshape(k, dim).copy()
        scales = np.frombuffer(body["scales"], dtype="<f4").astype(np.float32)
        return Fingerprint(codes, scales, (int(body["shape"][0]), int(body["shape"][1])), k)
    except FingerprintStoreError:
        raise
    except (LedgerError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise FingerprintStoreError(f"malformed fingerprint record: {exc}") from None


def fingerprint_digest(fp: Fingerprint) -> bytes:
    """SHA-256 of the fingerprint's canonical bytes: its name in the store."""
    return hashlib.sha256(fingerprint_bytes(fp)).digest()


def shard_fingerprint_digests(fp: Fingerprint) -> list[bytes]:
    """Per shard, SHA-256 of the tagged canonical bytes of its quantised embedding."""
    return [hashlib.sha256(SHARD_TAG + fp.shard_bytes(i)).digest() for i in range(fp.k)]


class FingerprintStore:
    """Fingerprints under ``root``, one file each, ``<first two hex>/<sha256 hex>.cbor``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, digest: bytes) -> Path:
        name = digest.hex()
        return self.root / name[:2] / f"{name}.cbor"

    def put(self, fp: Fingerprint) -> bytes:
        """Store ``fp`` (atomically: write a temporary file, then rename) and return its digest."""
        data = fingerprint_bytes(fp)
        digest = hashlib.sha256(data).digest()
        path = self._path(digest)
        if path.is_file():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: bytes) -> Fingerprint:
        """The fingerprint named ``digest``, refused unless its bytes hash to that name."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FingerprintStoreError(
                f"fingerprint {digest.hex()} is not in the store {self.root}"
            ) from None
        actual = hashlib.sha256(data).digest()
        if actual != digest:
            raise FingerprintStoreError(
                f"fingerprint {digest.hex()} in the store hashes to {actual.hex()}: "
                "forged or damaged, refused"
            )
        return fingerprint_from_bytes(data)

    def __contains__(self, digest: bytes) -> bool:
        return self._path(digest).is_file()

"""Node identities (Ed25519), key files, and domain-separated SHA-256.

Hash domains are prefix-free: RFC 9162 leaves start with 0x00 and interior nodes with 0x01;
transaction ids, block hashes and node ids start with 0x02, 0x03 and 0x04 plus a label.
Signatures are over a context label followed by the message, so a signature made for one
purpose (a transaction, a block header, a tree head, a checkpoint) never verifies for another.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from prosima.ledger.errors import NodeKeyFileError
from prosima.ledger.log.input_files import InputFileError, read_bounded
from prosima.ledger.log.merkle import LEAF_PREFIX, NODE_PREFIX

TX_DOMAIN = b"\x02PROSIMA/tx/v1\x00"
BLOCK_DOMAIN = b"\x03PROSIMA/block/v1\x00"
NODE_ID_DOMAIN = b"\x04PROSIMA/node-id/v1\x00"
CHECKPOINT_DOMAIN = b"\x05PROSIMA/checkpoint/v1\x00"
HASH_DOMAINS = (LEAF_PREFIX, NODE_PREFIX, TX_DOMAIN, BLOCK_DOMAIN, NODE_ID_DOMAIN, CHECKPOINT_DOMAIN)

SIGN_TX = b"PROSIMA/sign/tx/v1\x00"
SIGN_BLOCK = b"PROSIMA/sign/block-header/v1\x00"
SIGN_TREE_HEAD = b"PROSIMA/sign/tree-head/v1\x00"
SIGN_CHECKPOINT = b"PROSIMA/sign/checkpoint/v1\x00"

NODE_ID_SIZE = 16
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
MAX_KEY_FILE = 1 << 16  # a PEM Ed25519 key is 119 bytes


def tx_hash(encoded_tx: bytes) -> bytes:
    """Transaction id: ``SHA-256(0x02 'PROSIMA/tx/v1' 0x00 || encoding)``."""
    return hashlib.sha256(TX_DOMAIN + encoded_tx).digest()


def block_hash(encoded_header: bytes) -> bytes:
    """Block hash: ``SHA-256(0x03 'PROSIMA/block/v1' 0x00 || header encoding)``."""
    return hashlib.sha256(BLOCK_DOMAIN + encoded_header).digest()


def node_id_of(public_key: bytes) -> bytes:
    """A node id is the first 16 bytes of a domain-separated hash of its raw public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"Ed25519 public key must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    return hashlib.sha256(NODE_ID_DOMAIN + public_key).digest()[:NODE_ID_SIZE]


def verify_signature(public_key: bytes, context: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification of ``context || message``; ``False`` for any malformed input."""
    if not (isinstance(public_key, bytes) and isinstance(signature, bytes)):
        return False
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, context + message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _why(exc: Exception) -> str:
    """A short, one-line reason a key did not parse (the parser's messages run to many lines)."""
    if isinstance(exc, UnsupportedAlgorithm):
        return "it names an unknown key type"
    text = " ".join(str(exc).split())
    if isinstance(exc, ValueError) and text:
        return text.split(". ")[0]
    return "its key bytes are invalid"


class NodeKey:
    """An Ed25519 private key with its node id."""

    __slots__ = ("_private", "node_id", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key: bytes = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.node_id: bytes = node_id_of(self.public_key)

    @classmethod
    def generate(cls) -> NodeKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeKey:
        """A key from its 32-byte private seed (tests and benchmarks)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, context: bytes, message: bytes) -> bytes:
        """Ed25519 signature over ``context || message``."""
        return self._private.sign(context + message)

    def __repr__(self) -> str:
        return f"NodeKey({self.node_id.hex()})"

    def save(self, path: str | Path) -> None:
        """Write the key as unencrypted PKCS#8 PEM, mode 0600; refuse to overwrite."""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise NodeKeyFileError(f"key file {path} already exists; refusing to overwrite it") from None
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: str | Path) -> NodeKey:
        """Read a key file; refuse one that group or others can read or write, and turn every way
        the file can fail to parse into a :class:`NodeKeyFileError` naming it."""
        try:
            data = read_bounded(path, MAX_KEY_FILE, "key file", private=True)
        except InputFileError as exc:
            raise NodeKeyFileError(str(exc)) from None
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except Exception as exc:  # ValueError, UnsupportedAlgorithm, InternalError, ...: all refused
            raise NodeKeyFileError(
                f"key file {path} is damaged or is not a PEM private key ({_why(exc)})"
            ) from None
        if not isinstance(private, Ed25519PrivateKey):
            raise NodeKeyFileError(f"key file {path} does not hold an Ed25519 key")
        return cls(private)

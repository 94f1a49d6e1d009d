"""Checksums and detached signatures of release files.

A file's signature is Ed25519, made with the portal's license signing key, over the 32 raw bytes
of the file's SHA-256 digest. Signing the digest instead of the file lets the portal sign a
multi-gigabyte installer while streaming it once, and lets a customer verify with standard tools:
`openssl dgst -sha256 -binary FILE` produces exactly the signed bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licensing.signing import current_signing_key

# Large enough for fast sequential I/O, small enough that memory never depends on file size.
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: bytes

    @property
    def hex(self) -> str:
        return self.sha256.hex()


class DigestingReader:
    """A read-only, forward-only view of a binary stream that hashes and counts what passes.

    It is deliberately not seekable: a storage backend that wanted to seek would re-read bytes
    and corrupt the digest, so backends take their streaming, one-pass code path instead.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.bytes_read = 0
        self.closed = False

    def read(self, size: int | None = -1) -> bytes:
        # Storages read in chunks (FileSystemStorage 64 KiB, boto3 8 MiB parts); a read of
        # "everything" is honoured as asked, since answering less would silently truncate.
        data = self._source.read(-1 if size is None or size < 0 else size)
        self._hash.update(data)
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        # The caller owns the source and closes it; storages like to close what they are given.
        self.closed = True

    def exhausted(self) -> bool:
        """Whether the source has nothing left (reads one byte, which is then counted too)."""
        return not self.read(1)

    def digest(self) -> Digest:
        return Digest(size=self.bytes_read, sha256=self._hash.digest())


def digest_stream(source: BinaryIO) -> Digest:
    """Size and SHA-256 of a stream, read once in fixed-size chunks."""
    reader = DigestingReader(source)
    while reader.read(CHUNK_SIZE):
        pass
    return reader.digest()


def digest_sign(digest: Digest) -> tuple[str, str]:
    """The base64 Ed25519 signature of the digest with the portal's key, and that key's ID."""
    signing_key, signing_key_id = current_signing_key()
    return base64.b64encode(signing_key.sign(digest.sha256)).decode("ascii"), signing_key_id


def signature_valid(*, sha256_hex: str, signature_b64: str, public_key: Ed25519PublicKey) -> bool:
    """Whether `signature_b64` is the key's signature of the digest `sha256_hex`."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, bytes.fromhex(sha256_hex))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True

"""SM3 (GB/T 32905) hashing and HMAC-SM3, through OpenSSL via ``cryptography``.

A pure-Python SM3 is ~300 times slower; OpenSSL's is the only one used.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac

DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class SM3:
    """Incremental SM3, for data that arrives in pieces (files, streams)."""

    digest_size = DIGEST_SIZE

    def __init__(self, data: bytes = b""):
        self._h = hashes.Hash(hashes.SM3())
        if data:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.copy().finalize()

    def hexdigest(self) -> str:
        return self.digest().hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 (RFC 2104 construction over SM3)."""
    h = hmac.HMAC(key, hashes.SM3())
    h.update(data)
    return h.finalize()

"""The interface every SM2 backend implements.

Backends work on digests (``e = SM3(Z_A || M)``, computed once in :mod:`hsm.sm2`) and on
integers, so that the user-ID rule and the signature encodings live in one place.
"""

from __future__ import annotations

from typing import Protocol

from ..curve import Point


class PrivateKeyOps(Protocol):
    """A loaded private key inside a backend. Hazardous: reachable only through hsm.hazmat."""

    @property
    def public_point(self) -> Point: ...

    def sign_digest(self, e: bytes) -> tuple[int, int]:
        """Sign the 32-byte digest e; return (r, s) with a fresh secret nonce."""
        ...

    def private_scalar(self) -> int:
        """The scalar d, for encrypting it at rest. Never log or return it."""
        ...


class SM2Backend(Protocol):
    name: str

    def generate(self) -> PrivateKeyOps:
        """A new key from a cryptographically secure source."""
        ...

    def load_private(self, d: int) -> PrivateKeyOps:
        """Load a key from its scalar (already range-checked by the caller)."""
        ...

    def verify_digest(self, q: Point, e: bytes, r: int, s: int) -> bool:
        """True iff (r, s) is a valid signature of digest e under the (validated) point q."""
        ...

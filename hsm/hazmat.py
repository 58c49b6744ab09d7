"""Hazardous materials: SM2 private keys as objects.

Only key stores (and tests) should construct these. Code outside :mod:`hsm` signs through a
:class:`~hsm.keystore.KeyStore`, which never hands a private key out.
"""

from __future__ import annotations

from .backends import PrivateKeyOps, signing_backend
from .curve import require_private_scalar
from .signature import encode_der
from .sm2 import DEFAULT_UID, SM2PublicKey


class SM2PrivateKey:
    """A private SM2 key loaded into the signing backend."""

    __slots__ = ("_ops", "_public")

    def __init__(self, ops: PrivateKeyOps):
        self._ops = ops
        self._public = SM2PublicKey(*ops.public_point)

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(signing_backend().generate())

    @classmethod
    def from_scalar(cls, d: int) -> SM2PrivateKey:
        return cls(signing_backend().load_private(require_private_scalar(d)))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """DER SEQUENCE{r, s} over e = SM3(Z_A || data)."""
        return self.sign_digest(self._public.signing_digest(data, uid))

    def sign_digest(self, e: bytes) -> bytes:
        if len(e) != 32:
            raise ValueError("SM2 signs a 32-byte SM3 digest")
        return encode_der(*self._ops.sign_digest(e))

    def private_scalar(self) -> int:
        """The secret scalar, for encryption at rest only."""
        return self._ops.private_scalar()

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public!r})"

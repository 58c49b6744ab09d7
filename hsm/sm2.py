"""SM2 public keys and the GM/T 0009 signing digest.

A signature is over ``e = SM3(Z_A || M)`` where ``Z_A`` binds the signer's identity (user ID,
by default ``1234567812345678``) and public key to the curve. Every verification in this
project goes through :meth:`SM2PublicKey.verify`, which accepts the signature forms of
:mod:`hsm.signature` and reports which one it saw.
"""

from __future__ import annotations

from functools import lru_cache

from asn1crypto import keys, pem

from . import oids
from .curve import GX, GY, A, B, Point, decode_point, encode_point, require_public_point
from .errors import InvalidKey, InvalidSignature
from .signature import SignatureValue, decode_signature
from .sm3 import remember_prefix, sm3

DEFAULT_UID = b"1234567812345678"
MAX_UID_BYTES = 8191  # ENTL is a 16-bit count of bits

_CURVE_PART = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


@lru_cache(maxsize=4096)
def z_digest(point: Point, uid: bytes = DEFAULT_UID) -> bytes:
    """Z_A = SM3(ENTL_A || ID_A || a || b || x_G || y_G || x_A || y_A) (GB/T 32918.2 §5.5)."""
    if len(uid) > MAX_UID_BYTES:
        raise InvalidKey("SM2 user ID is longer than 8191 bytes")
    x, y = point
    return sm3((len(uid) * 8).to_bytes(2, "big") + uid + _CURVE_PART
               + x.to_bytes(32, "big") + y.to_bytes(32, "big"))


def signing_digest(point: Point, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
    """e = SM3(Z_A || M): the value SM2 actually signs. Hashed from the remembered state when
    Z_A || M begins with a prefix :func:`remember_message_prefix` registered (exact either way)."""
    return sm3(z_digest(point, uid) + data)


def remember_message_prefix(point: Point, prefix: bytes | memoryview, uid: bytes = DEFAULT_UID) -> None:
    """Expect messages that begin with ``prefix`` to be signed or verified with this key and user
    ID (a seal signature's TBS_Sign starts with the whole seal): their digest then starts from
    the SM3 state after Z_A || ``prefix`` (:func:`hsm.sm3.remember_prefix`)."""
    remember_prefix(z_digest(point, uid) + prefix)


class SM2PublicKey:
    """An SM2 public key: a validated point of the SM2 curve."""

    __slots__ = ("_point",)

    def __init__(self, x: int, y: int):
        self._point = require_public_point(x, y)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_encoded_point(cls, data: bytes) -> SM2PublicKey:
        """From 04||X||Y, 02/03||X, or bare X||Y."""
        return cls(*decode_point(data))

    @classmethod
    def from_spki(cls, info: keys.PublicKeyInfo) -> SM2PublicKey:
        """From a parsed SubjectPublicKeyInfo; the key must be on the SM2 curve."""
        algo = info["algorithm"]
        oid = algo["algorithm"].dotted
        if oid == oids.EC_PUBLIC_KEY:
            params = algo["parameters"]
            if params.name != "named" or params.chosen.dotted != oids.SM2_CURVE:
                raise InvalidKey("EC public key is not on the SM2 curve")
        elif oid not in (oids.SM2_CURVE, oids.SM2_SIGN):
            raise InvalidKey(f"public key algorithm {oid} is not SM2")
        return cls.from_encoded_point(bytes(info["public_key"]))

    @classmethod
    def from_der(cls, data: bytes) -> SM2PublicKey:
        """From DER SubjectPublicKeyInfo."""
        try:
            info = keys.PublicKeyInfo.load(data, strict=True)
            info.native  # noqa: B018  (forces a full parse so malformed input fails here)
        except (ValueError, TypeError) as exc:
            raise InvalidKey(f"not a DER SubjectPublicKeyInfo: {exc}") from exc
        return cls.from_spki(info)

    @classmethod
    def from_pem(cls, data: bytes) -> SM2PublicKey:
        try:
            kind, _, der = pem.unarmor(data)
        except ValueError as exc:
            raise InvalidKey(f"not PEM: {exc}") from exc
        if kind != "PUBLIC KEY":
            raise InvalidKey(f"expected a PUBLIC KEY PEM block, found {kind!r}")
        return cls.from_der(der)

    # ---- encodings ----------------------------------------------------------------------
    @property
    def point(self) -> Point:
        return self._point

    @property
    def x(self) -> int:
        return self._point[0]

    @property
    def y(self) -> int:
        return self._point[1]

    def encoded_point(self, *, compressed: bool = False) -> bytes:
        return encode_point(*self._point, compressed=compressed)

    def to_spki(self) -> keys.PublicKeyInfo:
        return keys.PublicKeyInfo({
            "algorithm": {"algorithm": oids.EC_PUBLIC_KEY,
                          "parameters": ("named", "sm2p256v1")},
            "public_key": self.encoded_point(),
        })

    def to_der(self) -> bytes:
        return self.to_spki().dump()

    def to_pem(self) -> bytes:
        return pem.armor("PUBLIC KEY", self.to_der())

    def key_identifier(self) -> bytes:
        """RFC 5280 §4.2.1.2 method 1 identifier (SHA-1 of the key bits), as OpenSSL writes it."""
        from hashlib import sha1

        return sha1(self.encoded_point(), usedforsecurity=False).digest()

    # ---- verification -------------------------------------------------------------------
    def signing_digest(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        return signing_digest(self._point, data, uid)

    def verify(self, signature: bytes | SignatureValue, data: bytes,
               uid: bytes = DEFAULT_UID) -> SignatureValue:
        """Verify ``signature`` over ``data``; return the decoded value (with its form).

        Raises :class:`~hsm.errors.InvalidSignature` if it does not verify or cannot be read.
        """
        return self.verify_digest(signature, self.signing_digest(data, uid))

    def verify_digest(self, signature: bytes | SignatureValue, e: bytes) -> SignatureValue:
        """Verify against a precomputed e = SM3(Z_A || M)."""
        from .backends import verifying_backend

        sig = signature if isinstance(signature, SignatureValue) else decode_signature(signature)
        if not verifying_backend().verify_digest(self._point, e, sig.r, sig.s):
            raise InvalidSignature("SM2 signature does not verify for this key and data")
        return sig

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and other._point == self._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"SM2PublicKey({self.encoded_point(compressed=True).hex()})"

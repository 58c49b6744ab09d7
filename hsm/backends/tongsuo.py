"""SM2 through Tongsuo (tongsuopy): C, constant-time, used for private-key operations.

Tongsuo's EVP_PKEY_sign on an SM2 key signs a digest as given, so Z_A is computed by
:mod:`hsm.sm2` for any user ID and the same digest rule holds for every backend.
"""

from __future__ import annotations

from functools import lru_cache

from tongsuopy.backends.tongsuo.backend import backend as _ts
from tongsuopy.crypto.asymciphers import ec

from ..curve import N, Point
from ..signature import decode_signature, encode_der

_lib, _ffi = _ts._lib, _ts._ffi
_SIG_MAX = 80


def _sign_with(evp_pkey, e: bytes) -> tuple[int, int]:
    ctx = _ffi.gc(_lib.EVP_PKEY_CTX_new(evp_pkey, _ffi.NULL), _lib.EVP_PKEY_CTX_free)
    if ctx == _ffi.NULL or _lib.EVP_PKEY_sign_init(ctx) != 1:
        _ts._consume_errors()
        raise RuntimeError("Tongsuo could not initialise an SM2 signing context")
    buflen = _ffi.new("size_t *", _SIG_MAX)
    buf = _ffi.new("unsigned char[]", _SIG_MAX)
    if _lib.EVP_PKEY_sign(ctx, buf, buflen, e, len(e)) != 1:
        _ts._consume_errors()
        raise RuntimeError("Tongsuo SM2 signing failed")
    sig = decode_signature(bytes(_ffi.buffer(buf)[: buflen[0]]))
    return sig.r, sig.s


class TongsuoPrivateKey:
    __slots__ = ("_key", "_point")

    def __init__(self, key):
        self._key = key
        nums = key.public_key().public_numbers()
        self._point = (nums.x, nums.y)

    @property
    def public_point(self) -> Point:
        return self._point

    def sign_digest(self, e: bytes) -> tuple[int, int]:
        return _sign_with(self._key._evp_pkey, e)

    def private_scalar(self) -> int:
        return self._key.private_numbers().private_value


@lru_cache(maxsize=1024)
def _public_evp(q: Point):
    return ec.EllipticCurvePublicNumbers(q[0], q[1], ec.SM2()).public_key()


class TongsuoBackend:
    name = "tongsuo"

    def generate(self) -> TongsuoPrivateKey:
        return TongsuoPrivateKey(ec.generate_private_key(ec.SM2()))

    def load_private(self, d: int) -> TongsuoPrivateKey:
        return TongsuoPrivateKey(ec.derive_private_key(d, ec.SM2()))

    def verify_digest(self, q: Point, e: bytes, r: int, s: int) -> bool:
        if not (0 < r < N and 0 < s < N):
            return False  # GM/T 0003.2 step B1/B2, before anything is encoded
        key = _public_evp(q)
        ctx = _ffi.gc(_lib.EVP_PKEY_CTX_new(key._evp_pkey, _ffi.NULL), _lib.EVP_PKEY_CTX_free)
        if ctx == _ffi.NULL or _lib.EVP_PKEY_verify_init(ctx) != 1:
            _ts._consume_errors()
            raise RuntimeError("Tongsuo could not initialise an SM2 verification context")
        sig = encode_der(r, s)
        res = _lib.EVP_PKEY_verify(ctx, sig, len(sig), e, len(e))
        if res != 1:
            _ts._consume_errors()
        return res == 1

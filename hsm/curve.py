"""The SM2 elliptic curve (GB/T 32918.5 recommended parameters) and point encodings.

Plain integer arithmetic: correct and simple, used for validation and encodings. The fast
table-driven arithmetic used for signing and verifying lives in :mod:`hsm.backends.pure`.
"""

from __future__ import annotations

from .errors import InvalidKey

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

FIELD_BYTES = 32

Point = tuple[int, int]


def is_on_curve(x: int, y: int) -> bool:
    """True when (x, y) is an affine point of the SM2 curve with coordinates in [0, p)."""
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def require_public_point(x: int, y: int) -> Point:
    """Validate a public key point (GB/T 32918.1 §6.2.1): on the curve, not infinity.

    The curve's cofactor is 1, so every point on the curve other than infinity has order n.
    """
    if not is_on_curve(x, y):
        raise InvalidKey("public key point is not on the SM2 curve")
    return (x, y)


def require_private_scalar(d: int) -> int:
    """An SM2 private key must lie in [1, n-2] (so that 1+d is invertible mod n)."""
    if not (1 <= d <= N - 2):
        raise InvalidKey("SM2 private key is out of range [1, n-2]")
    return d


def encode_point(x: int, y: int, *, compressed: bool = False) -> bytes:
    """SEC 1 / GB/T 32918.1 octet string: 04||X||Y, or 02/03||X when compressed."""
    xb = x.to_bytes(FIELD_BYTES, "big")
    if compressed:
        return bytes([2 + (y & 1)]) + xb
    return b"\x04" + xb + y.to_bytes(FIELD_BYTES, "big")


def decode_point(data: bytes) -> Point:
    """Decode an uncompressed or compressed point and check that it lies on the curve.

    A bare 64-byte X||Y (written by some producers without the 04 prefix) is accepted too.
    """
    if len(data) == 65 and data[0] == 4:
        x = int.from_bytes(data[1:33], "big")
        y = int.from_bytes(data[33:], "big")
    elif len(data) == 64:
        x = int.from_bytes(data[:32], "big")
        y = int.from_bytes(data[32:], "big")
    elif len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(data[1:], "big")
        if x >= P:
            raise InvalidKey("compressed point x coordinate is not below p")
        rhs = (pow(x, 3, P) + A * x + B) % P
        # p ≡ 3 (mod 4), so a square root is rhs^((p+1)/4).
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P != rhs:
            raise InvalidKey("compressed point x coordinate is not on the SM2 curve")
        if (y & 1) != (data[0] & 1):
            y = P - y
    else:
        raise InvalidKey(f"unrecognised SM2 point encoding ({len(data)} bytes)")
    return require_public_point(x, y)

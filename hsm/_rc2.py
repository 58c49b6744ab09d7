"""RC2 (RFC 2268) block cipher, CBC mode, for reading legacy PKCS#12 files only.

Why this exists: Java keytool, BouncyCastle and OpenSSL before 3.0 encrypt the certificate
SafeContents of a PKCS#12 file with pbeWithSHAAnd40BitRC2-CBC, a 5-byte key with 40 effective
key bits. ``cryptography``'s RC2 (in ``hazmat.decrepit``) accepts only 128-bit keys, so it
cannot open those files. This module is a small, plain implementation used to *decrypt*
them; nothing in the project encrypts with RC2 except tests that build such files.

Not constant-time and not meant to be: RC2-40 offers no confidentiality worth protecting, and
the key bag it never protects (PKCS#12 puts keys in a 3DES or PBES2 shrouded bag).
"""

from __future__ import annotations

BLOCK_SIZE = 8

# RFC 2268 section 2: PITABLE, a permutation of 0..255 derived from the digits of pi.
_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2"
    "179a59f587b34f1361456d8d09817d32bd8f40eb86b77b0bf09521225c6b4e82"
    "54d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed7"
    "08e8eade8052eef784aa72ac354d6a2a961ad2715a1549744b9fd05e0418a4ec"
    "c2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a9"
    "0d38341bab33ffb0bb480c5fb9b1cd2ec5f3db47e5a59c770aa62068fe7fc1ad"
)
_MASK = 0xFFFF
_SHIFTS = (1, 2, 3, 5)


def _expand_key(key: bytes, effective_bits: int) -> list[int]:
    """RFC 2268 section 2: 64 16-bit subkeys, with the key's strength cut to ``effective_bits``."""
    if not 1 <= len(key) <= 128:
        raise ValueError("RC2 key must be 1..128 bytes")
    if not 1 <= effective_bits <= 1024:
        raise ValueError("RC2 effective key bits must be 1..1024")
    t = len(key)
    buf = bytearray(128)
    buf[:t] = key
    for i in range(t, 128):
        buf[i] = _PITABLE[(buf[i - 1] + buf[i - t]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    tm = 0xFF % (1 << (8 + effective_bits - 8 * t8))
    buf[128 - t8] = _PITABLE[buf[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        buf[i] = _PITABLE[buf[i + 1] ^ buf[i + t8]]
    return [buf[2 * i] | (buf[2 * i + 1] << 8) for i in range(64)]


def _rol(x: int, s: int) -> int:
    return ((x << s) | (x >> (16 - s))) & _MASK


def _ror(x: int, s: int) -> int:
    return ((x >> s) | (x << (16 - s))) & _MASK


class RC2:
    """One RC2 key schedule; encrypts and decrypts single 8-byte blocks."""

    __slots__ = ("_k",)

    def __init__(self, key: bytes, effective_bits: int | None = None):
        self._k = _expand_key(key, effective_bits if effective_bits is not None else 8 * len(key))

    def encrypt_block(self, block: bytes) -> bytes:
        k = self._k
        r = [block[0] | block[1] << 8, block[2] | block[3] << 8,
             block[4] | block[5] << 8, block[6] | block[7] << 8]
        j = 0
        for stage, rounds in enumerate((5, 6, 5)):
            for _ in range(rounds):
                for i in range(4):
                    r[i] = (r[i] + k[j] + (r[i - 1] & r[i - 2]) + (~r[i - 1] & r[i - 3])) & _MASK
                    r[i] = _rol(r[i], _SHIFTS[i])
                    j += 1
            if stage < 2:  # a mashing round after the first and second mixing stages
                for i in range(4):
                    r[i] = (r[i] + k[r[i - 1] & 63]) & _MASK
        return b"".join(x.to_bytes(2, "little") for x in r)

    def decrypt_block(self, block: bytes) -> bytes:
        k = self._k
        r = [block[0] | block[1] << 8, block[2] | block[3] << 8,
             block[4] | block[5] << 8, block[6] | block[7] << 8]
        j = 63
        for stage, rounds in enumerate((5, 6, 5)):
            for _ in range(rounds):
                for i in (3, 2, 1, 0):
                    r[i] = _ror(r[i], _SHIFTS[i])
                    r[i] = (r[i] - k[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & _MASK
                    j -= 1
            if stage < 2:
                for i in (3, 2, 1, 0):
                    r[i] = (r[i] - k[r[i - 1] & 63]) & _MASK
        return b"".join(x.to_bytes(2, "little") for x in r)


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes, effective_bits: int | None = None) -> bytes:
    """Raw CBC decryption (padding is the caller's business)."""
    if len(iv) != BLOCK_SIZE or len(ciphertext) % BLOCK_SIZE:
        raise ValueError("RC2-CBC needs an 8-byte IV and whole 8-byte blocks")
    cipher = RC2(key, effective_bits)
    out = bytearray()
    prev = iv
    for off in range(0, len(ciphertext), BLOCK_SIZE):
        block = ciphertext[off:off + BLOCK_SIZE]
        out += bytes(a ^ b for a, b in zip(cipher.decrypt_block(block), prev, strict=True))
        prev = block
    return bytes(out)


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes, effective_bits: int | None = None) -> bytes:
    """Raw CBC encryption of whole blocks (used by tests to build legacy files)."""
    if len(iv) != BLOCK_SIZE or len(plaintext) % BLOCK_SIZE:
        raise ValueError("RC2-CBC needs an 8-byte IV and whole 8-byte blocks")
    cipher = RC2(key, effective_bits)
    out = bytearray()
    prev = iv
    for off in range(0, len(plaintext), BLOCK_SIZE):
        block = bytes(a ^ b for a, b in zip(plaintext[off:off + BLOCK_SIZE], prev, strict=True))
        prev = cipher.encrypt_block(block)
        out += prev
    return bytes(out)

"""SM4 (GB/T 32907) in CBC (with PKCS#7 padding) and GCM, through ``cryptography``."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import HsmError

KEY_SIZE = 16
BLOCK_SIZE = 16
GCM_NONCE_SIZE = 12
GCM_TAG_SIZE = 16


class DecryptionFailed(HsmError):
    """Ciphertext could not be decrypted: wrong key, altered data or bad padding."""


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise HsmError(f"SM4 keys are {KEY_SIZE} bytes, got {len(key)}")


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding."""
    _check_key(key)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Inverse of :func:`cbc_encrypt`; any padding error becomes :class:`DecryptionFailed`."""
    _check_key(key)
    if not ciphertext or len(ciphertext) % BLOCK_SIZE:
        raise DecryptionFailed("SM4-CBC ciphertext is not a whole number of blocks")
    dec = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    data = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptionFailed("SM4-CBC padding is invalid (wrong key or altered data)") from exc


def gcm_encrypt(key: bytes, plaintext: bytes, associated_data: bytes = b"",
                nonce: bytes | None = None) -> bytes:
    """SM4-GCM; returns nonce || ciphertext || tag. A fresh random nonce unless given."""
    _check_key(key)
    nonce = secrets.token_bytes(GCM_NONCE_SIZE) if nonce is None else nonce
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(associated_data)
    ct = enc.update(plaintext) + enc.finalize()
    return nonce + ct + enc.tag


def gcm_decrypt(key: bytes, sealed: bytes, associated_data: bytes = b"") -> bytes:
    """Inverse of :func:`gcm_encrypt`; an altered message raises :class:`DecryptionFailed`."""
    _check_key(key)
    if len(sealed) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
        raise DecryptionFailed("SM4-GCM message is too short")
    nonce, ct, tag = sealed[:GCM_NONCE_SIZE], sealed[GCM_NONCE_SIZE:-GCM_TAG_SIZE], sealed[-GCM_TAG_SIZE:]
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(associated_data)
    try:
        return dec.update(ct) + dec.finalize()
    except InvalidTag as exc:
        raise DecryptionFailed("SM4-GCM authentication failed (wrong key or altered data)") from exc

"""An independent PKCS#8 reader: the OpenSSL library bundled in the ``cryptography`` wheel.

Debian's OpenSSL CLI (3.0) predates ``hmacWithSM3`` as a PBKDF2 PRF (added in OpenSSL 3.2),
so ``openssl pkcs8`` here cannot read PBES2/SM4-CBC/HMAC-SM3 keys. The libcrypto inside the
``cryptography`` wheel is newer (4.x) and exposes ``PEM_read_bio_PrivateKey`` through its
cffi binding; reading our encrypted keys with it and re-encoding them unencrypted is the
check that what we write is what OpenSSL reads.
"""

from __future__ import annotations

import os

import pytest


def _binding():
    try:
        from cryptography.hazmat.bindings.openssl.binding import Binding
    except ImportError:  # pragma: no cover
        return None
    needed = ("PEM_read_bio_PrivateKey", "PEM_write_bio_PrivateKey", "BIO_new_mem_buf", "BIO_new",
              "BIO_s_mem", "BIO_get_mem_data", "OBJ_txt2nid", "EVP_PKEY_free")
    if not all(hasattr(Binding.lib, name) for name in needed):
        return None
    if Binding.lib.OBJ_txt2nid(b"hmacWithSM3") <= 0:
        return None
    return Binding


def require_reader():
    """The binding, or skip (fail under CI=true, where the check must run)."""
    binding = _binding()
    if binding is None:
        reason = "the cryptography wheel's OpenSSL lacks PEM_read_bio_PrivateKey or hmacWithSM3"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    return binding


def read_encrypted_pem(pem: bytes, password: bytes) -> bytes | None:
    """Unencrypted PKCS#8 PEM as OpenSSL re-encodes it, or None when OpenSSL refuses."""
    binding = require_reader()
    lib, ffi = binding.lib, binding.ffi
    bio = ffi.gc(lib.BIO_new_mem_buf(pem, len(pem)), lib.BIO_free)
    secret = ffi.new("char[]", password)  # the default callback reads the password from here
    pkey = lib.PEM_read_bio_PrivateKey(bio, ffi.NULL, ffi.NULL, secret)
    if pkey == ffi.NULL:
        lib.ERR_clear_error()
        return None
    pkey = ffi.gc(pkey, lib.EVP_PKEY_free)
    out = ffi.gc(lib.BIO_new(lib.BIO_s_mem()), lib.BIO_free)
    if lib.PEM_write_bio_PrivateKey(out, pkey, ffi.NULL, ffi.NULL, 0, ffi.NULL, ffi.NULL) != 1:
        lib.ERR_clear_error()
        return None
    data = ffi.new("char **")
    size = lib.BIO_get_mem_data(out, data)
    return bytes(ffi.buffer(data[0], size))

"""A second opinion on our certificates from an independent implementation: OpenSSL's
``X509_verify_cert``, with CRL checks, through the OpenSSL library in the ``cryptography``
wheel.

Why not the ``openssl`` command: OpenSSL 3.0 (Debian 12's CLI) checks SM2 signatures on
certificates and CRLs with an *empty* user ID unless told otherwise, and its
``-vfyopt distid:`` reaches only the certificate named on the command line
(openssl/openssl#23471), so no OpenSSL 3.0 CLI accepts a three-level chain signed with the
GM/T 0009 default ID that GM/T 0015 requires and every producer in ../shared/interop uses.
Newer OpenSSL verifies such chains with the default ID; the ``cryptography`` wheel carries one.
Signatures on data (not certificates) are checked with the CLI, which honours ``distid``.

This uses ``cryptography``'s low-level bindings; when they lack a function the check reports
itself unavailable rather than passing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_NEEDED = ("X509_STORE_new", "X509_STORE_add_cert", "X509_STORE_add_crl", "X509_STORE_set_flags",
           "X509_STORE_CTX_new", "X509_STORE_CTX_init", "X509_verify_cert", "X509_STORE_CTX_get_error",
           "X509_STORE_CTX_get_error_depth", "X509_verify_cert_error_string", "d2i_X509_bio",
           "d2i_X509_CRL_bio", "BIO_new_mem_buf", "sk_X509_new_null", "sk_X509_push", "OpenSSL_version")


@dataclass(frozen=True)
class SecondOpinion:
    available: bool
    ok: bool
    detail: str
    implementation: str = ""


def _binding():
    try:
        from cryptography.hazmat.bindings.openssl.binding import Binding
    except ImportError:
        return None
    return Binding if all(hasattr(Binding.lib, name) for name in _NEEDED) else None


def verify_chain(leaf: bytes, *, anchor: bytes, intermediates: Sequence[bytes] = (),
                 crls: Sequence[bytes] = ()) -> SecondOpinion:
    """Verify DER ``leaf`` up to DER ``anchor`` with OpenSSL; with ``crls`` every link's CRL is required."""
    binding = _binding()
    if binding is None:
        return SecondOpinion(False, False, "the cryptography wheel's OpenSSL bindings are unavailable")
    lib, ffi = binding.lib, binding.ffi
    version = ffi.string(lib.OpenSSL_version(0)).decode()

    def read(der: bytes, reader, free):
        bio = ffi.gc(lib.BIO_new_mem_buf(der, len(der)), lib.BIO_free)
        value = reader(bio, ffi.NULL)
        if value == ffi.NULL:
            lib.ERR_clear_error()
            raise ValueError("OpenSSL could not parse the DER")
        return ffi.gc(value, free)

    try:
        store = ffi.gc(lib.X509_STORE_new(), lib.X509_STORE_free)
        lib.X509_STORE_add_cert(store, read(anchor, lib.d2i_X509_bio, lib.X509_free))
        untrusted = ffi.gc(lib.sk_X509_new_null(), lib.sk_X509_free)
        keep = [read(der, lib.d2i_X509_bio, lib.X509_free) for der in intermediates]
        for cert in keep:
            lib.sk_X509_push(untrusted, cert)
        for der in crls:
            lib.X509_STORE_add_crl(store, read(der, lib.d2i_X509_CRL_bio, lib.X509_CRL_free))
        if crls:
            lib.X509_STORE_set_flags(store, lib.X509_V_FLAG_CRL_CHECK | lib.X509_V_FLAG_CRL_CHECK_ALL)
        target = read(leaf, lib.d2i_X509_bio, lib.X509_free)
        ctx = ffi.gc(lib.X509_STORE_CTX_new(), lib.X509_STORE_CTX_free)
        lib.X509_STORE_CTX_init(ctx, store, target, untrusted)
        ok = lib.X509_verify_cert(ctx) == 1
        error = lib.X509_STORE_CTX_get_error(ctx)
        depth = lib.X509_STORE_CTX_get_error_depth(ctx)
        lib.ERR_clear_error()
    except ValueError as exc:
        return SecondOpinion(True, False, str(exc), version)
    if ok:
        return SecondOpinion(True, True, "OK" + (" (with CRL checks on every link)" if crls else ""), version)
    reason = ffi.string(lib.X509_verify_cert_error_string(error)).decode()
    return SecondOpinion(True, False, f"error {error} at depth {depth}: {reason}", version)

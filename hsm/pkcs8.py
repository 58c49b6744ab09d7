"""SM2 private keys at rest: PKCS#8 (RFC 5208/5958), SEC1, and PBES2 encryption (RFC 8018).

What we write is what OpenSSL writes with
``openssl pkcs8 -topk8 -v2 sm4-cbc -v2prf hmacWithSM3``: PBES2 with PBKDF2-HMAC-SM3 and
SM4-CBC around a PrivateKeyInfo whose algorithm is id-ecPublicKey on the SM2 curve. What we
read is wider, because keys arrive from other producers: unencrypted PKCS#8, SEC1
``EC PRIVATE KEY`` / ``SM2 PRIVATE KEY``, and PBES2 with PBKDF2 over HMAC-SHA1/SHA-256/SM3
(either HMAC-SM3 identifier) and AES-CBC or SM4-CBC, in PEM or DER.

A wrong passphrase can only be recognised by a padding or structure failure after
decryption; both are reported as :class:`~hsm.errors.WrongPassphrase`, never as a key.
"""

from __future__ import annotations

import secrets

from asn1crypto import algos, core, keys, pem
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from . import oids
from .errors import ASN1_PARSE_ERRORS, KeyFormatError, UnsupportedAlgorithm, WrongPassphrase
from .hazmat import SM2PrivateKey
from .sm4 import DecryptionFailed, cbc_decrypt, cbc_encrypt

DEFAULT_ITERATIONS = 100_000
#: Upper bound on PBKDF2 iterations we agree to run for a key someone hands us.
MAX_ITERATIONS = 10_000_000

_PRFS = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512, "hmac_sm3": hashes.SM3, "hmac_sm3_bc": hashes.SM3,
}
_AES_KEY_SIZES = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
#: What asn1crypto raises on malformed input, lazily, wherever a field is first read.
PARSE_ERRORS = ASN1_PARSE_ERRORS


# ---- plain key structures ------------------------------------------------------------------

def private_key_info(key: SM2PrivateKey) -> keys.PrivateKeyInfo:
    """PrivateKeyInfo{id-ecPublicKey, sm2p256v1, ECPrivateKey{d, publicKey}} as OpenSSL writes it."""
    ec_key = keys.ECPrivateKey({
        "version": "ecPrivkeyVer1",
        "private_key": key.private_scalar(),
        "public_key": key.public_key().encoded_point(),
    })
    return keys.PrivateKeyInfo({
        "version": 0,
        "private_key_algorithm": keys.PrivateKeyAlgorithm({
            "algorithm": "ec",
            "parameters": keys.ECDomainParameters(name="named", value="sm2p256v1"),
        }),
        "private_key": ec_key,
    })


def _from_ec_private_key(ec_key: keys.ECPrivateKey) -> SM2PrivateKey:
    params = ec_key["parameters"]
    if params.native is not None and (params.name != "named" or params.chosen.dotted != oids.SM2_CURVE):
        raise UnsupportedAlgorithm("the EC private key is not on the SM2 curve")
    key = SM2PrivateKey.from_scalar(ec_key["private_key"].native)
    stored = ec_key["public_key"]
    if stored.native is not None and bytes(stored.native) != key.public_key().encoded_point():
        if bytes(stored.native) != key.public_key().encoded_point(compressed=True):
            raise KeyFormatError("the stored public key does not belong to the private key")
    return key


def private_key_from_info(der: bytes) -> SM2PrivateKey:
    """An SM2 key from PrivateKeyInfo DER (id-ecPublicKey + SM2 curve, or the SM2 OID itself)."""
    try:
        info = keys.PrivateKeyInfo.load(der, strict=True)
        algorithm = info["private_key_algorithm"]["algorithm"].dotted
        params = info["private_key_algorithm"]["parameters"]
        if algorithm == oids.EC_PUBLIC_KEY:
            if params.name != "named" or params.chosen.dotted != oids.SM2_CURVE:
                raise UnsupportedAlgorithm("the EC key is not on the SM2 curve (1.2.156.10197.1.301)")
        elif algorithm not in (oids.SM2_CURVE, oids.SM2_SIGN):
            raise UnsupportedAlgorithm(f"not an SM2 key: algorithm {algorithm}")
        ec_key = keys.ECPrivateKey.load(info["private_key"].contents, strict=True)
        return _from_ec_private_key(ec_key)
    except (UnsupportedAlgorithm, KeyFormatError):
        raise
    except PARSE_ERRORS as exc:
        raise KeyFormatError(f"malformed PKCS#8 private key: {exc}") from exc


# ---- PBES2 ---------------------------------------------------------------------------------

def _kdf_key(parameters: algos.Pbes2Params, password: bytes, key_size: int) -> bytes:
    kdf = parameters["key_derivation_func"]
    if kdf["algorithm"].native != "pbkdf2":
        raise UnsupportedAlgorithm(f"PBES2 key derivation {kdf['algorithm'].dotted} is not supported")
    p = kdf["parameters"]
    iterations = p["iteration_count"].native
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise KeyFormatError(f"PBKDF2 iteration count {iterations} is out of range")
    if p["key_length"].native not in (None, key_size):
        raise KeyFormatError("PBKDF2 key length does not match the cipher")
    prf_name = p["prf"]["algorithm"].native
    prf = _PRFS.get(prf_name)
    if prf is None:
        raise UnsupportedAlgorithm(f"PBKDF2 PRF {p['prf']['algorithm'].dotted} is not supported")
    salt = p["salt"].native
    if not isinstance(salt, bytes):
        raise UnsupportedAlgorithm("PBKDF2 with an AlgorithmIdentifier salt is not supported")
    return PBKDF2HMAC(algorithm=prf(), length=key_size, salt=salt, iterations=iterations).derive(password)


def decrypt_pbes2(parameters: algos.Pbes2Params, ciphertext: bytes, password: bytes) -> bytes:
    """Decrypt PBES2 data (SM4-CBC or AES-CBC under PBKDF2); a wrong password raises WrongPassphrase."""
    scheme = parameters["encryption_scheme"]
    name = scheme["algorithm"].native
    iv = scheme["parameters"].native
    if not isinstance(iv, bytes) or len(iv) != 16:
        raise KeyFormatError("PBES2 cipher parameters are not a 16-byte IV")
    if name == "sm4_cbc":
        key = _kdf_key(parameters, password, 16)
        try:
            return cbc_decrypt(key, iv, ciphertext)
        except DecryptionFailed as exc:
            raise WrongPassphrase("wrong passphrase (or corrupted key file)") from exc
    if name in _AES_KEY_SIZES:
        key = _kdf_key(parameters, password, _AES_KEY_SIZES[name])
        if not ciphertext or len(ciphertext) % 16:
            raise KeyFormatError("PBES2 ciphertext is not a whole number of blocks")
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
            raise WrongPassphrase("wrong passphrase (or corrupted key file)")
        return padded[:-pad]
    raise UnsupportedAlgorithm(f"PBES2 cipher {scheme['algorithm'].dotted} is not supported")


def encrypt_private_key(key: SM2PrivateKey, passphrase: bytes, *,
                        iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """EncryptedPrivateKeyInfo DER: PBES2, PBKDF2-HMAC-SM3, SM4-CBC, fresh salt and IV."""
    if not passphrase:
        raise ValueError("refusing to encrypt a private key under an empty passphrase")
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    parameters = algos.Pbes2Params({
        "key_derivation_func": {
            "algorithm": "pbkdf2",
            "parameters": {"salt": algos.Pbkdf2Salt(name="specified", value=salt),
                           "iteration_count": iterations,
                           "prf": {"algorithm": "hmac_sm3", "parameters": core.Null()}},
        },
        "encryption_scheme": {"algorithm": "sm4_cbc", "parameters": core.OctetString(iv)},
    })
    derived = _kdf_key(parameters, passphrase, 16)
    ciphertext = cbc_encrypt(derived, iv, private_key_info(key).dump())
    return keys.EncryptedPrivateKeyInfo({
        "encryption_algorithm": {"algorithm": "pbes2", "parameters": parameters},
        "encrypted_data": ciphertext,
    }).dump()


def encrypted_private_key_pem(der: bytes) -> bytes:
    return pem.armor("ENCRYPTED PRIVATE KEY", der)


def private_key_pem(key: SM2PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM — for handing a development key to another tool, never for storage."""
    return pem.armor("PRIVATE KEY", private_key_info(key).dump())


def decrypt_private_key_info(der: bytes, password: bytes) -> bytes:
    """PrivateKeyInfo DER inside an EncryptedPrivateKeyInfo (PBES2 only)."""
    try:
        encrypted = keys.EncryptedPrivateKeyInfo.load(der, strict=True)
        algorithm = encrypted["encryption_algorithm"]
        if algorithm["algorithm"].native != "pbes2":
            raise UnsupportedAlgorithm(
                f"private key encryption {algorithm['algorithm'].dotted} is not supported (use PBES2)")
        parameters = algorithm["parameters"]
        ciphertext = encrypted["encrypted_data"].native
        plain = decrypt_pbes2(parameters, ciphertext, password)
    except (UnsupportedAlgorithm, KeyFormatError, WrongPassphrase):
        raise
    except PARSE_ERRORS as exc:
        raise KeyFormatError(f"malformed encrypted private key: {exc}") from exc
    try:
        keys.PrivateKeyInfo.load(plain, strict=True).native  # noqa: B018 - parse everything
    except PARSE_ERRORS as exc:
        raise WrongPassphrase("wrong passphrase (or corrupted key file)") from exc
    return plain


# ---- one entry point for every form --------------------------------------------------------

def load_private_key(data: bytes, password: bytes | None = None) -> SM2PrivateKey:
    """An SM2 private key from PEM or DER: PKCS#8, encrypted PKCS#8 or SEC1."""
    if not data:
        raise KeyFormatError("empty key data")
    if pem.detect(data):
        try:
            kind, headers, der = pem.unarmor(data)
        except ValueError as exc:
            raise KeyFormatError(f"malformed PEM: {exc}") from exc
        if headers.get("Proc-Type"):
            raise UnsupportedAlgorithm(
                "legacy PEM encryption (Proc-Type/DEK-Info) is not supported; convert with "
                "`openssl pkcs8 -topk8 -v2 sm4-cbc`")
        return _load_der(der, password, kind)
    return _load_der(data, password, None)


def _load_der(der: bytes, password: bytes | None, kind: str | None) -> SM2PrivateKey:
    if kind == "ENCRYPTED PRIVATE KEY" or (kind is None and _looks_encrypted(der)):
        if not password:
            raise WrongPassphrase("the private key is encrypted: a passphrase is needed")
        return private_key_from_info(decrypt_private_key_info(der, password))
    if kind in ("EC PRIVATE KEY", "SM2 PRIVATE KEY") or (kind is None and _looks_sec1(der)):
        try:
            return _from_ec_private_key(keys.ECPrivateKey.load(der, strict=True))
        except (UnsupportedAlgorithm, KeyFormatError):
            raise
        except PARSE_ERRORS as exc:
            raise KeyFormatError(f"malformed SEC1 EC private key: {exc}") from exc
    if kind not in (None, "PRIVATE KEY"):
        raise KeyFormatError(f"a PEM block of type {kind!r} is not a private key")
    return private_key_from_info(der)


def _looks_encrypted(der: bytes) -> bool:
    try:
        value = keys.EncryptedPrivateKeyInfo.load(der, strict=True)
        value["encryption_algorithm"]["algorithm"].dotted  # noqa: B018
        return isinstance(value["encrypted_data"].native, bytes)
    except PARSE_ERRORS:
        return False


def _looks_sec1(der: bytes) -> bool:
    try:
        return keys.ECPrivateKey.load(der, strict=True)["version"].native == "ecPrivkeyVer1"
    except PARSE_ERRORS:
        return False

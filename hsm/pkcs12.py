"""Reading SM2 keys and certificates out of PKCS#12 (RFC 7292) files.

Why a parser of our own: ``cryptography``'s PKCS#12 loader refuses every key on the SM2
curve, and the files people bring to the key store (.p12 / .pfx from Java keytool,
BouncyCastle, OpenSSL, Windows) carry exactly such keys. asn1crypto parses the structures;
this module checks the integrity MAC, decrypts, and hands the PrivateKeyInfo to
:mod:`hsm.pkcs8`.

What is read:

* password integrity (MacData) over SHA-1, SHA-2 or SM3, checked *before* anything is
  decrypted, with the RFC 7292 appendix B key derivation;
* encrypted SafeContents (EncryptedData) and pkcs8ShroudedKeyBag under the PKCS#12 PBE
  schemes pbeWithSHAAnd3-KeyTripleDES-CBC, -2-KeyTripleDES-CBC, -128BitRC2-CBC and
  -40BitRC2-CBC (RC2-40 is what Java and old OpenSSL use for certificates), and under PBES2
  (PBKDF2 + AES-CBC or SM4-CBC, via :func:`hsm.pkcs8.decrypt_pbes2`);
* plain keyBag and nested safeContentsBag; x509 certBags.

The two password encodings differ by scheme, as in OpenSSL: the PKCS#12 KDF (MAC and the
PKCS#12 PBE schemes) takes the password as a BMPString (big-endian UTF-16 plus two zero
bytes), PBES2 takes the password bytes as given (UTF-8).

Errors are all-or-nothing: a file either yields a key (and its certificate) or raises.
Malformed or truncated input is :class:`~hsm.errors.KeyFormatError`; a MAC mismatch or a
failed decryption is :class:`~hsm.errors.WrongPassphrase` (a damaged file cannot be told
apart from a wrong password once the MAC fails, and the message says so); an algorithm we do
not implement is :class:`Pkcs12UnsupportedAlgorithm`, which is both an
:class:`~hsm.errors.UnsupportedAlgorithm` and a :class:`~hsm.errors.KeyFormatError`, so a
caller that only knows "bad key file" still catches it.
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from asn1crypto import algos, core, keys, pkcs12, x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from . import _rc2
from . import oids as _oids  # noqa: F401 - registers sm2p256v1, SM3, SM4 with asn1crypto
from .errors import ASN1_PARSE_ERRORS, InvalidKey, KeyFormatError, UnsupportedAlgorithm, WrongPassphrase
from .hazmat import SM2PrivateKey
from .pkcs8 import decrypt_pbes2, private_key_from_info
from .sm2 import SM2PublicKey

__all__ = ["Pkcs12Contents", "Pkcs12UnsupportedAlgorithm", "is_pkcs12", "load_pkcs12", "pkcs12_kdf"]

_PARSE_ERRORS = ASN1_PARSE_ERRORS
#: SafeContents may nest (safeContentsBag); real files use one level, we allow a few.
_MAX_NESTING = 4
#: Upper bound on PKCS#12 KDF iterations (MAC and PKCS#12 PBE). Each one is a Python-level
#: hash call (~0.6 s per million with SHA-1, ~2.5 s with SM3), so this is lower than
#: PBKDF2's bound in hsm.pkcs8; real producers use 1 000 to ~100 000 (OpenSSL 2048,
#: ofdrw/BouncyCastle 51 200 and 102 400).
MAX_KDF_ITERATIONS = 2_000_000

_MAC_MISMATCH = ("wrong password for this PKCS#12 file (its integrity MAC does not match; "
                 "a damaged file looks the same)")


class Pkcs12UnsupportedAlgorithm(UnsupportedAlgorithm, KeyFormatError):
    """The PKCS#12 file is well-formed but uses a scheme or key type this project does not read."""


@dataclass(frozen=True)
class Pkcs12Contents:
    """Everything usable in a PKCS#12 file: one SM2 key, its certificate, the rest of the chain."""

    key: SM2PrivateKey
    #: The certificate whose public key is ``key``'s, or None when the file holds none.
    certificate: x509.Certificate | None
    #: Every other certificate, in file order (usually the issuing chain).
    additional_certificates: list[x509.Certificate]
    #: The key bag's friendlyName (the certificate bag's when the key has none).
    friendly_name: str | None


# ---- sniffing ------------------------------------------------------------------------------

_DATA_OID_TLV = bytes.fromhex("06092a864886f70d010701")
_SIGNED_DATA_OID_TLV = bytes.fromhex("06092a864886f70d010702")


def _after_header(buf: bytes, pos: int) -> int:
    """Position after a tag's length octets (definite or BER indefinite) starting at ``pos``."""
    first = buf[pos]
    if first < 0x80:
        return pos + 1
    if first == 0x80:
        return pos + 1
    count = first & 0x7F
    if count > 4:
        raise ValueError("length too long")
    return pos + 1 + count


def is_pkcs12(data: bytes) -> bool:
    """True when ``data`` starts like a PFX: SEQUENCE{INTEGER 3, ContentInfo{data or signedData}}.

    Only the first few dozen bytes are looked at, so truncated files still count as PKCS#12
    (and then fail to load with a clear error, instead of being handed to the PEM reader).
    Never raises.
    """
    try:
        head = bytes(data[:48])
        if len(head) < 20 or head[0] != 0x30:
            return False
        pos = _after_header(head, 1)
        if head[pos:pos + 3] != b"\x02\x01\x03":
            return False
        pos += 3
        if head[pos] != 0x30:
            return False
        pos = _after_header(head, pos + 1)
        return head[pos:pos + 11] in (_DATA_OID_TLV, _SIGNED_DATA_OID_TLV)
    except (IndexError, ValueError, TypeError):
        return False


# ---- the PKCS#12 key derivation (RFC 7292 appendix B.2) ------------------------------------

@dataclass(frozen=True)
class _Hash:
    digest: Callable[[bytes], bytes]
    hmac: Callable[[bytes, bytes], bytes]
    size: int  # u
    block: int  # v


def _hashlib(name: str) -> _Hash:
    constructor = getattr(hashlib, name)
    sample = constructor()
    return _Hash(lambda m: constructor(m).digest(),
                 lambda k, m: std_hmac.new(k, m, constructor).digest(), sample.digest_size, sample.block_size)


def _sm3_digest(message: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(message)
    return h.finalize()


def _sm3_hmac(key: bytes, message: bytes) -> bytes:
    h = crypto_hmac.HMAC(key, hashes.SM3())
    h.update(message)
    return h.finalize()


_HASHES: dict[str, _Hash] = {
    **{name: _hashlib(name) for name in ("sha1", "sha224", "sha256", "sha384", "sha512")},
    "sm3": _Hash(_sm3_digest, _sm3_hmac, 32, 64),
}


def _check_iterations(iterations: object, limit: int = MAX_KDF_ITERATIONS) -> int:
    if not isinstance(iterations, int) or not 1 <= iterations <= limit:
        raise KeyFormatError(f"PKCS#12 iteration count {iterations!r} is out of range")
    return iterations


def pkcs12_kdf(digest: str, password: bytes, salt: bytes, purpose: int, iterations: int, size: int) -> bytes:
    """RFC 7292 B.2: ``size`` bytes for purpose 1 (key), 2 (IV) or 3 (MAC key).

    ``digest`` is an asn1crypto digest name (sha1, sha256, sm3, ...); ``password`` is already
    in BMPString form (see :func:`_bmp_candidates`).
    """
    h = _HASHES[digest]
    v, u = h.block, h.size

    def stretch(value: bytes) -> bytes:
        if not value:
            return b""
        n = v * -(-len(value) // v)
        return (value * (n // len(value) + 1))[:n]

    d = bytes([purpose]) * v
    i = bytearray(stretch(salt) + stretch(password))
    out = bytearray()
    while len(out) < size:
        a = h.digest(d + bytes(i))
        for _ in range(iterations - 1):
            a = h.digest(a)
        out += a
        if len(out) >= size:
            break
        b = int.from_bytes((a * (v // u + 1))[:v], "big") + 1
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b) & ((1 << (8 * v)) - 1)
            i[j:j + v] = block.to_bytes(v, "big")
    return bytes(out[:size])


def _bmp_candidates(password: bytes) -> list[bytes]:
    """The BMPString encodings a producer may have used for ``password``, most likely first.

    The standard one is UTF-16BE of the UTF-8 text plus a 2-byte terminator. As OpenSSL does,
    we also accept the byte-per-character form old OpenSSL wrote for non-ASCII passwords, and
    for an empty password the zero-length form (a NULL password).
    """
    candidates = []
    try:
        candidates.append(password.decode("utf-8").encode("utf-16-be") + b"\0\0")
    except UnicodeDecodeError:
        pass
    latin = password.decode("latin-1").encode("utf-16-be") + b"\0\0"
    if latin not in candidates:
        candidates.append(latin)
    if not password:
        candidates.append(b"")
    return candidates


# ---- integrity -----------------------------------------------------------------------------

def _verify_mac(mac_data: pkcs12.MacData, content: bytes, password: bytes) -> bytes:
    """The BMPString password form under which the MAC verifies; WrongPassphrase if none does."""
    digest_algorithm = mac_data["mac"]["digest_algorithm"]["algorithm"]
    digest = digest_algorithm.native
    h = _HASHES.get(digest)
    if h is None:
        raise Pkcs12UnsupportedAlgorithm(f"PKCS#12 MAC digest {digest_algorithm.dotted} is not supported")
    parameters = mac_data["mac"]["digest_algorithm"]["parameters"]
    if not isinstance(parameters, core.Void) and parameters.dump() != b"\x05\x00":
        raise KeyFormatError("PKCS#12 MAC digest parameters must be absent or NULL")
    expected = mac_data["mac"]["digest"].native
    salt = mac_data["mac_salt"].native
    iterations = _check_iterations(mac_data["iterations"].native)
    if not isinstance(expected, bytes) or len(expected) != h.size or not isinstance(salt, bytes):
        raise KeyFormatError("malformed PKCS#12 MAC")
    for candidate in _bmp_candidates(password):
        mac_key = pkcs12_kdf(digest, candidate, salt, 3, iterations, h.size)
        if std_hmac.compare_digest(h.hmac(mac_key, content), expected):
            return candidate
    raise WrongPassphrase(_MAC_MISMATCH)


# ---- decryption ----------------------------------------------------------------------------

# PKCS#12 PBE (RFC 7292 appendix C): cipher, key bytes, effective RC2 bits.
_PKCS12_PBE: dict[str, tuple[str, int]] = {
    "pkcs12_sha1_tripledes_3key": ("3des", 24),
    "pkcs12_sha1_tripledes_2key": ("3des", 16),
    "pkcs12_sha1_rc2_128": ("rc2", 16),
    "pkcs12_sha1_rc2_40": ("rc2", 5),
}


def _unpad(padded: bytes, block: int) -> bytes:
    pad = padded[-1] if padded else 0
    if not 1 <= pad <= block or padded[-pad:] != bytes([pad]) * pad:
        raise WrongPassphrase("wrong password for this PKCS#12 file (decryption failed)")
    return padded[:-pad]


def _decrypt(algorithm: algos.EncryptionAlgorithm, ciphertext: object, password: bytes,
             bmp_password: bytes) -> bytes:
    """Plaintext of one encrypted PKCS#12 piece; the padding is checked, not the contents."""
    if not isinstance(ciphertext, bytes):
        raise KeyFormatError("PKCS#12 encrypted content is missing")
    name = algorithm["algorithm"].native
    if name == "pbes2":
        try:
            return decrypt_pbes2(algorithm["parameters"], ciphertext, password)
        except UnsupportedAlgorithm as exc:
            if isinstance(exc, KeyFormatError):
                raise
            raise Pkcs12UnsupportedAlgorithm(str(exc)) from exc
    scheme = _PKCS12_PBE.get(name)
    if scheme is None:
        raise Pkcs12UnsupportedAlgorithm(
            f"PKCS#12 encryption {algorithm['algorithm'].dotted} ({name}) is not supported")
    cipher, key_size = scheme
    params = algorithm["parameters"]
    salt = params["salt"].native
    iterations = _check_iterations(params["iterations"].native)
    if not isinstance(salt, bytes):
        raise KeyFormatError("malformed PKCS#12 PBE parameters")
    if not ciphertext or len(ciphertext) % 8:
        raise KeyFormatError("PKCS#12 ciphertext is not a whole number of 8-byte blocks")
    key = pkcs12_kdf("sha1", bmp_password, salt, 1, iterations, key_size)
    iv = pkcs12_kdf("sha1", bmp_password, salt, 2, iterations, 8)
    if cipher == "rc2":
        padded = _rc2.cbc_decrypt(key, iv, ciphertext, 8 * key_size)
    else:
        full_key = key if len(key) == 24 else key + key[:8]  # two-key 3DES is K1 K2 K1
        decryptor = Cipher(TripleDES(full_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
    return _unpad(padded, 8)


# ---- walking the structure -----------------------------------------------------------------
#
# Two phases. Everything that is not encrypted is parsed first, before the MAC is checked,
# so a structurally damaged file is reported as malformed (KeyFormatError) whatever the
# password; only then is the MAC checked and are the encrypted parts opened.

@dataclass
class _Bags:
    """What the SafeContents seen so far hold, still encrypted where they were."""

    key_infos: list[tuple[bytes, str | None]] = field(default_factory=list)
    shrouded_keys: list[tuple[algos.EncryptionAlgorithm, bytes, str | None]] = field(default_factory=list)
    certificates: list[tuple[x509.Certificate, str | None]] = field(default_factory=list)
    encrypted_safes: list[tuple[algos.EncryptionAlgorithm, bytes]] = field(default_factory=list)


def _friendly_name(bag: pkcs12.SafeBag) -> str | None:
    """The bag's friendlyName, or None. Cosmetic, so a producer's odd encoding of it is ignored."""
    try:
        for attribute in bag["bag_attributes"]:
            if attribute["type"].native == "friendly_name":
                values = attribute["values"]
                if len(values):
                    name = values[0].native
                    return name if isinstance(name, str) else None
    except _PARSE_ERRORS:
        return None
    return None


def _encrypted(algorithm: algos.EncryptionAlgorithm,
               ciphertext: object) -> tuple[algos.EncryptionAlgorithm, bytes]:
    """Parse an encryption AlgorithmIdentifier completely (no secret is needed for that)."""
    algorithm.native  # noqa: B018 - parameters too, so damage shows before the MAC check
    if not isinstance(ciphertext, bytes) or not ciphertext:
        raise KeyFormatError("PKCS#12 encrypted content is missing")
    return algorithm, ciphertext


def _collect(contents: pkcs12.SafeContents, bags: _Bags, depth: int = 0) -> None:
    if depth > _MAX_NESTING:
        raise KeyFormatError("PKCS#12 SafeContents are nested too deeply")
    for bag in contents:
        bag_id = bag["bag_id"].native
        value = bag["bag_value"]
        if bag_id == "key_bag":
            der = value.untag().dump()
            keys.PrivateKeyInfo.load(der, strict=True).native  # noqa: B018
            bags.key_infos.append((der, _friendly_name(bag)))
        elif bag_id == "pkcs8_shrouded_key_bag":
            algorithm, ciphertext = _encrypted(value["encryption_algorithm"], value["encrypted_data"].native)
            bags.shrouded_keys.append((algorithm, ciphertext, _friendly_name(bag)))
        elif bag_id == "cert_bag":
            if value["cert_id"].native != "x509":
                continue  # SDSI certificates: nothing we could use
            certificate = x509.Certificate.load(bytes(value["cert_value"]), strict=True)
            certificate["tbs_certificate"]["subject_public_key_info"]["algorithm"]["algorithm"].dotted  # noqa: B018
            certificate["signature_value"].native  # noqa: B018
            bags.certificates.append((certificate, _friendly_name(bag)))
        elif bag_id == "safe_contents":
            _collect(value, bags, depth + 1)
        # crlBag, secretBag and unknown bags carry nothing the key store imports.


def _collect_authenticated_safe(authenticated_safe: pkcs12.AuthenticatedSafe, bags: _Bags) -> None:
    for info in authenticated_safe:
        kind = info["content_type"].native
        if kind == "data":
            data = info["content"].native
            if not isinstance(data, bytes):
                raise KeyFormatError("PKCS#12 data content is missing")
            _collect(pkcs12.SafeContents.load(data, strict=True), bags)
        elif kind == "encrypted_data":
            encrypted = info["content"]["encrypted_content_info"]
            bags.encrypted_safes.append(_encrypted(encrypted["content_encryption_algorithm"],
                                                   encrypted["encrypted_content"].native))
        else:
            raise Pkcs12UnsupportedAlgorithm(
                f"PKCS#12 content of type {info['content_type'].dotted} ({kind}) is not supported "
                "(only password-protected files are)")


def _open_encrypted_safes(bags: _Bags, password: bytes, bmp: bytes) -> None:
    for algorithm, ciphertext in bags.encrypted_safes:
        plain = _decrypt(algorithm, ciphertext, password, bmp)
        try:
            contents = pkcs12.SafeContents.load(plain, strict=True)
            len(contents)  # parses the bag list now, so a bad decryption shows here
        except _PARSE_ERRORS as exc:
            raise WrongPassphrase(
                "wrong password for this PKCS#12 file (encrypted contents do not decrypt)") from exc
        _collect(contents, bags)
    bags.encrypted_safes.clear()


def _key_from_info(der: bytes) -> SM2PrivateKey:
    try:
        return private_key_from_info(der)
    except UnsupportedAlgorithm as exc:
        if isinstance(exc, KeyFormatError):
            raise
        raise Pkcs12UnsupportedAlgorithm(f"the PKCS#12 key is not usable here: {exc}") from exc
    except InvalidKey as exc:
        raise KeyFormatError(f"the PKCS#12 key is invalid: {exc}") from exc


def _private_keys(bags: _Bags, password: bytes, bmp: bytes) -> list[tuple[SM2PrivateKey, str | None]]:
    infos = list(bags.key_infos)
    for algorithm, ciphertext, name in bags.shrouded_keys:
        plain = _decrypt(algorithm, ciphertext, password, bmp)
        try:
            keys.PrivateKeyInfo.load(plain, strict=True)["private_key_algorithm"]["algorithm"].dotted  # noqa: B018
        except _PARSE_ERRORS as exc:
            raise WrongPassphrase("wrong password for the PKCS#12 key bag (it does not decrypt)") from exc
        infos.append((plain, name))
    return [(_key_from_info(der), name) for der, name in infos]


def _public_key_of(certificate: x509.Certificate) -> SM2PublicKey | None:
    try:
        return SM2PublicKey.from_spki(certificate["tbs_certificate"]["subject_public_key_info"])
    except (InvalidKey, *_PARSE_ERRORS):
        return None  # not an SM2 certificate (an RSA issuer in the chain, say): not the key's


def load_pkcs12(data: bytes, password: bytes) -> Pkcs12Contents:
    """The SM2 key of a PKCS#12 file, its certificate and the other certificates.

    The unencrypted structure is parsed first, then the MAC is checked (so a wrong password
    is reported as such, before any decryption), then every encrypted part is opened and
    parsed; nothing is returned unless all of it is well-formed. The file must hold exactly
    one private key.
    """
    data = bytes(data)
    if not data:
        raise KeyFormatError("empty PKCS#12 data")
    try:
        found, certificates = _load(data, password)
    except (KeyFormatError, WrongPassphrase):
        raise
    except UnsupportedAlgorithm as exc:
        raise Pkcs12UnsupportedAlgorithm(str(exc)) from exc
    except InvalidKey as exc:
        raise KeyFormatError(f"the PKCS#12 file holds an invalid key: {exc}") from exc
    except _PARSE_ERRORS as exc:
        raise KeyFormatError(f"malformed PKCS#12 file: {exc}") from exc

    distinct: dict[bytes, tuple[SM2PrivateKey, str | None]] = {}
    for key, name in found:
        distinct.setdefault(key.public_key().encoded_point(), (key, name))
    if not distinct:
        raise KeyFormatError("the PKCS#12 file holds no private key")
    if len(distinct) > 1:
        raise KeyFormatError(
            f"the PKCS#12 file holds {len(distinct)} different private keys; import them one at a time")
    key, friendly_name = next(iter(distinct.values()))

    public = key.public_key()
    certificate: x509.Certificate | None = None
    certificate_name: str | None = None
    additional: list[x509.Certificate] = []
    for cert, name in certificates:
        if certificate is None and _public_key_of(cert) == public:
            certificate, certificate_name = cert, name
        else:
            additional.append(cert)
    return Pkcs12Contents(key=key, certificate=certificate, additional_certificates=additional,
                          friendly_name=friendly_name if friendly_name is not None else certificate_name)


def _load(data: bytes, password: bytes) -> tuple[list[tuple[SM2PrivateKey, str | None]],
                                                 list[tuple[x509.Certificate, str | None]]]:
    pfx = pkcs12.Pfx.load(data, strict=True)
    if pfx["version"].native != "v3":
        raise KeyFormatError(f"not a PKCS#12 v3 file (version {pfx['version'].native!r})")
    auth_safe = pfx["auth_safe"]
    if auth_safe["content_type"].native != "data":
        raise Pkcs12UnsupportedAlgorithm(
            "PKCS#12 public-key integrity mode (signedData) is not supported; "
            "re-export the file with a password")
    content = auth_safe["content"].native
    if not isinstance(content, bytes):
        raise KeyFormatError("the PKCS#12 authenticated safe is missing")
    mac_data = pfx["mac_data"]
    if not isinstance(mac_data, core.Void):
        mac_data.native  # noqa: B018
    # asn1crypto keeps elements it has no field for instead of failing; outside the MAC that
    # would let a damaged (or MAC-stripped: a flipped MacData tag) file pass as MAC-less.
    for sequence, fields in ((pfx, 3), (auth_safe, 2), (mac_data, 3)):
        if isinstance(sequence, core.Sequence) and len(sequence.children or ()) > fields:
            raise KeyFormatError("unexpected elements in the PKCS#12 structure")

    # Phase 1: parse everything readable without the password.
    bags = _Bags()
    _collect_authenticated_safe(pkcs12.AuthenticatedSafe.load(content, strict=True), bags)

    # Phase 2: integrity, then decryption.
    if isinstance(mac_data, core.Void):
        bmp = _bmp_candidates(password)[0]  # no MAC: a wrong password shows when decrypting
    else:
        bmp = _verify_mac(mac_data, content, password)
    _open_encrypted_safes(bags, password, bmp)
    return _private_keys(bags, password, bmp), bags.certificates

"""GM/T 0006 object identifiers, and their registration with asn1crypto.

asn1crypto only knows international algorithms. Importing this module teaches its
declarative specs the SM2/SM3/SM4 identifiers once, so every room parses and builds
certificates, CMS and PKCS#8 with the same names. Nothing else in the project may
register OIDs with asn1crypto.
"""

from __future__ import annotations

from asn1crypto import algos, cms, keys

SM2_CURVE = "1.2.156.10197.1.301"
SM2_SIGN = "1.2.156.10197.1.301.1"
SM2_ENCRYPT = "1.2.156.10197.1.301.3"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM3 = "1.2.156.10197.1.401"
# HMAC-SM3 has two identifiers in the wild: OpenSSL (>= 3.2), Tongsuo and GM/T 0091 write
# 1.2.156.10197.1.401.3.1 as the PBKDF2 PRF ``hmacWithSM3``; BouncyCastle and older GM/T 0006
# tables use 1.2.156.10197.1.401.2. We write the first and read both.
HMAC_SM3 = "1.2.156.10197.1.401.3.1"
HMAC_SM3_BC = "1.2.156.10197.1.401.2"
SM4_CBC = "1.2.156.10197.1.104.2"
SM4_GCM = "1.2.156.10197.1.104.8"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"

# GB/T 35275 (SM2 cryptographic message syntax)
GBT35275_DATA = "1.2.156.10197.6.1.4.2.1"
GBT35275_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"

# Hash algorithm ids that mean SM3 in real files (SOURCES.md: CheckMethod values).
SM3_NAMES = frozenset({SM3, "SM3", "sm3"})


def _register() -> None:
    if SM2_CURVE not in keys.NamedCurve._map:
        keys.NamedCurve.register("sm2p256v1", SM2_CURVE, 32)
    maps = [
        (algos.SignedDigestAlgorithmId, {SM2_WITH_SM3: "sm2_sm3", SM2_SIGN: "sm2_sign"}),
        (algos.DigestAlgorithmId, {SM3: "sm3"}),
        (algos.HmacAlgorithmId, {HMAC_SM3: "hmac_sm3", HMAC_SM3_BC: "hmac_sm3_bc"}),
        (algos.EncryptionAlgorithmId, {SM4_CBC: "sm4_cbc", SM4_GCM: "sm4_gcm"}),
        (cms.ContentType, {GBT35275_DATA: "gbt35275_data",
                           GBT35275_SIGNED_DATA: "gbt35275_signed_data"}),
    ]
    for cls, extra in maps:
        for oid, name in extra.items():
            cls._map.setdefault(oid, name)
            if cls._reverse_map is not None:
                cls._reverse_map.setdefault(name, oid)
    # Parameter specs, so asn1crypto parses these algorithm identifiers' parameters.
    algos.EncryptionAlgorithm._oid_specs.setdefault("sm4_cbc", algos.OctetString)


_register()
